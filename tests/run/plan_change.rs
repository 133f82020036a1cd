//! A plan file edited between runs: `resume` lists what changed and refuses unless
//! `--allow-plan-change`, which keeps unchanged finished steps and reruns changed ones;
//! `execute` refuses while an unfinished run of the plan exists, unless `--new`.

use crate::support::{Lab, attempts_of, state_of};

const BEFORE: &str = r#"
[plan]
name = "change"

[[step]]
id = "stable"
type = "shell"
run = "echo stable >> journal"

[[step]]
id = "edited"
type = "shell"
run = "echo edited-v1 >> journal"

[[step]]
id = "broken"
type = "shell"
needs = ["stable", "edited"]
run = "echo broken >> journal; exit 1"

[[step]]
id = "dropped"
type = "shell"
needs = ["broken"]
run = "echo dropped >> journal"
"#;

const AFTER: &str = r#"
[plan]
name = "change"

[[step]]
id = "stable"
type = "shell"
run = "echo stable >> journal"

[[step]]
id = "edited"
type = "shell"
run = "echo edited-v2 >> journal"

[[step]]
id = "broken"
type = "shell"
needs = ["stable", "edited"]
run = "echo fixed >> journal"

[[step]]
id = "added"
type = "shell"
needs = ["broken"]
run = "echo added >> journal"
"#;

#[test]
fn resume_refuses_a_changed_plan_listing_the_changes_then_allows_it_on_request() {
    let lab = Lab::with_plan(BEFORE);
    lab.run(&["execute", "plan.toml"]).code(1);
    let mut j = lab.lines("journal");
    j.sort();
    assert_eq!(j, ["broken", "edited-v1", "stable"]);

    lab.write("plan.toml", AFTER);
    let out = lab.run(&["resume"]);
    out.code(2);
    let lines: Vec<&str> = out
        .stderr
        .lines()
        .map(|l| l.trim().trim_start_matches("help:").trim())
        .collect();
    let listed = |what: &str| {
        lines
            .iter()
            .find(|l| l.starts_with(&format!("{what}:")))
            .unwrap_or_else(|| panic!("no `{what}:` line:\n{}", out.stderr))
            .to_string()
    };
    assert!(listed("added").contains("added"), "{}", out.stderr);
    assert!(listed("removed").contains("dropped"), "{}", out.stderr);
    let changed = listed("changed");
    assert!(
        changed.contains("edited") && changed.contains("broken") && !changed.contains("stable"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("--allow-plan-change"), "{}", out.stderr);
    // Nothing ran.
    assert_eq!(lab.lines("journal").len(), 3);

    let out = lab.run(&["--output", "json", "resume", "--allow-plan-change"]);
    out.code(0);
    let events = out.events();
    let change = events
        .iter()
        .find(|e| e["event"] == "plan_changed")
        .expect("a plan_changed event");
    assert_eq!(change["added"], serde_json::json!(["added"]));
    assert_eq!(change["removed"], serde_json::json!(["dropped"]));
    let s = lab.status();
    assert_eq!(s["run"]["outcome"], "succeeded");
    assert_eq!(lab.count("journal", "stable"), 1, "an unchanged step reran");
    assert_eq!(attempts_of(&s, "stable"), 1);
    assert_eq!(lab.count("journal", "edited-v1"), 1);
    assert_eq!(
        lab.count("journal", "edited-v2"),
        1,
        "the changed step reran"
    );
    assert_eq!(lab.count("journal", "fixed"), 1);
    assert_eq!(lab.count("journal", "added"), 1);
    assert_eq!(lab.count("journal", "dropped"), 0);
    assert_eq!(state_of(&s, "added"), "succeeded");
}

#[test]
fn execute_refuses_while_a_run_of_the_plan_is_unfinished_and_new_starts_another() {
    let lab = Lab::with_plan(BEFORE);
    lab.run(&["execute", "plan.toml"]).code(1);
    let first = lab.run_id();

    let out = lab.run(&["execute", "plan.toml"]);
    out.code(2);
    assert!(
        out.stderr
            .contains(&format!("rok-plan --state state resume {first}")),
        "the refusal points at resume:\n{}",
        out.stderr
    );
    assert!(out.stderr.contains("--new"), "{}", out.stderr);
    assert_eq!(lab.count("journal", "stable"), 1, "nothing ran");

    let out = lab.run(&["--output", "json", "execute", "plan.toml"]);
    out.code(2);
    let doc = out.json();
    assert!(doc["help"].as_str().is_some_and(|h| h.contains(&first)));

    lab.run(&["execute", "plan.toml", "--new"]).code(1);
    assert_eq!(lab.count("journal", "stable"), 2);
    let runs = lab.run(&["--output", "json", "runs"]).code(0).json();
    let runs = runs["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 2);
    assert_ne!(runs[0]["id"], runs[1]["id"]);
    // Without RUN, resume takes the latest unfinished run.
    let second = lab.run_id();
    assert_ne!(first, second);

    // A finished run does not stand in the way.
    let ok = Lab::with_plan(&BEFORE.replace("; exit 1", ""));
    ok.run(&["execute", "plan.toml"]).code(0);
    ok.run(&["execute", "plan.toml"]).code(0);
}

#[test]
fn a_changed_manual_step_needs_a_new_approval() {
    let plan = r#"
[plan]
name = "approval-change"

[[step]]
id = "swap"
type = "manual"
instructions = "Swap the disk."

[[step]]
id = "after"
type = "shell"
needs = ["swap"]
run = "echo after >> journal; test -f ok"
"#;
    let lab = Lab::with_plan(plan);
    lab.run(&[
        "execute",
        "plan.toml",
        "--approve",
        "swap",
        "--approver",
        "alice",
    ])
    .code(1);
    let old_hash = lab.status()["run"]["plan_hash"].clone();
    lab.write("ok", "");

    // An unchanged manual step keeps its approval across a plan change elsewhere...
    lab.write("plan.toml", &plan.replace("echo after", "echo after-v2"));
    let s = lab.status();
    assert_eq!(state_of(&s, "swap"), "succeeded");
    // ...but when its instructions change, the approval given for the old text is void.
    lab.write(
        "plan.toml",
        &plan.replace("Swap the disk.", "Swap the BOOT disk."),
    );
    let out = lab.run(&["resume", "--allow-plan-change"]);
    out.code(3);
    assert!(out.stderr.contains("--approve swap"), "{}", out.stderr);
    let s = lab.status();
    assert_eq!(state_of(&s, "swap"), "awaiting_approval");
    assert_eq!(lab.count("journal", "after"), 1);
    // The operator reading `status` is not told that the waiting step is approved.
    let human = lab.run(&["status"]).code(0).all();
    let line = human
        .lines()
        .find(|l| l.starts_with("approved: swap"))
        .unwrap_or_else(|| panic!("the old approval is still a record:\n{human}"));
    assert!(
        line.contains("earlier version of the plan"),
        "an approval for the old plan text is shown as void: {line}"
    );

    lab.run(&["resume", "--approve", "swap", "--approver", "bob"])
        .code(0);
    let s = lab.status();
    assert_eq!(state_of(&s, "after"), "succeeded");
    let new_hash = &s["run"]["plan_hash"];
    let bob = s["approvals"]
        .as_array()
        .expect("approvals")
        .iter()
        .find(|a| a["approver"] == "bob")
        .unwrap_or_else(|| panic!("bob's approval is recorded: {s:#}"));
    assert_ne!(
        bob["plan_hash"], old_hash,
        "recorded with the new plan's hash"
    );
    let _ = new_hash;
}
