//! Failure policies as an operator sees them: `abort`, `continue`, `ignore`, `retry`,
//! `timeout` (the whole process group dies), a group's `max_failures`, `when`, and
//! `finally` steps reading `run.failed`.

use crate::support::{Lab, attempts_of, state_of, step};

#[test]
fn abort_starts_nothing_new_lets_running_work_finish_and_resume_completes_after_the_fix() {
    let lab = Lab::with_plan(
        r#"
[plan]
name = "abort"

[[step]]
id = "fragile"
type = "shell"
run = "sleep 0.2; echo fragile >> journal; test -f fixed"

[[step]]
id = "slow"
type = "shell"
run = "sleep 0.8; echo slow >> journal"

[[step]]
id = "after-slow"
type = "shell"
needs = ["slow"]
run = "echo after-slow >> journal"

[[step]]
id = "after-fragile"
type = "shell"
needs = ["fragile"]
run = "echo after-fragile >> journal"
"#,
    );
    let out = lab.run(&["execute", "plan.toml"]);
    out.code(1);
    assert!(out.stderr.contains("fragile"), "{}", out.stderr);
    let s = lab.status();
    assert_eq!(s["run"]["outcome"], "failed");
    assert_eq!(state_of(&s, "fragile"), "failed");
    assert!(
        step(&s, "fragile")["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("status 1")),
        "{s:#}"
    );
    // Already running when `fragile` failed: it finishes.
    assert_eq!(state_of(&s, "slow"), "succeeded");
    // Nothing new starts after the failure, not even work that does not depend on it.
    assert_eq!(state_of(&s, "after-slow"), "pending");
    assert_eq!(state_of(&s, "after-fragile"), "pending");
    assert_eq!(lab.lines("journal"), ["fragile", "slow"]);

    // The operator fixes the cause and resumes: the failed step runs again, finished ones
    // do not.
    lab.write("fixed", "");
    lab.run(&["resume"]).code(0);
    let s = lab.status();
    assert_eq!(s["run"]["outcome"], "succeeded");
    for id in ["fragile", "slow", "after-slow", "after-fragile"] {
        assert_eq!(state_of(&s, id), "succeeded", "{id}");
    }
    assert_eq!(attempts_of(&s, "fragile"), 2);
    assert_eq!(attempts_of(&s, "slow"), 1);
    assert_eq!(lab.count("journal", "slow"), 1);
    assert_eq!(lab.count("journal", "fragile"), 2);
    assert_eq!(lab.count("journal", "after-slow"), 1);
}

#[test]
fn continue_blocks_dependents_while_independent_work_goes_on() {
    let lab = Lab::with_plan(
        r#"
[plan]
name = "continue"

[[step]]
id = "broken"
type = "shell"
on_failure = "continue"
run = "echo broken >> journal; exit 4"

[[step]]
id = "child"
type = "shell"
needs = ["broken"]
run = "echo child >> journal"

[[step]]
id = "grandchild"
type = "shell"
needs = ["child"]
run = "echo grandchild >> journal"

[[step]]
id = "other"
type = "shell"
run = "sleep 0.2; echo other >> journal"

[[step]]
id = "after-other"
type = "shell"
needs = ["other"]
run = "echo after-other >> journal"
"#,
    );
    lab.run(&["execute", "plan.toml"]).code(1);
    let s = lab.status();
    assert_eq!(s["run"]["outcome"], "failed");
    assert_eq!(state_of(&s, "broken"), "failed");
    assert_eq!(step(&s, "broken")["exit_status"], 4);
    assert_eq!(state_of(&s, "child"), "blocked");
    assert_eq!(state_of(&s, "grandchild"), "blocked");
    assert_eq!(attempts_of(&s, "child"), 0);
    assert_eq!(state_of(&s, "other"), "succeeded");
    assert_eq!(state_of(&s, "after-other"), "succeeded");
    let mut j = lab.lines("journal");
    j.sort();
    assert_eq!(j, ["after-other", "broken", "other"]);
}

#[test]
fn ignore_records_the_failure_and_dependents_run() {
    let lab = Lab::with_plan(
        r#"
[plan]
name = "ignore"

[[step]]
id = "optional"
type = "shell"
on_failure = "ignore"
run = "echo optional >> journal; exit 1"

[[step]]
id = "next"
type = "shell"
needs = ["optional"]
run = "echo next >> journal"
"#,
    );
    lab.run(&["execute", "plan.toml"]).code(0);
    let s = lab.status();
    assert_eq!(s["run"]["outcome"], "succeeded");
    assert_eq!(state_of(&s, "optional"), "failed");
    assert!(step(&s, "optional")["last_error"].is_string(), "{s:#}");
    assert_eq!(state_of(&s, "next"), "succeeded");
    assert_eq!(lab.lines("journal"), ["optional", "next"]);
}

#[test]
fn retry_counts_attempts_until_success_or_exhaustion() {
    let lab = Lab::with_plan(
        r#"
[plan]
name = "retry"

# Fails twice, then succeeds.
[[step]]
id = "flaky"
type = "shell"
retry = { attempts = 5, delay = "10ms", backoff = 2.0, max_delay = "30ms" }
run = "echo try >> flaky; test $(wc -l < flaky) -ge 3"

# Never succeeds.
[[step]]
id = "hopeless"
type = "shell"
on_failure = "continue"
retry = { attempts = 3, delay = "10ms", backoff = 3.0 }
run = "echo attempt >> hopeless; echo 'nope' >&2; exit 7"
"#,
    );
    let out = lab.run(&["--output", "json", "execute", "plan.toml"]);
    out.code(1);
    let s = lab.status();
    assert_eq!(state_of(&s, "flaky"), "succeeded");
    assert_eq!(attempts_of(&s, "flaky"), 3);
    assert_eq!(lab.lines("flaky").len(), 3);
    assert_eq!(state_of(&s, "hopeless"), "failed");
    assert_eq!(attempts_of(&s, "hopeless"), 3);
    assert_eq!(lab.lines("hopeless").len(), 3);
    assert_eq!(step(&s, "hopeless")["exit_status"], 7);

    // Each failed attempt but the last is announced as a retry.
    let events = out.events();
    let retries = |id: &str| {
        events
            .iter()
            .filter(|e| e["event"] == "step_retrying" && e["instance"] == id)
            .map(|e| e["attempt"].as_u64().expect("attempt"))
            .collect::<Vec<_>>()
    };
    assert_eq!(retries("flaky"), [1, 2]);
    assert_eq!(retries("hopeless"), [1, 2]);
    // Every attempt's output is kept, in order.
    let id = lab.run_id();
    let logs = lab.run(&["logs", &id, "hopeless"]);
    logs.code(0);
    let text = logs.all();
    let at = |n: u32| {
        text.find(&format!("attempt {n}"))
            .unwrap_or_else(|| panic!("no attempt {n} in {text}"))
    };
    assert!(at(1) < at(2) && at(2) < at(3), "{text}");
    assert_eq!(text.matches("nope").count(), 3, "{text}");
}

/// Whether a process exists and is not a zombie.
fn alive(pid: &str) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            // `pid (comm) S ...`: the state follows the last `)`.
            let state = stat.rsplit(')').next().unwrap_or("").trim_start();
            !state.starts_with('Z') && !state.starts_with('X')
        }
        Err(_) => false,
    }
}

