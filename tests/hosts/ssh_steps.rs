//! What an `ssh` step does on a healthy host: output, captures, env, cwd, argv, checks,
//! secrets, hostile parameter values, and one connection per host.

use crate::support::{Lab, state_of, step};
use crate::{appliances, on_host, ssh_args, with_ssh};

#[test]
fn runs_on_each_host_streams_output_to_the_store_and_captures() {
    let hosts = appliances(2);
    let lab = Lab::with_plan(
        r#"
[plan]
name = "hello"
[params.hosts]
type = "list"
default = ["rok-node-1", "rok-node-2"]

[[step]]
id = "who"
type = "ssh"
for_each = "params.hosts"
host = "{{ item }}"
run = "echo \"I am $(hostname) in $PWD\"; echo on-stderr >&2; cat /etc/rok/daemons.conf | head -1"
cwd = "/etc/rok"
capture = { name = 'I am (\S+)' }

[[step]]
id = "argv"
type = "ssh"
host = "rok-node-2"
argv = ["printf", "[%s]", "a b", "$HOME", "it's", "*"]
needs = ["who"]

[[step]]
id = "use"
type = "shell"
needs = ["who"]
run = "echo {{ steps.who.outputs.name }} > captured"
"#,
    );
    let ssh = ssh_args(&hosts);
    lab.run(&with_ssh(&["execute", "plan.toml"], &ssh)).code(0);
    let status = lab.status();
    assert_eq!(
        step(&status, "who/rok-node-1")["outputs"]["name"],
        "rok-node-1"
    );
    assert_eq!(
        step(&status, "who/rok-node-2")["outputs"]["name"],
        "rok-node-2"
    );
    let id = lab.run_id();
    let log = lab
        .run(&["logs", &id, "who/rok-node-2"])
        .code(0)
        .stdout
        .clone();
    assert!(log.contains("I am rok-node-2 in /etc/rok"), "{log}");
    assert!(log.contains("on-stderr"), "{log}");
    let argv = lab.run(&["logs", &id, "argv"]).code(0).stdout.clone();
    assert!(
        argv.contains("[a b][$HOME][it's][*]"),
        "each argv word arrives as one literal word: {argv}"
    );
}

#[test]
fn hostile_parameter_values_stay_one_literal_word_on_the_host() {
    let hosts = appliances(1);
    let lab = Lab::with_plan(
        r#"
[plan]
name = "quoting"
[params.name]
[[step]]
id = "echo"
type = "ssh"
host = "rok-node-1"
run = "echo {{ params.name }} > /tmp/quoting-echo; cat /tmp/quoting-echo"
"#,
    );
    let hostile = "x'; touch /tmp/pwned-1; echo '$(touch /tmp/pwned-2)`touch /tmp/pwned-3`\"; touch /tmp/pwned-4";
    let ssh = ssh_args(&hosts);
    let set = format!("name={hostile}");
    lab.run(&with_ssh(&["execute", "plan.toml", "--set", &set], &ssh))
        .code(0);
    assert_eq!(
        on_host(&hosts, "rok-node-1", "cat /tmp/quoting-echo").trim_end(),
        hostile
    );
    assert_eq!(
        on_host(&hosts, "rok-node-1", "ls /tmp/pwned-* 2>/dev/null | wc -l").trim(),
        "0",
        "nothing of the value ran as a command"
    );
}

