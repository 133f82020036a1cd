//! Every way reaching a host can fail gives an error naming the host and what happened,
//! and loses nothing: the run stops (or the step fails) and can be resumed once fixed.

use std::collections::BTreeMap;

use rok_plan_lab::appliance::{ApplianceOptions, KnownHostEntry};

use crate::support::{Lab, state_of, step};
use crate::{appliances, appliances_with, on_host, ssh_args, with_ssh};

const ONE_STEP: &str = r#"
[plan]
name = "one"
[[step]]
id = "hello"
type = "ssh"
host = "rok-node-1"
run = "hostname"
"#;

fn lab_where_node_1_is(entry: KnownHostEntry) -> rok_plan_lab::appliance::ApplianceLab {
    let mut options = ApplianceOptions::nodes(1);
    options.known_hosts = BTreeMap::from([("rok-node-1".to_string(), entry)]);
    appliances_with(options)
}

fn last_error(lab: &Lab, id: &str) -> String {
    step(&lab.status(), id)["last_error"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn an_unknown_host_key_is_refused_then_accepted_with_the_flag_and_recorded() {
    let hosts = lab_where_node_1_is(KnownHostEntry::Missing);
    let lab = Lab::with_plan(ONE_STEP);
    let ssh = ssh_args(&hosts);
    let out = lab.run(&with_ssh(&["execute", "plan.toml"], &ssh));
    out.code(1);
    let err = last_error(&lab, "hello");
    assert!(
        err.starts_with("ssh rok-node-1: the host key is not in known_hosts"),
        "{err}"
    );
    assert!(
        out.stderr.contains("--ssh-accept-new-host-keys"),
        "{}",
        out.stderr
    );
    let before = std::fs::read_to_string(hosts.known_hosts()).unwrap_or_default();
    assert!(!before.contains("rok-node-1"));

    let id = lab.run_id();
    lab.run(&with_ssh(
        &["resume", &id, "--ssh-accept-new-host-keys"],
        &ssh,
    ))
    .code(0);
    assert_eq!(state_of(&lab.status(), "hello"), "succeeded");
    let after = std::fs::read_to_string(hosts.known_hosts()).unwrap_or_default();
    assert!(
        after.contains("rok-node-1"),
        "the key was recorded: {after}"
    );
    assert_eq!(
        lab.status()["run"]["settings"]["ssh.host_key_checking"],
        "accept-new"
    );
    let log = lab.run(&["logs", &id, "hello"]).code(0).stdout.clone();
    assert!(log.contains("host key checking is accept-new"), "{log}");
}

#[test]
fn a_changed_host_key_is_refused_even_when_accepting_new_keys() {
    let hosts = lab_where_node_1_is(KnownHostEntry::Wrong);
    let lab = Lab::with_plan(ONE_STEP);
    let ssh = ssh_args(&hosts);
    lab.run(&with_ssh(
        &["execute", "plan.toml", "--ssh-accept-new-host-keys"],
        &ssh,
    ))
    .code(1);
    let err = last_error(&lab, "hello");
    assert!(
        err.starts_with("ssh rok-node-1: the host key CHANGED"),
        "{err}"
    );
}

#[test]
fn a_host_that_is_down_is_named_and_the_run_resumes_once_it_is_up() {
    let hosts = appliances(1);
    hosts.stop_host("rok-node-1").unwrap();
    let lab = Lab::with_plan(ONE_STEP);
    let ssh = ssh_args(&hosts);
    lab.run(&with_ssh(&["execute", "plan.toml"], &ssh)).code(1);
    assert_eq!(
        last_error(&lab, "hello"),
        "ssh rok-node-1: connection refused (is sshd running, is the port right?)"
    );
    hosts.start_host("rok-node-1").unwrap();
    let id = lab.run_id();
    lab.run(&with_ssh(&["resume", &id], &ssh)).code(0);
    assert_eq!(state_of(&lab.status(), "hello"), "succeeded");
}

#[test]
fn a_key_the_host_does_not_accept_is_an_authentication_failure() {
    let hosts = appliances(1);
    let lab = Lab::with_plan(ONE_STEP);
    // The operator's config points at a key the appliance does not know.
    let key = lab.path().join("other_key");
    let made = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key)
        .status()
        .unwrap();
    assert!(made.success());
    let config = std::fs::read_to_string(hosts.ssh_config()).unwrap();
    let config: String = config
        .lines()
        .map(|l| {
            if l.trim_start().starts_with("IdentityFile") {
                format!("  IdentityFile {}", key.display())
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    lab.write("ssh_config", &config);
    lab.run(&["execute", "plan.toml", "--ssh-config", "ssh_config"])
        .code(1);
    let err = last_error(&lab, "hello");
    assert!(
        err.starts_with("ssh rok-node-1: authentication failed"),
        "{err}"
    );
    assert!(err.contains("never a password prompt"), "{err}");
}

#[test]
fn a_connection_dropped_mid_command_fails_the_step_saying_the_outcome_is_unknown() {
    let hosts = appliances(1);
    let lab = Lab::with_plan(
        r#"
[plan]
name = "drop"
[[step]]
id = "long"
type = "ssh"
host = "rok-node-1"
run = "echo started > /etc/rok/long-started; sleep 30"
"#,
    );
    let ssh = ssh_args(&hosts);
    let child = lab.spawn(&with_ssh(&["execute", "plan.toml"], &ssh));
    let marker = hosts.etc_rok("rok-node-1").join("long-started");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !marker.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the command never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // Power the host off under the running command.
    hosts.stop_host("rok-node-1").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = last_error(&lab, "long");
    assert!(
        err.starts_with("ssh rok-node-1: the connection dropped while the command ran"),
        "{err}"
    );
    assert!(err.contains("may have finished"), "{err}");
    hosts.start_host("rok-node-1").unwrap();
    assert_eq!(
        on_host(&hosts, "rok-node-1", "hostname").trim(),
        "rok-node-1"
    );
}
