//! Manual steps without a terminal: the run pauses (exit 3) after independent work
//! finished, printing the exact command to continue; running it finishes the run, and the
//! approval is a record (who, when, the plan's hash). `--yes` approves every manual step.

use crate::support::{Lab, attempts_of, state_of};

const PLAN: &str = r#"
[plan]
name = "manual"

[[step]]
id = "swap-disk"
type = "manual"
instructions = "Replace the BOOT disk of the master."

[[step]]
id = "independent"
type = "shell"
run = "sleep 0.3; echo independent >> journal"

[[step]]
id = "after-swap"
type = "shell"
needs = ["swap-disk"]
run = "echo after-swap >> journal"

[[step]]
id = "reboot"
type = "manual"
needs = ["after-swap"]
instructions = "Reboot the master."
"#;

/// The `rok-plan ... resume RUN --approve ID` line printed on stderr.
#[track_caller]
fn printed_command(stderr: &str) -> Vec<String> {
    let line = stderr
        .lines()
        .find(|l| l.contains("--approve"))
        .unwrap_or_else(|| panic!("no --approve command printed:\n{stderr}"));
    let at = line
        .find("rok-plan")
        .expect("the command starts with rok-plan");
    line[at..]
        .split_whitespace()
        .skip(1)
        .map(str::to_string)
        .collect()
}

#[test]
fn without_a_terminal_a_manual_step_pauses_and_the_printed_command_continues() {
    let lab = Lab::with_plan(PLAN);
    let out = lab.run(&["execute", "plan.toml"]);
    out.code(3);
    assert!(
        out.stderr.contains("Replace the BOOT disk of the master."),
        "the instructions are shown:\n{}",
        out.stderr
    );
    let id = lab.run_id();
    let cmd = printed_command(&out.stderr);
    assert_eq!(
        cmd,
        ["--state", "state", "resume", &id, "--approve", "swap-disk"],
        "{}",
        out.stderr
    );
    let s = lab.status();
    assert_eq!(s["run"]["outcome"], "paused");
    assert_eq!(state_of(&s, "swap-disk"), "awaiting_approval");
    assert_eq!(state_of(&s, "independent"), "succeeded");
    assert_eq!(state_of(&s, "after-swap"), "pending");
    assert_eq!(lab.lines("journal"), ["independent"]);
    assert_eq!(s["approvals"], serde_json::json!([]));

    // Running the printed command (as the operator `alice`) goes on to the next manual step.
    let args: Vec<&str> = cmd
        .iter()
        .skip(2) // --state state: added by the harness
        .map(String::as_str)
        .chain(["--approver", "alice"])
        .collect();
    let out = lab.run(&args);
    out.code(3);
    let next = printed_command(&out.stderr);
    assert_eq!(
        next,
        ["--state", "state", "resume", &id, "--approve", "reboot"]
    );
    assert_eq!(lab.lines("journal"), ["independent", "after-swap"]);

    // The login name approves when no --approver is given.
    let args: Vec<&str> = next.iter().skip(2).map(String::as_str).collect();
    let mut c = lab.cmd(&args);
    c.env("USER", "bob-the-operator").env_remove("LOGNAME");
    lab.run_cmd(c, &args).code(0);

    let s = lab.status();
    assert_eq!(s["run"]["outcome"], "succeeded");
    assert_eq!(state_of(&s, "swap-disk"), "succeeded");
    assert_eq!(state_of(&s, "reboot"), "succeeded");
    assert_eq!(attempts_of(&s, "independent"), 1);
    let hash = s["run"]["plan_hash"].as_str().expect("a plan hash");
    let approvals = s["approvals"].as_array().expect("approvals");
    let by = |inst: &str| {
        approvals
            .iter()
            .find(|a| a["instance_id"] == inst)
            .unwrap_or_else(|| panic!("no approval of {inst}: {approvals:?}"))
    };
    assert_eq!(by("swap-disk")["approver"], "alice");
    assert_eq!(by("reboot")["approver"], "bob-the-operator");
    for a in approvals {
        assert_eq!(a["plan_hash"], hash);
        assert!(a["at_ms"].as_u64().is_some_and(|t| t > 0));
    }
    let human = lab.run(&["status"]).code(0).all();
    assert!(human.contains("swap-disk by alice"), "{human}");
}

#[test]
fn without_user_variables_the_approver_is_the_account_name() {
    let lab = Lab::with_plan(PLAN);
    let args = [
        "execute",
        "plan.toml",
        "--approve",
        "swap-disk",
        "--approve",
        "reboot",
    ];
    let mut c = lab.cmd(&args);
    c.env_remove("USER").env_remove("LOGNAME");
    lab.run_cmd(c, &args).code(0);
    let who = std::process::Command::new("id")
        .arg("-un")
        .output()
        .expect("id runs");
    let who = String::from_utf8_lossy(&who.stdout).trim().to_string();
    let s = lab.status();
    for a in s["approvals"].as_array().expect("approvals") {
        assert_eq!(a["approver"], who.as_str(), "{s:#}");
    }
    assert_eq!(s["approvals"].as_array().map(Vec::len), Some(2));
}

