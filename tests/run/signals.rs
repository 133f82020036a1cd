//! Ctrl-C and SIGTERM: no new step starts, running ones get the grace period and are then
//! killed, the state is saved, the process exits 130; a step cut short is left `running`
//! (in doubt) and `resume` settles it. A second Ctrl-C kills at once.

use std::time::Duration;

use crate::support::{Lab, attempts_of, signal, signal_job, state_of, wait_with_deadline};

const LONG: &str = r#"
[plan]
name = "long"

[[step]]
id = "quick"
type = "shell"
run = "echo quick >> journal"

[[step]]
id = "long"
type = "shell"
needs = ["quick"]
run = "echo $$ > long.pid; echo start >> journal; sleep $(cat delay); echo end >> journal"

[[step]]
id = "after"
type = "shell"
needs = ["long"]
run = "echo after >> journal"
"#;

/// Whether a process exists and is not a zombie.
fn alive(pid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        let state = stat.rsplit(')').next().unwrap_or("").trim_start();
        !state.starts_with('Z') && !state.starts_with('X')
    })
}

#[test]
fn ctrl_c_exits_130_within_the_grace_period_and_resume_with_rerun_finishes() {
    let lab = Lab::with_plan(LONG);
    lab.write("delay", "30");
    let child = lab.spawn(&["execute", "plan.toml", "--grace", "1s"]);
    lab.wait_for_line("journal", "start");
    signal(&child, libc::SIGINT);
    let (out, took) = wait_with_deadline(child, Duration::from_secs(10));
    out.code(130);
    assert!(
        took < Duration::from_secs(5),
        "exit came {took:?} after Ctrl-C with --grace 1s"
    );
    assert!(out.stderr.contains("Interrupted"), "{}", out.stderr);
    let pid = lab.lines("long.pid").concat();
    assert!(
        !alive(&pid),
        "the step's shell {pid} outlived the grace period"
    );

    let s = lab.status();
    assert_eq!(s["run"]["outcome"], "interrupted");
    assert_eq!(state_of(&s, "quick"), "succeeded");
    // Cut short: the store cannot know whether its effect happened.
    assert_eq!(state_of(&s, "long"), "running");
    assert_eq!(state_of(&s, "after"), "pending");
    assert_eq!(attempts_of(&s, "after"), 0);
    assert_eq!(lab.lines("journal"), ["quick", "start"]);

    // A shell step without `check` is not guessed about.
    let out = lab.run(&["resume"]);
    out.code(3);
    assert!(out.stderr.contains("--rerun long"), "{}", out.stderr);
    assert_eq!(lab.lines("journal"), ["quick", "start"]);

    // The operator makes the step quick to finish this time and reruns it.
    lab.write("delay", "0");
    lab.run(&["resume", "--rerun", "long"]).code(0);
    let s = lab.status();
    assert_eq!(s["run"]["outcome"], "succeeded");
    assert_eq!(attempts_of(&s, "quick"), 1);
    assert_eq!(
        lab.lines("journal"),
        ["quick", "start", "start", "end", "after"]
    );
}

#[test]
fn sigterm_is_an_interrupt_too_and_a_check_settles_the_step_on_resume() {
    let plan = r#"
[plan]
name = "term"

[[step]]
id = "install"
type = "shell"
check = "test -f installed"
run = "echo start >> journal; sleep 30; touch installed"

[[step]]
id = "after"
type = "shell"
needs = ["install"]
run = "echo after >> journal"
"#;
    let lab = Lab::with_plan(plan);
    let child = lab.spawn(&["execute", "plan.toml", "--grace", "1s"]);
    lab.wait_for_line("journal", "start");
    signal(&child, libc::SIGTERM);
    let (out, took) = wait_with_deadline(child, Duration::from_secs(10));
    out.code(130);
    assert!(took < Duration::from_secs(5), "{took:?}");
    let s = lab.status();
    assert_eq!(s["run"]["outcome"], "interrupted");
    assert_eq!(state_of(&s, "install"), "running");
    assert_eq!(state_of(&s, "after"), "pending");

    // The operator finished the installation by hand: the check sees it, nothing reruns.
    lab.write("installed", "");
    lab.run(&["resume"]).code(0);
    let s = lab.status();
    assert_eq!(state_of(&s, "install"), "satisfied");
    assert_eq!(state_of(&s, "after"), "succeeded");
    assert_eq!(lab.lines("journal"), ["start", "after"]);
}

/// A terminal's Ctrl-C reaches every process of the foreground job: the steps must not
/// die of it, but get their grace period like with a signal to rok-plan alone.
#[test]
fn an_interrupted_step_that_finished_within_the_grace_period_is_not_in_doubt() {
    let plan = r#"
[plan]
name = "graceful"

[[step]]
id = "short"
type = "shell"
run = "echo start >> journal; sleep 0.5; echo end >> journal"

[[step]]
id = "after"
type = "shell"
needs = ["short"]
run = "echo after >> journal"
"#;
    let lab = Lab::with_plan(plan);
    let child = lab.spawn_job(&["execute", "plan.toml", "--grace", "10s"]);
    lab.wait_for_line("journal", "start");
    signal_job(&child, libc::SIGINT);
    let (out, _) = wait_with_deadline(child, Duration::from_secs(10));
    out.code(130);
    let s = lab.status();
    assert_eq!(state_of(&s, "short"), "succeeded");
    assert_eq!(state_of(&s, "after"), "pending");
    assert_eq!(lab.lines("journal"), ["start", "end"]);
    lab.run(&["resume"]).code(0);
    assert_eq!(lab.lines("journal"), ["start", "end", "after"]);
}