#[test]
fn secrets_reach_the_command_but_never_the_store_logs_or_process_lists() {
    let hosts = appliances(1);
    let lab = Lab::with_plan(
        r#"
[plan]
name = "secret"
[params.roke_password]
secret = true
env = "ROKE_PASSWORD"
[[step]]
id = "login"
type = "ssh"
host = "rok-node-1"
env = { ROKE_PASSWORD = "{{ params.roke_password }}" }
run = "echo \"password is $ROKE_PASSWORD\"; test \"$ROKE_PASSWORD\" = 's3cr3t-Pa55'; ps -eo args > /tmp/ps-during; echo {{ params.roke_password }}"
"#,
    );
    let ssh = ssh_args(&hosts);
    let mut cmd = lab.cmd(&with_ssh(&["execute", "plan.toml"], &ssh));
    cmd.env("ROKE_PASSWORD", "s3cr3t-Pa55");
    let out = lab.run_cmd(cmd, &["execute", "plan.toml"]);
    out.code(0);
    assert!(!out.all().contains("s3cr3t-Pa55"), "{}", out.all());
    let id = lab.run_id();
    let log = lab.run(&["logs", &id, "login"]).code(0).stdout.clone();
    assert!(log.contains("password is ***"), "{log}");
    assert!(!log.contains("s3cr3t"), "{log}");
    let ps = on_host(&hosts, "rok-node-1", "cat /tmp/ps-during");
    assert!(
        !ps.contains("s3cr3t"),
        "the secret showed in the host's process list:\n{ps}"
    );
    for entry in walk(&lab.state()) {
        let bytes = std::fs::read(&entry).unwrap_or_default();
        assert!(
            !bytes.windows(11).any(|w| w == b"s3cr3t-Pa55"),
            "the secret is in {}",
            entry.display()
        );
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn check_runs_on_the_steps_host_and_skips_what_is_in_place() {
    let hosts = appliances(2);
    on_host(&hosts, "rok-node-2", "touch /etc/rok/marker");
    let lab = Lab::with_plan(
        r#"
[plan]
name = "check"
[params.hosts]
type = "list"
default = ["rok-node-1", "rok-node-2"]
[[step]]
id = "mark"
type = "ssh"
for_each = "params.hosts"
host = "{{ item }}"
run = "touch /etc/rok/marker; echo marked"
check = "test -f /etc/rok/marker"
"#,
    );
    let ssh = ssh_args(&hosts);
    lab.run(&with_ssh(&["execute", "plan.toml"], &ssh)).code(0);
    let status = lab.status();
    assert_eq!(state_of(&status, "mark/rok-node-1"), "succeeded");
    assert_eq!(state_of(&status, "mark/rok-node-2"), "satisfied");
    assert_eq!(
        on_host(&hosts, "rok-node-1", "ls /etc/rok/marker").trim(),
        "/etc/rok/marker"
    );
}

#[test]
fn every_step_on_a_host_shares_one_connection_and_it_is_closed_at_the_end() {
    let hosts = appliances(1);
    let mut plan = String::from("[plan]\nname = \"many\"\n");
    for i in 0..12 {
        plan.push_str(&format!(
            "[[step]]\nid = \"s{i}\"\ntype = \"ssh\"\nhost = \"rok-node-1\"\nrun = \"echo $SSH_CONNECTION\"\n"
        ));
    }
    let lab = Lab::with_plan(&plan);
    let ssh = ssh_args(&hosts);
    // Control sockets go under $TMPDIR: a private one tells this run's masters apart.
    let tmp = lab.path().join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let args = with_ssh(&["execute", "plan.toml", "--parallel", "12"], &ssh);
    let mut cmd = lab.cmd(&args);
    cmd.env("TMPDIR", &tmp);
    lab.run_cmd(cmd, &args).code(0);
    let id = lab.run_id();
    let mut connections = std::collections::BTreeSet::new();
    for i in 0..12 {
        let log = lab
            .run(&["logs", &id, &format!("s{i}")])
            .code(0)
            .stdout
            .clone();
        let line = log
            .lines()
            .find(|l| l.starts_with("127.0.0.1"))
            .unwrap_or_else(|| panic!("no SSH_CONNECTION in {log}"))
            .to_string();
        connections.insert(line);
    }
    assert_eq!(
        connections.len(),
        1,
        "one TCP connection (client port) for every step: {connections:?}"
    );
    // The master connection is gone with the run.
    let masters = std::process::Command::new("pgrep")
        .args(["-f", &tmp.display().to_string()])
        .output()
        .unwrap();
    assert!(
        masters.stdout.is_empty(),
        "an ssh master outlived the run: {}",
        String::from_utf8_lossy(&masters.stdout)
    );
}
