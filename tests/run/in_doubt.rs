//! Steps left `running` by a crash (the test-only fault hook SIGKILLs the process right
//! after its Nth store commit): a non-idempotent step without `check` stops the resume
//! until the operator decides; `--rerun` reruns it and everything after it (listed first);
//! `--assume-done` is refused when a later step needs its outputs; idempotent steps and
//! steps with a `check` are decided without asking.

use std::os::unix::process::ExitStatusExt;

use serde_json::Value;

use crate::support::{Lab, attempts_of, state_of};

/// Runs `execute` in fresh labs, killed after commit 1, 2, ...: the first lab whose status
/// `wanted` accepts.
fn killed_where(plan: &str, wanted: impl Fn(&Value) -> bool) -> Lab {
    for n in 1..=40 {
        let lab = Lab::with_plan(plan);
        let status = lab
            .cmd(&["-q", "execute", "plan.toml", "--parallel", "1"])
            .env("ROK_PLAN_TEST_KILL_AFTER_COMMITS", n.to_string())
            .status()
            .expect("execute runs");
        assert_eq!(
            status.signal(),
            Some(libc::SIGKILL),
            "the run got through all its commits before reaching the state wanted"
        );
        let out = lab.run(&["--output", "json", "status"]);
        if out.code == Some(0) && wanted(&out.json()) {
            return lab;
        }
    }
    panic!("no commit reached the state wanted");
}

const CHAIN: &str = r#"
[plan]
name = "chain"

[[step]]
id = "prepare"
type = "shell"
run = "echo prepare >> journal"

# Not idempotent, no check, and a later step reads its output.
[[step]]
id = "migrate"
type = "shell"
needs = ["prepare"]
run = "echo migrate >> journal; echo 'schema: 42'"
capture = { schema = 'schema: (\d+)' }

[[step]]
id = "use"
type = "shell"
needs = ["migrate"]
run = "echo use-{{ steps.migrate.outputs.schema }} >> journal"

# Not idempotent, nothing reads its output.
[[step]]
id = "notify"
type = "shell"
needs = ["prepare"]
run = "echo notify >> journal"
"#;

#[test]
fn a_step_in_doubt_stops_resume_until_the_operator_decides_to_rerun() {
    let lab = killed_where(CHAIN, |s| state_of(s, "migrate") == "running");
    let before = lab.lines("journal");
    assert!(!before.contains(&"use-42".to_string()));
    let id = lab.run_id();

    let out = lab.run(&["resume"]);
    out.code(3);
    assert!(
        out.stderr.contains("in doubt") && out.stderr.contains("migrate"),
        "{}",
        out.stderr
    );
    for how in ["--assume-done migrate", "--rerun migrate"] {
        assert!(
            out.stderr.contains(&format!("resume {id} {how}")),
            "`{how}` is offered:\n{}",
            out.stderr
        );
    }
    assert_eq!(lab.lines("journal"), before, "resume ran something");
    assert_eq!(state_of(&lab.status(), "migrate"), "running");

    // `use` reads migrate's output: it cannot be assumed done.
    let out = lab.run(&["resume", "--assume-done", "migrate"]);
    out.code(2);
    assert!(
        out.stderr.contains("--rerun migrate"),
        "the refusal says to rerun:\n{}",
        out.stderr
    );
    assert_eq!(lab.lines("journal"), before);

    let out = lab.run(&["resume", "--rerun", "migrate"]);
    out.code(0);
    let listed = out
        .stderr
        .find("--rerun")
        .unwrap_or_else(|| panic!("the rerun list is shown:\n{}", out.stderr));
    let list_line = out.stderr[listed..].lines().next().unwrap_or("");
    assert!(
        list_line.contains("migrate") && list_line.contains("use"),
        "{list_line}"
    );
    let first_start = out.stderr.find('▶').expect("steps start");
    assert!(listed < first_start, "listed before start:\n{}", out.stderr);

    let s = lab.status();
    assert_eq!(s["run"]["outcome"], "succeeded");
    assert_eq!(lab.count("journal", "use-42"), 1);
    assert_eq!(lab.count("journal", "prepare"), 1);
    assert_eq!(lab.count("journal", "notify"), 1);
}

#[test]
fn the_decision_commands_printed_for_a_step_in_doubt_name_the_state_store() {
    // The operator copies the printed command: it must reach the same store.
    let lab = killed_where(CHAIN, |s| state_of(s, "migrate") == "running");
    let id = lab.run_id();
    let out = lab.run(&["resume"]);
    out.code(3);
    for how in ["--assume-done migrate", "--rerun migrate"] {
        assert!(
            out.stderr
                .contains(&format!("rok-plan --state state resume {id} {how}")),
            "the printed command lacks --state:\n{}",
            out.stderr
        );
    }
    let out = lab.run(&["resume", "--assume-done", "migrate"]);
    out.code(2);
    assert!(
        out.stderr.contains(&format!(
            "rok-plan --state state resume {id} --rerun migrate"
        )),
        "the printed command lacks --state:\n{}",
        out.stderr
    );
}

#[test]
fn assume_done_settles_a_step_whose_outputs_nobody_reads() {
    let lab = killed_where(CHAIN, |s| state_of(s, "notify") == "running");
    let out = lab.run(&["resume"]);
    out.code(3);
    assert!(
        out.stderr.contains("--assume-done notify"),
        "{}",
        out.stderr
    );
    lab.run(&["resume", "--assume-done", "notify"]).code(0);
    let s = lab.status();
    assert_eq!(s["run"]["outcome"], "succeeded");
    assert_eq!(state_of(&s, "notify"), "succeeded");
    assert_eq!(lab.count("journal", "notify"), 0, "assumed done, not run");
    assert_eq!(lab.count("journal", "use-42"), 1);
}