#[test]
fn a_second_ctrl_c_kills_at_once_and_assume_done_settles_the_step() {
    let lab = Lab::with_plan(LONG);
    lab.write("delay", "30");
    let child = lab.spawn(&["execute", "plan.toml", "--grace", "30s"]);
    lab.wait_for_line("journal", "start");
    signal(&child, libc::SIGINT);
    std::thread::sleep(Duration::from_millis(300));
    signal(&child, libc::SIGINT);
    let (out, took) = wait_with_deadline(child, Duration::from_secs(15));
    out.code(130);
    assert!(
        took < Duration::from_secs(5),
        "a second Ctrl-C did not kill at once ({took:?} with --grace 30s)"
    );
    let pid = lab.lines("long.pid").concat();
    assert!(!alive(&pid), "the step's shell {pid} survived");
    let s = lab.status();
    assert_eq!(state_of(&s, "long"), "running");
    assert_eq!(state_of(&s, "after"), "pending");

    // The operator did the work by hand: the step counts as done and is not run again.
    lab.run(&["resume", "--assume-done", "long"]).code(0);
    let s = lab.status();
    assert_eq!(s["run"]["outcome"], "succeeded");
    assert_eq!(state_of(&s, "after"), "succeeded");
    assert_eq!(lab.lines("journal"), ["quick", "start", "after"]);
}

#[test]
fn finally_steps_wait_for_the_resume_that_finishes_an_interrupted_run() {
    let plan = r#"
[plan]
name = "finally-after-interrupt"

[[step]]
id = "long"
type = "shell"
idempotent = true
run = "echo start >> journal; sleep $(cat delay)"

[[step]]
id = "uncordon"
type = "shell"
finally = true
run = "echo uncordon >> journal"
"#;
    let lab = Lab::with_plan(plan);
    lab.write("delay", "30");
    let child = lab.spawn(&["execute", "plan.toml", "--grace", "1s"]);
    lab.wait_for_line("journal", "start");
    signal(&child, libc::SIGINT);
    let (out, _) = wait_with_deadline(child, Duration::from_secs(10));
    out.code(130);
    let s = lab.status();
    assert_eq!(state_of(&s, "uncordon"), "pending");
    assert_eq!(lab.lines("journal"), ["start"]);

    // Idempotent: rerun without asking; then the finally step runs, once.
    lab.write("delay", "0");
    lab.run(&["resume"]).code(0);
    let s = lab.status();
    assert_eq!(state_of(&s, "long"), "succeeded");
    assert_eq!(state_of(&s, "uncordon"), "succeeded");
    assert_eq!(lab.lines("journal"), ["start", "start", "uncordon"]);
}

#[test]
fn ctrl_c_while_a_step_waits_to_retry_exits_at_once() {
    let plan = r#"
[plan]
name = "retry-wait"

[[step]]
id = "flaky"
type = "shell"
retry = { attempts = 3, delay = "30s" }
run = "echo try >> journal; test -f ok"
"#;
    let lab = Lab::with_plan(plan);
    let child = lab.spawn(&["execute", "plan.toml", "--grace", "1s"]);
    lab.wait_for_line("journal", "try");
    // Let the failure be recorded and the retry scheduled.
    std::thread::sleep(Duration::from_millis(300));
    signal(&child, libc::SIGINT);
    let (out, took) = wait_with_deadline(child, Duration::from_secs(40));
    out.code(130);
    assert!(
        took < Duration::from_secs(5),
        "Ctrl-C waited {took:?} for a 30 s retry delay"
    );
    let s = lab.status();
    assert_eq!(s["run"]["outcome"], "interrupted");
    assert_eq!(state_of(&s, "flaky"), "pending");
    assert_eq!(attempts_of(&s, "flaky"), 1);

    lab.write("ok", "");
    lab.run(&["resume"]).code(0);
    assert_eq!(lab.lines("journal"), ["try", "try"]);
}

#[test]
fn json_events_of_an_interrupted_run() {
    let lab = Lab::with_plan(LONG);
    lab.write("delay", "30");
    let child = lab.spawn(&["--output", "json", "execute", "plan.toml", "--grace", "1s"]);
    lab.wait_for_line("journal", "start");
    signal(&child, libc::SIGINT);
    let (out, _) = wait_with_deadline(child, Duration::from_secs(10));
    out.code(130);
    let events = out.events();
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().expect("an event"))
        .collect();
    let interrupting = kinds
        .iter()
        .position(|k| *k == "interrupting")
        .unwrap_or_else(|| panic!("no interrupting event: {kinds:?}"));
    assert_eq!(events[interrupting]["grace_ms"], 1000);
    let last = events.last().expect("events");
    assert_eq!(last["event"], "run_finished");
    assert_eq!(last["outcome"], "interrupted");
    assert_eq!(last["in_doubt"], serde_json::json!(["long"]));
    // Nothing started after the interrupt.
    assert!(
        !kinds[interrupting..].contains(&"step_started"),
        "{kinds:?}"
    );
}
