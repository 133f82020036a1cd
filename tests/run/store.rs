//! The store on disk as an operator meets it: one process at a time (the refusal names the
//! holder), and a damaged store is an error that leaves every byte as it was.

use std::time::Duration;

use crate::support::{Lab, files_under, signal, wait_with_deadline};

const SLOW: &str = r#"
[plan]
name = "slow"

[[step]]
id = "wait"
type = "shell"
run = "echo start >> journal; sleep 20"
"#;

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .expect("the host name")
        .trim()
        .to_string()
}

#[test]
fn a_second_process_is_refused_with_the_holder_named() {
    let lab = Lab::with_plan(SLOW);
    let holder = lab.spawn(&["execute", "plan.toml", "--grace", "1s"]);
    lab.wait_for_line("journal", "start");
    let pid = holder.id().to_string();
    let host = host_name();
    for args in [
        &["status"][..],
        &["runs"],
        &["execute", "plan.toml", "--new"],
        &["resume"],
    ] {
        let out = lab.run(args);
        out.code(2);
        assert!(
            out.stderr.contains(&format!("process {pid}")) && out.stderr.contains(&host),
            "`{}` does not name the holder (pid {pid} on {host}):\n{}",
            out.command,
            out.stderr
        );
    }
    let out = lab.run(&["--output", "json", "status"]);
    out.code(2);
    let doc = out.json();
    assert_eq!(doc["version"], 1);
    let err = doc["error"].as_str().expect("an error message");
    assert!(err.contains(&pid) && err.contains(&host), "{err}");
    assert!(doc["help"].is_string(), "{doc}");
    // Only one journal line: the refused `execute --new` ran nothing.
    assert_eq!(lab.lines("journal"), ["start"]);

    signal(&holder, libc::SIGINT);
    let (out, _) = wait_with_deadline(holder, Duration::from_secs(10));
    out.code(130);
    // The lock went with its holder.
    lab.run(&["status"]).code(0);
}

/// A finished run's store, then `damage` applied to it; every command is refused with exit
/// 2 and a clear message, and no byte of the store changes.
fn refused_untouched(damage: impl Fn(&Lab)) {
    let lab = Lab::with_plan(
        r#"
[plan]
name = "small"

[[step]]
id = "a"
type = "shell"
run = "echo a >> journal"
"#,
    );
    lab.run(&["execute", "plan.toml"]).code(0);
    let id = lab.run_id();
    damage(&lab);
    let before = files_under(&lab.state());
    for args in [
        &["status"][..],
        &["runs"],
        &["logs", &id, "a"],
        &["execute", "plan.toml"],
        &["execute", "plan.toml", "--new"],
        &["resume", &id],
    ] {
        let out = lab.run(args);
        out.code(2);
        assert!(
            out.stderr.contains("corrupt or unreadable") && out.stderr.contains("left"),
            "`{}` does not say the store is damaged and left alone:\n{}",
            out.command,
            out.stderr
        );
        let after = files_under(&lab.state());
        assert!(
            before == after,
            "`{}` changed the damaged store's files",
            out.command
        );
    }
    let out = lab.run(&["--output", "json", "status"]);
    out.code(2);
    assert!(
        out.json()["error"]
            .as_str()
            .is_some_and(|e| e.contains("corrupt")),
        "{}",
        out.stdout
    );
    assert_eq!(files_under(&lab.state()), before);
    assert_eq!(lab.lines("journal"), ["a"], "nothing ran");
}

/// Deterministic garbage of `len` bytes.
fn garbage(len: usize) -> Vec<u8> {
    let mut x: u32 = 0x9e37_79b9;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        })
        .collect()
}

#[test]
fn garbage_in_the_sled_log_is_refused_and_left_untouched() {
    refused_untouched(|lab| {
        let db = lab.state().join("db").join("db");
        let len = std::fs::metadata(&db).expect("the sled log exists").len() as usize;
        std::fs::write(&db, garbage(len)).expect("damage the log");
    });
}

#[test]
fn garbage_in_the_sled_conf_is_refused_and_left_untouched() {
    refused_untouched(|lab| {
        std::fs::write(lab.state().join("db").join("conf"), garbage(40)).expect("damage the conf");
    });
}

#[test]
fn every_sled_file_overwritten_is_refused_and_left_untouched() {
    refused_untouched(|lab| {
        for (path, bytes) in files_under(&lab.state().join("db")) {
            std::fs::write(&path, garbage(bytes.len().max(64))).expect("damage a file");
        }
    });
}

#[test]
fn resume_without_a_store_says_so_and_creates_nothing() {
    // The operator is in the wrong directory (or forgot --state).
    let lab = Lab::new();
    let out = lab.run(&["resume"]);
    out.code(2);
    assert!(
        out.stderr.contains("no state store"),
        "the message says there is no store here:\n{}",
        out.stderr
    );
    assert!(!lab.state().exists(), "resume created a store");
    let out = lab.run(&["resume", "some-run"]);
    out.code(2);
    assert!(!lab.state().exists(), "resume RUN created a store");
}

#[test]
fn a_lock_taken_on_another_host_is_possibly_stale_and_taken_over_only_with_force_unlock() {
    let lab = Lab::with_plan(SLOW.replace("sleep 20", "true").as_str());
    lab.run(&["execute", "plan.toml"]).code(0);
    // As a process on another machine sharing the filesystem would leave it.
    let foreign = r#"{"host":"db-7.example","pid":4242,"started_at_ms":1795327000000}"#;
    lab.write("state/lock", foreign);
    for args in [&["status"][..], &["execute", "plan.toml", "--new"]] {
        let out = lab.run(args);
        out.code(2);
        assert!(
            out.stderr.contains("process 4242")
                && out.stderr.contains("db-7.example")
                && out.stderr.contains("stale")
                && out.stderr.contains("--force-unlock"),
            "{}",
            out.stderr
        );
    }
    assert_eq!(lab.lines("journal"), ["start"], "nothing ran");
    lab.run(&["--force-unlock", "execute", "plan.toml", "--new"])
        .code(0);
    assert_eq!(lab.lines("journal"), ["start", "start"]);
    // Released cleanly: no holder is named any more.
    lab.run(&["status"]).code(0);
}

#[test]
fn a_store_left_by_a_killed_process_is_taken_at_once() {
    let lab = Lab::with_plan(&SLOW.replace("echo start", "echo $$ > step.pid; echo start"));
    let holder = lab.spawn(&["execute", "plan.toml"]);
    lab.wait_for_line("journal", "start");
    crate::support::signal(&holder, libc::SIGKILL);
    let (out, _) = wait_with_deadline(holder, Duration::from_secs(10));
    assert_eq!(out.code, None, "killed by a signal");
    // No unlock step, and the step the dead process left running (it is still there, as
    // after a real crash) does not hold the lock either.
    let s = lab.status();
    assert_eq!(crate::support::state_of(&s, "wait"), "running");
    lab.run(&["runs"]).code(0);
    // The orphaned step (its own process group) is not needed any more.
    if let Ok(pid) = lab.lines("step.pid").concat().parse::<i32>() {
        // SAFETY: kill(2) on the process group our test's step created.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
    }
}