#[test]
fn a_timeout_kills_the_whole_process_group() {
    let lab = Lab::with_plan(
        r#"
[plan]
name = "timeout"

[[step]]
id = "hangs"
type = "shell"
timeout = "400ms"
run = "sleep 30 & echo $! > grandchild.pid; echo $$ > child.pid; wait"

[[step]]
id = "after"
type = "shell"
needs = ["hangs"]
run = "echo after >> journal"
"#,
    );
    let start = std::time::Instant::now();
    lab.run(&["execute", "plan.toml"]).code(1);
    assert!(
        start.elapsed() < std::time::Duration::from_secs(20),
        "the timeout did not stop the step"
    );
    let s = lab.status();
    assert_eq!(state_of(&s, "hangs"), "failed");
    let err = step(&s, "hangs")["last_error"]
        .as_str()
        .unwrap_or_default()
        .to_lowercase();
    assert!(err.contains("time"), "the error says it timed out: {err}");
    assert_eq!(state_of(&s, "after"), "pending");
    assert!(lab.lines("journal").is_empty());
    for file in ["grandchild.pid", "child.pid"] {
        let pid = lab.lines(file).concat();
        assert!(!pid.is_empty(), "{file} was written");
        // The kill is asynchronous for the orphaned grandchild: give it a moment.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
        while alive(&pid) && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert!(!alive(&pid), "process {pid} ({file}) survived the timeout");
    }
}

const GROUP: &str = r#"
[plan]
name = "rolling"

[params.nodes]
type = "list"
default = ["n1", "n2", "n3", "n4"]

