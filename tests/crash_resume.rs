//! Crash tests with real SIGKILL: `rok-plan execute` is killed right after its Nth store
//! commit (the test-only fault hook) and at random times; then `resume` is run, deciding
//! steps left in doubt as an operator would (by looking at what happened), until the run
//! finishes. Every step appends a line to a journal when its side effect happens.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

const PLAN: &str = r#"
[plan]
name = "crash"

[params.nodes]
type = "list"
default = ["n1", "n2", "n3", "n4", "n5", "n6", "n7", "n8", "n9", "n10"]

[[step]]
id = "a1"
type = "shell"
run = "echo a1 >> journal"

[[step]]
id = "a2"
type = "shell"
run = "echo a2 >> journal; sleep 0.02"

# A read: safe to repeat, so never in doubt. Its output must survive crashes.
[[step]]
id = "version"
type = "shell"
needs = ["a1"]
idempotent = true
run = "echo 'version: 7.7.1'"
capture = { v = 'version: (\S+)' }

[[step]]
id = "use-version"
type = "shell"
needs = ["version"]
run = "echo 'use-version {{ steps.version.outputs.v }}' >> journal"

[[step]]
id = "nocheck"
type = "shell"
needs = ["a2"]
run = "echo nocheck >> journal"

[[step]]
id = "withcheck"
type = "shell"
needs = ["a2"]
check = "grep -qx withcheck journal"
run = "echo withcheck >> journal"

[[group]]
id = "nodes"
for_each = "params.nodes"
max_parallel = 1
needs = ["use-version", "nocheck", "withcheck"]

[[step]]
id = "drain"
group = "nodes"
type = "shell"
run = "echo 'nodes/{{ item }}/drain' >> journal"

[[step]]
id = "upgrade"
group = "nodes"
type = "shell"
needs = ["drain"]
run = "echo 'nodes/{{ item }}/upgrade' >> journal; sleep 0.01"

[[step]]
id = "verify"
group = "nodes"
type = "shell"
needs = ["upgrade"]
check = "grep -qx 'nodes/{{ item }}/verify' journal"
run = "echo 'nodes/{{ item }}/verify' >> journal"

[[step]]
id = "done"
type = "shell"
needs = ["nodes"]
run = "echo done >> journal"
"#;