#[test]
fn yes_approves_every_manual_step() {
    let lab = Lab::with_plan(PLAN);
    lab.run(&["execute", "plan.toml", "--yes", "--approver", "lab"])
        .code(0);
    let s = lab.status();
    assert_eq!(s["run"]["outcome"], "succeeded");
    let mut approved: Vec<&str> = s["approvals"]
        .as_array()
        .expect("approvals")
        .iter()
        .map(|a| {
            assert_eq!(a["approver"], "lab");
            a["instance_id"].as_str().expect("an instance")
        })
        .collect();
    approved.sort();
    assert_eq!(approved, ["reboot", "swap-disk"]);
    let mut j = lab.lines("journal");
    j.sort();
    assert_eq!(j, ["after-swap", "independent"]);
}

#[test]
fn approving_in_advance_only_covers_the_named_step() {
    let lab = Lab::with_plan(PLAN);
    let out = lab.run(&["execute", "plan.toml", "--approve", "swap-disk"]);
    out.code(3);
    let s = lab.status();
    assert_eq!(state_of(&s, "swap-disk"), "succeeded");
    assert_eq!(state_of(&s, "reboot"), "awaiting_approval");
    assert!(out.stderr.contains("--approve reboot"), "{}", out.stderr);
}

#[test]
fn an_approval_for_an_unknown_step_is_refused_before_anything_runs() {
    let lab = Lab::with_plan(PLAN);
    // A typo in `execute --approve`: refused, nothing runs, no run is recorded.
    let out = lab.run(&["execute", "plan.toml", "--approve", "swap-dsk"]);
    out.code(2);
    assert!(
        out.stderr.contains("swap-dsk") && out.stderr.contains("`swap-disk`"),
        "the closest manual step is suggested:\n{}",
        out.stderr
    );
    assert!(lab.lines("journal").is_empty());
    let runs = lab.run(&["--output", "json", "runs"]);
    if runs.code == Some(0) {
        assert_eq!(runs.json()["runs"], serde_json::json!([]));
    }

    // A typo in `resume --approve`: refused, the run stays as it was.
    lab.run(&["execute", "plan.toml"]).code(3);
    let before = lab.status();
    let out = lab.run(&["resume", "--approve", "swap-dsk"]);
    out.code(2);
    assert!(out.stderr.contains("`swap-disk`"), "{}", out.stderr);
    let after = lab.status();
    assert_eq!(before["steps"], after["steps"]);
    assert_eq!(lab.lines("journal"), ["independent"]);

    // Approving a step that is not manual is a mistake too.
    let out = lab.run(&["resume", "--approve", "after-swap"]);
    out.code(2);
    assert!(out.stderr.contains("after-swap"), "{}", out.stderr);
    assert_eq!(lab.status()["steps"], before["steps"]);
}

#[test]
fn json_events_of_a_pause_name_the_step_and_its_instructions() {
    let lab = Lab::with_plan(PLAN);
    let out = lab.run(&["--output", "json", "execute", "plan.toml"]);
    out.code(3);
    let events = out.events();
    let needed = events
        .iter()
        .find(|e| e["event"] == "approval_needed")
        .expect("an approval_needed event");
    assert_eq!(needed["instance"], "swap-disk");
    assert_eq!(
        needed["instructions"],
        "Replace the BOOT disk of the master."
    );
    let last = events.last().expect("events");
    assert_eq!(last["event"], "run_finished");
    assert_eq!(last["outcome"], "paused");
    assert_eq!(last["awaiting_approval"], serde_json::json!(["swap-disk"]));

    let out = lab.run(&[
        "--output",
        "json",
        "resume",
        "--approve",
        "swap-disk",
        "--approver",
        "carol",
    ]);
    out.code(3);
    let approved = out
        .events()
        .into_iter()
        .find(|e| e["event"] == "approved")
        .expect("an approved event");
    assert_eq!(approved["instance"], "swap-disk");
    assert_eq!(approved["approver"], "carol");
}

#[test]
fn finally_steps_wait_until_a_paused_run_finishes() {
    // The node must stay cordoned while the operator does the manual work.
    let lab = Lab::with_plan(
        r#"
[plan]
name = "pause-finally"

[[step]]
id = "cordon"
type = "shell"
run = "echo cordon >> journal"

[[step]]
id = "swap"
type = "manual"
needs = ["cordon"]
instructions = "Swap the disk."

[[step]]
id = "work"
type = "shell"
needs = ["swap"]
run = "echo work >> journal"

[[step]]
id = "uncordon"
type = "shell"
finally = true
run = "echo uncordon >> journal"
"#,
    );
    lab.run(&["execute", "plan.toml"]).code(3);
    assert_eq!(
        lab.lines("journal"),
        ["cordon"],
        "a finally step ran while the run was only paused"
    );
    assert_eq!(state_of(&lab.status(), "uncordon"), "pending");
    lab.run(&["resume", "--approve", "swap"]).code(0);
    assert_eq!(lab.lines("journal"), ["cordon", "work", "uncordon"]);
}