#[test]
fn json_resume_of_a_step_in_doubt_names_it_in_the_error() {
    let lab = killed_where(CHAIN, |s| state_of(s, "migrate") == "running");
    let out = lab.run(&["--output", "json", "resume"]);
    out.code(3);
    let last = out.stdout.lines().last().expect("a line");
    let doc: Value = serde_json::from_str(last).expect("JSON");
    assert_eq!(doc["version"], 1);
    let help = doc["help"].as_str().expect("help");
    assert!(help.contains("--rerun migrate"), "{doc}");
}

#[test]
fn rerun_of_a_finished_step_reruns_everything_that_depends_on_it_listed_first() {
    let plan = format!(
        "{CHAIN}{}",
        r#"
[[step]]
id = "gate"
type = "shell"
needs = ["use", "notify"]
run = "echo gate >> journal; test -f open"
"#
    );
    let lab = Lab::with_plan(&plan);
    lab.run(&["execute", "plan.toml"]).code(1);
    lab.write("open", "");
    let out = lab.run(&["--output", "json", "resume", "--rerun", "migrate"]);
    out.code(0);
    let events = out.events();
    let rerun = events
        .iter()
        .position(|e| e["event"] == "rerunning")
        .expect("a rerunning event");
    let mut listed: Vec<&str> = events[rerun]["instances"]
        .as_array()
        .expect("instances")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    listed.sort();
    assert_eq!(listed, ["gate", "migrate", "use"]);
    let first_start = events
        .iter()
        .position(|e| e["event"] == "step_started")
        .expect("steps start");
    assert!(rerun < first_start);

    assert_eq!(lab.count("journal", "prepare"), 1);
    assert_eq!(lab.count("journal", "notify"), 1);
    assert_eq!(lab.count("journal", "migrate"), 2);
    assert_eq!(lab.count("journal", "use-42"), 2);
    assert_eq!(lab.count("journal", "gate"), 2);
    let s = lab.status();
    assert_eq!(attempts_of(&s, "prepare"), 1);
    assert_eq!(attempts_of(&s, "migrate"), 2);
}

const AUTO: &str = r#"
[plan]
name = "auto"

[[step]]
id = "read"
type = "shell"
idempotent = true
run = "echo read >> journal"

[[step]]
id = "install"
type = "shell"
needs = ["read"]
check = "test -f installed"
run = "echo install >> journal; touch installed"

[[step]]
id = "last"
type = "shell"
needs = ["install"]
run = "echo last >> journal"
"#;

#[test]
fn an_idempotent_step_in_doubt_runs_again_without_asking() {
    let lab = killed_where(AUTO, |s| state_of(s, "read") == "running");
    lab.run(&["resume"]).code(0);
    let s = lab.status();
    assert_eq!(s["run"]["outcome"], "succeeded");
    assert_eq!(state_of(&s, "read"), "succeeded");
    assert!(lab.count("journal", "read") >= 1);
    assert_eq!(lab.count("journal", "install"), 1);
}

#[test]
fn a_check_decides_a_step_in_doubt_either_way() {
    // The effect did not happen: the check fails and the step runs.
    let lab = killed_where(AUTO, |s| state_of(s, "install") == "running");
    assert_eq!(lab.count("journal", "install"), 0);
    lab.run(&["resume"]).code(0);
    let s = lab.status();
    assert_eq!(state_of(&s, "install"), "succeeded");
    assert_eq!(lab.count("journal", "install"), 1);
    assert_eq!(lab.count("journal", "last"), 1);

    // The effect happened (by hand): the check passes and the step is not run.
    let lab = killed_where(AUTO, |s| state_of(s, "install") == "running");
    lab.write("installed", "");
    lab.run(&["resume"]).code(0);
    let s = lab.status();
    assert_eq!(state_of(&s, "install"), "satisfied");
    assert_eq!(lab.count("journal", "install"), 0);
    assert_eq!(lab.count("journal", "last"), 1);
}

#[test]
fn rerun_of_a_group_element_reruns_its_steps_and_what_needs_the_group() {
    let lab = Lab::with_plan(
        r#"
[plan]
name = "rerun-element"

[params.nodes]
type = "list"
default = ["n1", "n2", "n3"]

[[group]]
id = "nodes"
for_each = "params.nodes"
max_parallel = 1

[[step]]
id = "up"
group = "nodes"
type = "shell"
run = "echo {{ item }}/up >> journal"

[[step]]
id = "verify"
group = "nodes"
needs = ["up"]
type = "shell"
run = "echo {{ item }}/verify >> journal"

[[step]]
id = "final"
type = "shell"
needs = ["nodes"]
run = "echo final >> journal; test -f ok"
"#,
    );
    lab.run(&["execute", "plan.toml"]).code(1);
    lab.write("ok", "");
    let out = lab.run(&["--output", "json", "resume", "--rerun", "nodes/n2"]);
    out.code(0);
    let events = out.events();
    let rerun = events
        .iter()
        .find(|e| e["event"] == "rerunning")
        .expect("a rerunning event");
    let mut listed: Vec<&str> = rerun["instances"]
        .as_array()
        .expect("instances")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    listed.sort();
    assert_eq!(listed, ["final", "nodes/n2/up", "nodes/n2/verify"]);
    for (line, n) in [
        ("n1/up", 1),
        ("n2/up", 2),
        ("n2/verify", 2),
        ("n3/verify", 1),
        ("final", 2),
    ] {
        assert_eq!(lab.count("journal", line), n, "{line}");
    }
    let s = lab.status();
    assert_eq!(attempts_of(&s, "nodes/n1/up"), 1);
    assert_eq!(attempts_of(&s, "nodes/n2/up"), 2);
}