[[group]]
id = "nodes"
for_each = "params.nodes"
max_parallel = 1
max_failures = 1

[[step]]
id = "upgrade"
group = "nodes"
type = "shell"
on_failure = "continue"
run = "echo {{ item }} >> journal; if grep -qx {{ item }} bad; then exit 1; fi"

[[step]]
id = "verify"
group = "nodes"
type = "shell"
needs = ["upgrade"]
run = "echo {{ item }}/verify >> journal"

[[step]]
id = "after"
type = "shell"
needs = ["nodes"]
run = "echo after >> journal"
"#;

#[test]
fn max_failures_tolerates_that_many_failed_elements() {
    let lab = Lab::with_plan(GROUP);
    lab.write("bad", "n2\n");
    lab.run(&["execute", "plan.toml"]).code(1);
    let s = lab.status();
    assert_eq!(state_of(&s, "nodes/n2/upgrade"), "failed");
    assert_eq!(state_of(&s, "nodes/n2/verify"), "blocked");
    for n in ["n1", "n3", "n4"] {
        assert_eq!(state_of(&s, &format!("nodes/{n}/verify")), "succeeded");
    }
    // The group as a whole did not succeed: what needs it does not run.
    assert_eq!(state_of(&s, "after"), "blocked");
    assert_eq!(
        lab.lines("journal"),
        [
            "n1",
            "n1/verify",
            "n2",
            "n3",
            "n3/verify",
            "n4",
            "n4/verify"
        ]
    );
}