/// Every journal line a complete run writes, once each.
fn expected() -> Vec<String> {
    let mut lines: Vec<String> = ["a1", "a2", "use-version 7.7.1", "nocheck", "withcheck"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for n in 1..=10 {
        for s in ["drain", "upgrade", "verify"] {
            lines.push(format!("nodes/n{n}/{s}"));
        }
    }
    lines.push("done".into());
    lines
}

fn rok_plan(dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_rok-plan"));
    c.current_dir(dir)
        .args(["--state", "state", "-q"])
        .args(args)
        .stdin(Stdio::null());
    if matches!(args.first(), Some(&"execute") | Some(&"resume")) {
        c.args(["--parallel", "2"]);
    }
    c
}

fn journal(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("journal"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// The instance ids of the run's steps found `running`.
fn in_doubt(dir: &Path) -> Vec<String> {
    let out = rok_plan(dir, &["--output", "json", "status"])
        .output()
        .expect("status runs");
    assert!(
        out.status.success(),
        "status failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status prints JSON");
    doc["steps"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| s["state"] == "running")
        .filter_map(|s| s["instance"].as_str().map(str::to_string))
        .collect()
}

/// The journal line that shows an instance's side effect happened.
fn effect_line(instance: &str) -> String {
    match instance {
        "use-version" => "use-version 7.7.1".to_string(),
        other => other.to_string(),
    }
}

/// The outcome of the latest run, if one was recorded.
fn last_outcome(dir: &Path, point: &str) -> Option<String> {
    let out = rok_plan(dir, &["--output", "json", "runs"])
        .output()
        .expect("runs runs");
    assert!(
        out.status.success() || String::from_utf8_lossy(&out.stdout).contains("no state store"),
        "[{point}] `runs` failed after the kill: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    doc["runs"]
        .as_array()
        .and_then(|r| r.last())
        .and_then(|r| r["outcome"].as_str())
        .map(str::to_string)
}

/// Resumes until the run finishes; returns the decisions taken for steps in doubt.
fn resume_to_the_end(dir: &Path, point: &str) -> Vec<String> {
    let mut decisions = Vec::new();
    let outcome = last_outcome(dir, point);
    if outcome.as_deref() == Some("succeeded") {
        // Killed after its last commit, on its way out: the run is complete.
        return decisions;
    }
    if outcome.is_none() {
        // Killed before the run was recorded: nothing can have started.
        assert!(
            journal(dir).is_empty(),
            "[{point}] steps ran before the run was recorded"
        );
        let status = rok_plan(dir, &["execute", "plan.toml"])
            .status()
            .expect("execute runs");
        assert_eq!(status.code(), Some(0), "[{point}] a fresh execute succeeds");
        return decisions;
    }
    for _ in 0..12 {
        // Orphaned step processes of the killed run may still be finishing: an operator
        // looks at the system once it has settled.
        std::thread::sleep(Duration::from_millis(150));
        let mut args = vec!["resume".to_string()];
        let lines = journal(dir);
        for id in in_doubt(dir) {
            let done = lines.contains(&effect_line(&id));
            args.push(if done {
                "--assume-done".into()
            } else {
                "--rerun".into()
            });
            args.push(id.clone());
            decisions.push(format!(
                "{id}: {}",
                if done { "assume-done" } else { "rerun" }
            ));
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out: Output = rok_plan(dir, &args).output().expect("resume runs");
        match out.status.code() {
            Some(0) => return decisions,
            // Paused: a step in doubt the plan cannot decide; decided above on the next turn.
            Some(3) => continue,
            other => panic!(
                "[{point}] resume ended with {other:?}\n{}{}\njournal: {:?}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                journal(dir)
            ),
        }
    }
    panic!(
        "[{point}] the run did not finish after many resumes; journal: {:?}",
        journal(dir)
    );
}

fn check_journal(dir: &Path, point: &str, decisions: &[String]) {
    let lines = journal(dir);
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for l in &lines {
        *counts.entry(l.as_str()).or_default() += 1;
    }
    let expected = expected();
    for want in &expected {
        assert_eq!(
            counts.get(want.as_str()).copied().unwrap_or(0),
            1,
            "[{point}] `{want}` must have run exactly once; journal: {lines:?}; decisions: {decisions:?}"
        );
    }
    assert_eq!(
        lines.len(),
        expected.len(),
        "[{point}] unexpected journal lines: {lines:?}"
    );
    // Rolling: a node's steps all end before the next node starts.
    let pos = |l: &str| lines.iter().position(|x| x == l).unwrap_or(usize::MAX);
    for n in 1..10 {
        assert!(
            pos(&format!("nodes/n{n}/verify")) < pos(&format!("nodes/n{}/drain", n + 1)),
            "[{point}] {lines:?}"
        );
    }
}

fn setup() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temp dir");
    std::fs::write(dir.path().join("plan.toml"), PLAN).expect("the plan is written");
    dir
}

#[test]
fn sigkill_after_every_commit_then_resume_finishes_without_repeating_anything() {
    let mut killed = 0;
    // Commit N for every N until a run gets through all its commits without being killed.
    for n in 1..=120u64 {
        let dir = setup();
        let point = format!("after commit {n}");
        let status = rok_plan(dir.path(), &["execute", "plan.toml"])
            .env("ROK_PLAN_TEST_KILL_AFTER_COMMITS", n.to_string())
            .status()
            .expect("execute runs");
        use std::os::unix::process::ExitStatusExt;
        if status.signal() == Some(9) {
            killed += 1;
            let decisions = resume_to_the_end(dir.path(), &point);
            check_journal(dir.path(), &point, &decisions);
        } else {
            assert_eq!(
                status.code(),
                Some(0),
                "[{point}] a run that was not killed succeeds"
            );
            check_journal(dir.path(), &point, &[]);
            break;
        }
    }
    // The fault hook really fired at many distinct points (with the random kills of the
    // other test: more than 50 per run of the suite).
    assert!(killed >= 32, "only {killed} runs were killed");
}

#[test]
fn sigkill_at_random_times_then_resume_finishes_without_repeating_anything() {
    // A fixed pseudo-random sequence: reproducible, yet spread over the run's lifetime.
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    for round in 0..20 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let after = Duration::from_millis(5 + seed % 700);
        let dir = setup();
        let point = format!("random kill {round} after {after:?}");
        let mut child = rok_plan(dir.path(), &["execute", "plan.toml"])
            .spawn()
            .expect("execute starts");
        std::thread::sleep(after);
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(child.id() as i32, libc::SIGKILL);
        }
        let status = child.wait().expect("the child is reaped");
        let decisions = if status.success() {
            Vec::new()
        } else {
            resume_to_the_end(dir.path(), &point)
        };
        check_journal(dir.path(), &point, &decisions);
    }
}