#[test]
fn max_failures_exceeded_stops_the_group_starting_elements() {
    let lab = Lab::with_plan(GROUP);
    lab.write("bad", "n1\nn2\n");
    lab.run(&["execute", "plan.toml"]).code(1);
    let s = lab.status();
    assert_eq!(state_of(&s, "nodes/n1/upgrade"), "failed");
    assert_eq!(state_of(&s, "nodes/n2/upgrade"), "failed");
    for id in [
        "nodes/n3/upgrade",
        "nodes/n3/verify",
        "nodes/n4/upgrade",
        "nodes/n4/verify",
        "after",
    ] {
        assert_eq!(state_of(&s, id), "blocked", "{id}");
        assert_eq!(attempts_of(&s, id), 0, "{id}");
    }
    assert!(
        step(&s, "nodes/n3/upgrade")["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("nodes")),
        "the reason names the group: {s:#}"
    );
    assert_eq!(lab.lines("journal"), ["n1", "n2"]);
}

#[test]
fn when_false_skips_a_step_and_its_dependents_still_run() {
    let lab = Lab::with_plan(
        r#"
[plan]
name = "when"

[params.ganeti]
type = "boolean"
default = false

[[step]]
id = "ganeti-only"
type = "shell"
when = "params.ganeti"
run = "echo ganeti >> journal"

[[step]]
id = "next"
type = "shell"
needs = ["ganeti-only"]
run = "echo next >> journal"
"#,
    );
    lab.run(&["execute", "plan.toml"]).code(0);
    let s = lab.status();
    assert_eq!(state_of(&s, "ganeti-only"), "skipped");
    assert_eq!(attempts_of(&s, "ganeti-only"), 0);
    assert_eq!(state_of(&s, "next"), "succeeded");
    assert_eq!(lab.lines("journal"), ["next"]);

    let lab2 = Lab::with_plan(&std::fs::read_to_string(lab.path().join("plan.toml")).unwrap());
    lab2.run(&["execute", "plan.toml", "--set", "ganeti=true"])
        .code(0);
    assert_eq!(lab2.lines("journal"), ["ganeti", "next"]);
}

const FINALLY: &str = r#"
[plan]
name = "finally"

[[step]]
id = "work"
type = "shell"
run = "echo work >> journal; test -f ok"

[[step]]
id = "later"
type = "shell"
needs = ["work"]
run = "echo later >> journal"

[[step]]
id = "uncordon"
type = "shell"
finally = true
run = "echo uncordon >> journal"

[[step]]
id = "alert"
type = "shell"
finally = true
when = "run.failed"
run = "echo alert >> journal"
"#;

#[test]
fn finally_steps_run_after_a_failure_and_run_failed_is_true() {
    let lab = Lab::with_plan(FINALLY);
    lab.run(&["execute", "plan.toml"]).code(1);
    let s = lab.status();
    assert_eq!(state_of(&s, "work"), "failed");
    assert_eq!(state_of(&s, "later"), "pending");
    assert_eq!(state_of(&s, "uncordon"), "succeeded");
    assert_eq!(state_of(&s, "alert"), "succeeded");
    let j = lab.lines("journal");
    assert_eq!(j[0], "work");
    let mut rest = j[1..].to_vec();
    rest.sort();
    assert_eq!(rest, ["alert", "uncordon"]);
}

#[test]
fn finally_steps_run_after_a_success_and_run_failed_is_false() {
    let lab = Lab::with_plan(FINALLY);
    lab.write("ok", "");
    lab.run(&["execute", "plan.toml"]).code(0);
    let s = lab.status();
    assert_eq!(state_of(&s, "uncordon"), "succeeded");
    assert_eq!(state_of(&s, "alert"), "skipped");
    assert_eq!(lab.lines("journal"), ["work", "later", "uncordon"]);
}

#[test]
fn parallel_bounds_how_many_steps_run_at_once() {
    // Each step records how many steps were inside the critical window when it entered.
    let mut plan = String::from("[plan]\nname = \"wide\"\n");
    for n in 0..6 {
        plan.push_str(&format!(
            "[[step]]\nid = \"s{n}\"\ntype = \"shell\"\nrun = \"mkdir -p inside; touch inside/s{n}; ls inside | wc -l >> seen; sleep 0.2; rm inside/s{n}\"\n"
        ));
    }
    let lab = Lab::with_plan(&plan);
    lab.run(&["execute", "plan.toml", "--parallel", "2"])
        .code(0);
    let seen: Vec<u32> = lab
        .lines("seen")
        .iter()
        .map(|l| l.trim().parse().expect("a count"))
        .collect();
    assert_eq!(seen.len(), 6);
    assert!(
        seen.iter().all(|&n| n <= 2),
        "more than 2 at once: {seen:?}"
    );
    assert!(seen.contains(&2), "never 2 at once: {seen:?}");
}

#[test]
fn a_group_skipped_by_when_skips_every_instance_and_dependents_still_run() {
    let lab = Lab::with_plan(
        r#"
[plan]
name = "skipped-group"

[params.nodes]
type = "list"
default = ["node 1", "n2"]

[params.enabled]
type = "boolean"
default = false

[[group]]
id = "nodes"
for_each = "params.nodes"
when = "params.enabled"

[[step]]
id = "drain"
group = "nodes"
type = "shell"
run = "echo drain >> journal"

[[step]]
id = "done"
type = "shell"
needs = ["nodes"]
run = "echo done >> journal"
"#,
    );
    lab.run(&["execute", "plan.toml"]).code(0);
    let s = lab.status();
    // "node 1" is not a plain word: the instance is named by its index.
    assert_eq!(state_of(&s, "nodes/0/drain"), "skipped");
    assert_eq!(state_of(&s, "nodes/n2/drain"), "skipped");
    assert_eq!(state_of(&s, "done"), "succeeded");
    assert_eq!(lab.lines("journal"), ["done"]);
}

#[test]
fn a_timed_out_attempt_is_retried_and_counted() {
    let lab = Lab::with_plan(
        r#"
[plan]
name = "timeout-retry"

[[step]]
id = "slow-then-fast"
type = "shell"
timeout = "300ms"
retry = { attempts = 3, delay = "10ms" }
run = "echo try >> tries; if [ $(wc -l < tries) -lt 2 ]; then sleep 30; fi"
"#,
    );
    lab.run(&["execute", "plan.toml"]).code(0);
    let s = lab.status();
    assert_eq!(state_of(&s, "slow-then-fast"), "succeeded");
    assert_eq!(attempts_of(&s, "slow-then-fast"), 2);
    assert_eq!(lab.lines("tries").len(), 2);
}

#[test]
fn abort_does_not_wait_for_another_step_s_retry_delay() {
    let lab = Lab::with_plan(
        r#"
[plan]
name = "abort-retry"

[[step]]
id = "flaky"
type = "shell"
retry = { attempts = 3, delay = "30s" }
run = "echo flaky >> journal; exit 1"

[[step]]
id = "fatal"
type = "shell"
run = "sleep 0.3; echo fatal >> journal; exit 1"
"#,
    );
    let start = std::time::Instant::now();
    lab.run(&["execute", "plan.toml"]).code(1);
    let took = start.elapsed();
    assert!(
        took < std::time::Duration::from_secs(10),
        "the aborted run waited {took:?} for a 30 s retry delay"
    );
    let s = lab.status();
    assert_eq!(s["run"]["outcome"], "failed");
    assert_eq!(state_of(&s, "fatal"), "failed");
    assert_eq!(attempts_of(&s, "flaky"), 1);
    assert_eq!(lab.count("journal", "flaky"), 1);
}

#[test]
fn defaults_apply_to_every_step_that_does_not_set_its_own() {
    let lab = Lab::with_plan(
        r#"
[plan]
name = "defaults"

[defaults]
on_failure = "continue"
retry = { attempts = 2, delay = "10ms" }
timeout = "300ms"

[[step]]
id = "fails"
type = "shell"
run = "echo fails >> journal; exit 1"

[[step]]
id = "after-fails"
type = "shell"
needs = ["fails"]
run = "echo after-fails >> journal"

[[step]]
id = "hangs"
type = "shell"
run = "echo hangs >> journal; sleep 30"

[[step]]
id = "own-policy"
type = "shell"
on_failure = "ignore"
retry = { attempts = 1 }
run = "echo own-policy >> journal; exit 1"

[[step]]
id = "after-own"
type = "shell"
needs = ["own-policy"]
run = "echo after-own >> journal"
"#,
    );
    lab.run(&["execute", "plan.toml"]).code(1);
    let s = lab.status();
    assert_eq!(state_of(&s, "fails"), "failed");
    assert_eq!(attempts_of(&s, "fails"), 2);
    assert_eq!(state_of(&s, "after-fails"), "blocked");
    assert_eq!(state_of(&s, "hangs"), "failed");
    assert_eq!(attempts_of(&s, "hangs"), 2);
    assert_eq!(state_of(&s, "own-policy"), "failed");
    assert_eq!(attempts_of(&s, "own-policy"), 1);
    assert_eq!(state_of(&s, "after-own"), "succeeded");
    assert_eq!(lab.count("journal", "fails"), 2);
    assert_eq!(lab.count("journal", "hangs"), 2);
    assert_eq!(lab.count("journal", "own-policy"), 1);
}

#[test]
fn max_parallel_bounds_the_elements_in_progress() {
    let lab = Lab::with_plan(
        r#"
[plan]
name = "max-parallel"

[params.nodes]
type = "list"
default = ["n1", "n2", "n3", "n4", "n5"]

[[step]]
id = "ping"
type = "shell"
for_each = "params.nodes"
max_parallel = 2
run = "mkdir -p in-ping; touch in-ping/{{ item }}; ls in-ping | wc -l >> ping-seen; sleep 0.3; rm in-ping/{{ item }}"

# An element is in progress from its first step's start to its last step's end.
[[group]]
id = "nodes"
for_each = "params.nodes"
max_parallel = 2

[[step]]
id = "drain"
group = "nodes"
type = "shell"
run = "mkdir -p in-group; touch in-group/{{ item }}; ls in-group | wc -l >> group-seen; sleep 0.15"

[[step]]
id = "uncordon"
group = "nodes"
type = "shell"
needs = ["drain"]
run = "sleep 0.15; rm in-group/{{ item }}"
"#,
    );
    lab.run(&["execute", "plan.toml"]).code(0);
    for file in ["ping-seen", "group-seen"] {
        let seen: Vec<u32> = lab
            .lines(file)
            .iter()
            .map(|l| l.trim().parse().expect("a count"))
            .collect();
        assert_eq!(seen.len(), 5, "{file}");
        assert!(seen.iter().all(|&n| n <= 2), "{file}: {seen:?}");
        assert!(seen.contains(&2), "{file}: never 2 at once: {seen:?}");
    }
}

#[test]
fn finally_steps_run_again_at_the_end_of_a_resumed_run() {
    let lab = Lab::with_plan(FINALLY);
    lab.run(&["execute", "plan.toml"]).code(1);
    assert_eq!(lab.count("journal", "uncordon"), 1);
    assert_eq!(lab.count("journal", "alert"), 1);
    lab.write("ok", "");
    lab.run(&["resume"]).code(0);
    let j = lab.lines("journal");
    // The clean-up runs after the work it cleans up after, on the run's real end.
    assert_eq!(
        j[j.len() - 3..],
        ["work", "later", "uncordon"],
        "journal: {j:?}"
    );
    let s = lab.status();
    assert_eq!(state_of(&s, "uncordon"), "succeeded");
    assert_eq!(attempts_of(&s, "uncordon"), 2);
    // The run did not fail in the end.
    assert_eq!(state_of(&s, "alert"), "skipped");
    assert_eq!(lab.count("journal", "alert"), 1);
}
