//! The state store: one conformance suite for every backend, then sled on real files:
//! reopen, SIGKILL crash, lock, damaged stores, raw-byte search.

mod store_support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rok_plan_engine::state::{
    ApprovalRecord, LockHolder, MemoryStore, Mutation, OutputRecord, RunOutcome, RunRecord,
    RunStore, SledStore, StepRecord, StepState, StoreError,
};
use rok_plan_engine::step::Stream;
use store_support::{files_containing, tree_without};

// ---------------------------------------------------------------------------------------
// Records

fn run(id: &str, started_at_ms: u64) -> RunRecord {
    serde_json::from_value(serde_json::json!({
        "v": 1,
        "id": id,
        "plan_name": "upgrade",
        "plan_path": "plan.toml",
        "plan_text": "[plan]\nname = \"upgrade\"\n",
        "plan_hash": "h1",
        "params": {"nodes": ["a", "b"]},
        "secret_params": ["token"],
        "started_at_ms": started_at_ms,
        "outcome": RunOutcome::Running,
    }))
    .unwrap()
}

fn step(run_id: &str, instance_id: &str, state: StepState) -> StepRecord {
    // Built from JSON so that fields added later (always with defaults) need no change here.
    serde_json::from_value(serde_json::json!({
        "v": 1,
        "run_id": run_id,
        "instance_id": instance_id,
        "state": state,
        "attempts": 1,
        "started_at_ms": 1_000,
        "spec_hash": "s",
    }))
    .unwrap()
}

fn approval(run_id: &str, instance_id: &str) -> ApprovalRecord {
    ApprovalRecord {
        v: 1,
        run_id: run_id.into(),
        instance_id: instance_id.into(),
        approver: "alice".into(),
        at_ms: 2_000,
        plan_hash: "h1".into(),
    }
}

fn chunk(run_id: &str, instance_id: &str, attempt: u32, seq: u64, text: &str) -> OutputRecord {
    OutputRecord {
        run_id: run_id.into(),
        instance_id: instance_id.into(),
        attempt,
        seq,
        stream: if seq.is_multiple_of(2) {
            Stream::Stdout
        } else {
            Stream::Stderr
        },
        text: text.into(),
        at_ms: 3_000 + seq,
    }
}

// ---------------------------------------------------------------------------------------
// Conformance

/// What every [`RunStore`] must do (MemoryStore defines the semantics).
fn conformance(store: &dyn RunStore) {
    // Missing run.
    assert_eq!(store.load_run("nope").unwrap(), None);
    assert!(store.list_runs().unwrap().is_empty());
    assert!(store.read_output("nope", "a").unwrap().is_empty());

    // Create a run together with its first steps.
    store
        .commit(&[
            Mutation::Run(run("r2", 200)),
            Mutation::Step(step("r2", "a", StepState::Running)),
            Mutation::Step(step("r2", "b", StepState::Pending)),
        ])
        .unwrap();
    let snap = store.load_run("r2").unwrap().unwrap();
    assert_eq!(snap.run, run("r2", 200));
    assert_eq!(snap.steps.len(), 2);
    assert_eq!(snap.steps["a"].state, StepState::Running);

    // Re-commit replaces; approvals are kept by instance.
    let mut done = step("r2", "a", StepState::Succeeded);
    done.outputs.insert("version".into(), "1.31".into());
    done.exit_status = Some(0);
    done.ended_at_ms = Some(1_500);
    store
        .commit(&[
            Mutation::Step(done.clone()),
            Mutation::Approval(approval("r2", "b")),
        ])
        .unwrap();
    let snap = store.load_run("r2").unwrap().unwrap();
    assert_eq!(snap.steps["a"], done);
    assert_eq!(snap.approvals["b"], approval("r2", "b"));
    let mut second = approval("r2", "b");
    second.approver = "bob".into();
    store.commit(&[Mutation::Approval(second.clone())]).unwrap();
    assert_eq!(
        store.load_run("r2").unwrap().unwrap().approvals["b"],
        second
    );

    // Atomicity: a batch with a step of an unknown run changes nothing.
    let before = store.load_run("r2").unwrap();
    let err = store
        .commit(&[
            Mutation::Step(step("r2", "a", StepState::Failed)),
            Mutation::Run(run("r9", 900)),
            Mutation::Step(step("ghost", "x", StepState::Running)),
        ])
        .unwrap_err();
    assert!(matches!(err, StoreError::Codec { .. }), "{err}");
    assert_eq!(store.load_run("r2").unwrap(), before);
    assert_eq!(store.load_run("r9").unwrap(), None);
    assert_eq!(store.load_run("ghost").unwrap(), None);
    let err = store
        .commit(&[Mutation::Approval(approval("ghost", "x"))])
        .unwrap_err();
    assert!(matches!(err, StoreError::Codec { .. }), "{err}");

    // Runs whose ids share a prefix do not see each other's steps.
    store
        .commit(&[
            Mutation::Run(run("r20", 300)),
            Mutation::Step(step("r20", "z", StepState::Pending)),
        ])
        .unwrap();
    assert_eq!(
        store
            .load_run("r2")
            .unwrap()
            .unwrap()
            .steps
            .keys()
            .collect::<Vec<_>>(),
        ["a", "b"]
    );

    // List order: oldest first (created in that order here, so every backend agrees).
    store.commit(&[Mutation::Run(run("r3", 400))]).unwrap();
    let ids: Vec<String> = store
        .list_runs()
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(ids, ["r2", "r20", "r3"]);
    // Replacing a run keeps its place.
    let mut ended = run("r2", 200);
    ended.outcome = RunOutcome::Succeeded;
    ended.ended_at_ms = Some(5_000);
    store.commit(&[Mutation::Run(ended.clone())]).unwrap();
    let runs = store.list_runs().unwrap();
    assert_eq!(runs[0], ended);
    assert_eq!(store.load_run("r2").unwrap().unwrap().steps.len(), 2);

    // Output: in seq order across attempts, per instance.
    store
        .append_output(&[
            chunk("r2", "a", 1, 0, "one\n"),
            chunk("r2", "a", 1, 1, "two\n"),
        ])
        .unwrap();
    store
        .append_output(&[
            chunk("r2", "b", 1, 0, "other\n"),
            chunk("r2", "a", 2, 2, "three\n"),
            chunk("r2", "a", 2, 3, "four\n"),
        ])
        .unwrap();
    let out = store.read_output("r2", "a").unwrap();
    assert_eq!(
        out.iter()
            .map(|c| (c.attempt, c.seq, c.text.as_str()))
            .collect::<Vec<_>>(),
        [
            (1, 0, "one\n"),
            (1, 1, "two\n"),
            (2, 2, "three\n"),
            (2, 3, "four\n")
        ]
    );
    assert_eq!(out[1], chunk("r2", "a", 1, 1, "two\n"));
    assert_eq!(store.read_output("r2", "b").unwrap().len(), 1);
    assert!(store.read_output("r20", "a").unwrap().is_empty());
}

#[test]
fn conformance_memory() {
    conformance(&MemoryStore::new());
}

#[test]
fn conformance_sled() {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(&dir.path().join("state"), false).unwrap();
    conformance(&store);
}

#[test]
fn sled_commits_from_many_threads() {
    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(SledStore::open(dir.path(), false).unwrap());
    store.commit(&[Mutation::Run(run("r1", 1))]).unwrap();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                for i in 0..50 {
                    let id = format!("t{t}-{i:02}");
                    store
                        .commit(&[Mutation::Step(step("r1", &id, StepState::Running))])
                        .unwrap();
                    store.append_output(&[chunk("r1", &id, 1, 0, "x")]).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(store.load_run("r1").unwrap().unwrap().steps.len(), 200);
}

#[test]
fn sled_lists_runs_by_start_time_then_id() {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(dir.path(), false).unwrap();
    for (id, at) in [("b", 10), ("a", 10), ("z", 5), ("c", 30)] {
        store.commit(&[Mutation::Run(run(id, at))]).unwrap();
    }
    let ids: Vec<String> = store
        .list_runs()
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(ids, ["z", "a", "b", "c"]);
}

// ---------------------------------------------------------------------------------------
// Reopen

#[test]
fn sled_reopens_at_once_in_the_same_process_and_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = SledStore::open(dir.path(), false).unwrap();
        store.commit(&[Mutation::Run(run("r1", 1))]).unwrap();
    }
    // Drop and reopen repeatedly: sled's flock outlives its drop (sled#1289).
    for i in 0..10 {
        let store = SledStore::open(dir.path(), false).unwrap();
        let snap = store.load_run("r1").unwrap().unwrap();
        assert_eq!(snap.steps.len(), i);
        store
            .commit(&[Mutation::Step(step(
                "r1",
                &format!("s{i:02}"),
                StepState::Succeeded,
            ))])
            .unwrap();
        store
            .append_output(&[chunk("r1", "s00", 1, i as u64, "x")])
            .unwrap();
    }
    let store = SledStore::open(dir.path(), false).unwrap();
    assert_eq!(store.load_run("r1").unwrap().unwrap().steps.len(), 10);
    assert_eq!(store.read_output("r1", "s00").unwrap().len(), 10);
}

#[test]
fn open_existing_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("state");
    assert!(SledStore::open_existing(&missing, false).unwrap().is_none());
    assert!(!missing.exists());
    std::fs::create_dir(&missing).unwrap();
    assert!(SledStore::open_existing(&missing, false).unwrap().is_none());
    assert_eq!(std::fs::read_dir(&missing).unwrap().count(), 0);
    drop(SledStore::open(&missing, false).unwrap());
    let store = SledStore::open_existing(&missing, false).unwrap().unwrap();
    assert!(store.list_runs().unwrap().is_empty());
}

#[test]
fn an_interrupted_creation_is_started_again() {
    let dir = tempfile::tempdir().unwrap();
    // What a crash while creating leaves: the marker file, and a database without ours.
    std::fs::write(dir.path().join("db.creating"), b"").unwrap();
    {
        let db = sled::open(dir.path().join("db")).unwrap();
        db.flush().unwrap();
    }
    std::thread::sleep(Duration::from_millis(200));
    let store = SledStore::open(dir.path(), false).unwrap();
    store.commit(&[Mutation::Run(run("r1", 1))]).unwrap();
    assert!(!dir.path().join("db.creating").exists());
    drop(store);
    let store = SledStore::open(dir.path(), false).unwrap();
    assert!(store.load_run("r1").unwrap().is_some());
}

#[test]
fn a_second_open_in_the_same_process_is_locked() {
    let dir = tempfile::tempdir().unwrap();
    let _first = SledStore::open(dir.path(), false).unwrap();
    match SledStore::open(dir.path(), false) {
        Err(StoreError::Locked { holder, .. }) => assert_eq!(holder.pid, std::process::id()),
        other => panic!("expected Locked, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------
// Child processes: the test binary re-run with an env var selecting what it does.

const CHILD_MODE: &str = "ROK_PLAN_STORE_TEST_CHILD";
const CHILD_DIR: &str = "ROK_PLAN_STORE_TEST_DIR";
const CRASH_COMMITS: u64 = 400;

/// Not a test: the body of the child processes (does nothing unless the env var is set).
#[test]
fn child_process_entry() {
    let Ok(mode) = std::env::var(CHILD_MODE) else {
        return;
    };
    let dir = std::path::PathBuf::from(std::env::var(CHILD_DIR).unwrap());
    if mode == "open" {
        // Run as an unprivileged user by the parent: report how the open ended.
        match SledStore::open(&dir, false) {
            Err(StoreError::Io { .. } | StoreError::Corrupt { .. }) => println!("refused"),
            Err(other) => println!("refused otherwise: {other}"),
            Ok(_) => println!("opened"),
        }
        return;
    }
    let store = SledStore::open(&dir, false).unwrap();
    match mode.as_str() {
        "hold" => {
            println!("holding");
            std::thread::sleep(Duration::from_secs(60));
        }
        "crash" => {
            store.commit(&[Mutation::Run(run("r1", 1))]).unwrap();
            for k in 1..=CRASH_COMMITS {
                let id = format!("s{k:04}");
                store
                    .append_output(&[chunk("r1", &id, 1, 0, &format!("out {k}"))])
                    .unwrap();
                let mut s = step("r1", &id, StepState::Succeeded);
                s.exit_status = Some(i32::try_from(k).unwrap());
                s.outputs.insert("k".into(), k.to_string());
                // Three trees in one transaction: the run counts the steps, an approval
                // goes with each; after a crash all three must agree.
                let mut r = run("r1", 1);
                r.settings.insert("last".into(), k.to_string());
                store
                    .commit(&[
                        Mutation::Run(r),
                        Mutation::Step(s),
                        Mutation::Approval(approval("r1", &id)),
                    ])
                    .unwrap();
                // Printed only once the commit returned: the parent may kill from here on.
                println!("committed {k}");
            }
            std::thread::sleep(Duration::from_secs(60));
        }
        "fork-then-hold" => {
            // A child forked to start a step has a copy of every descriptor, the lock's
            // included, until it execs; this one keeps them for 300 ms, then exits.
            // SAFETY: the forked child only calls async-signal-safe functions.
            let pid = unsafe { libc::fork() };
            if pid == 0 {
                unsafe {
                    libc::usleep(300_000);
                    libc::_exit(0);
                }
            }
            println!("forked");
            std::thread::sleep(Duration::from_secs(60));
        }
        other => panic!("unknown child mode {other}"),
    }
}

fn spawn_child(mode: &str, dir: &Path) -> (Child, BufReader<std::process::ChildStdout>) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "child_process_entry",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_MODE, mode)
        .env(CHILD_DIR, dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let out = BufReader::new(child.stdout.take().unwrap());
    (child, out)
}

/// Reads the child's lines until `line`; panics if it ends first.
fn wait_for_line(out: &mut BufReader<std::process::ChildStdout>, line: &str) {
    let mut buf = String::new();
    loop {
        buf.clear();
        let n = out.read_line(&mut buf).unwrap();
        assert!(n > 0, "the child ended before printing `{line}`");
        // The first one shares its line with libtest's `test child_process_entry ... `.
        let got = buf.trim_end();
        if got == line || got.ends_with(&format!(" {line}")) {
            return;
        }
    }
}

/// A small pseudo-random sequence (no rand dependency): seeded from the clock, printed so a
/// failure can be told apart.
fn random_seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    nanos | 1
}

fn next_random(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// The run, steps and approvals written by one transaction survived (or not) together.
fn assert_consistent(snap: &rok_plan_engine::state::RunSnapshot) {
    let last = snap
        .run
        .settings
        .get("last")
        .map_or(0, |v| v.parse().unwrap());
    assert_eq!(snap.steps.len(), last, "run record and steps disagree");
    assert_eq!(
        snap.approvals.keys().collect::<Vec<_>>(),
        snap.steps.keys().collect::<Vec<_>>(),
        "approvals and steps disagree"
    );
}

#[test]
fn sigkill_right_after_a_commit_loses_nothing_that_was_committed() {
    let mut rng = random_seed();
    eprintln!("seed {rng}");
    for round in 0..8 {
        let dir = tempfile::tempdir().unwrap();
        let kill_at = 1 + next_random(&mut rng) % (CRASH_COMMITS - 50);
        let (mut child, mut out) = spawn_child("crash", dir.path());
        wait_for_line(&mut out, &format!("committed {kill_at}"));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();

        // The lock is free at once: no unlock step, no waiting.
        let t = Instant::now();
        let store = SledStore::open(dir.path(), false)
            .unwrap_or_else(|e| panic!("round {round}, killed at {kill_at}: {e}"));
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
        let snap = store.load_run("r1").unwrap().unwrap();
        let present = snap.steps.len() as u64;
        assert_consistent(&snap);
        assert!(
            present >= kill_at,
            "round {round}: killed after {kill_at}, found {present}"
        );
        // Commits are sequential: what survived is a prefix, each record whole.
        for k in 1..=present {
            let id = format!("s{k:04}");
            let s = &snap.steps[&id];
            assert_eq!(s.exit_status, Some(i32::try_from(k).unwrap()), "{id}");
            assert_eq!(s.outputs["k"], k.to_string());
            // Output appended before a commit is durable with it.
            let o = store.read_output("r1", &id).unwrap();
            assert_eq!(o.len(), 1, "{id}");
            assert_eq!(o[0].text, format!("out {k}"));
        }
        eprintln!("round {round}: killed after commit {kill_at}, {present} steps found");
    }
}

#[test]
fn sigkill_at_a_random_time_leaves_an_openable_store() {
    let mut rng = random_seed();
    eprintln!("seed {rng}");
    for round in 0..6 {
        let dir = tempfile::tempdir().unwrap();
        let (mut child, mut out) = spawn_child("crash", dir.path());
        wait_for_line(&mut out, "committed 1");
        // Anywhere in the middle of later commits (each a few ms in a debug build).
        std::thread::sleep(Duration::from_micros(next_random(&mut rng) % 30_000));
        child.kill().unwrap();
        child.wait().unwrap();
        let store =
            SledStore::open(dir.path(), false).unwrap_or_else(|e| panic!("round {round}: {e}"));
        let snap = store.load_run("r1").unwrap().unwrap();
        let n = snap.steps.len();
        let expected: Vec<String> = (1..=n).map(|k| format!("s{k:04}")).collect();
        assert_eq!(snap.steps.keys().cloned().collect::<Vec<_>>(), expected);
        assert_consistent(&snap);
        eprintln!("round {round}: {n} steps found");
    }
}

#[test]
fn a_store_held_by_another_process_is_refused_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, mut out) = spawn_child("hold", dir.path());
    wait_for_line(&mut out, "holding");
    let err = SledStore::open(dir.path(), false).unwrap_err();
    match &err {
        StoreError::Locked { holder, .. } => {
            assert_eq!(holder.pid, child.id());
            assert_eq!(holder.host, LockHolder::host_name());
        }
        other => panic!("expected Locked, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(msg.contains(&format!("process {}", child.id())), "{msg}");
    assert!(msg.contains(&LockHolder::host_name()), "{msg}");
    // open_existing is refused the same way (and a force does not override a live lock).
    assert!(matches!(
        SledStore::open_existing(dir.path(), true),
        Err(StoreError::Locked { .. })
    ));
    child.kill().unwrap();
    child.wait().unwrap();
    // Its holder died: the store is free at once.
    SledStore::open(dir.path(), false).unwrap();
}

#[test]
fn a_dead_holders_lock_still_held_by_its_forked_child_is_waited_for() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, mut out) = spawn_child("fork-then-hold", dir.path());
    wait_for_line(&mut out, "forked");
    child.kill().unwrap();
    child.wait().unwrap();
    // The holder is dead, its grandchild still has the flock for a moment: not `Locked`.
    let t = Instant::now();
    let store = SledStore::open(dir.path(), false)
        .unwrap_or_else(|e| panic!("after {:?}: {e}", t.elapsed()));
    drop(store);
    eprintln!("opened after {:?}", t.elapsed());
}

// ---------------------------------------------------------------------------------------
// Stale locks

fn write_lock(dir: &Path, host: &str, pid: u32) {
    let holder = LockHolder {
        host: host.into(),
        pid,
        started_at_ms: 1_700_000_000_000,
    };
    std::fs::write(dir.join("lock"), serde_json::to_string(&holder).unwrap()).unwrap();
}

#[test]
fn a_lock_taken_on_another_host_is_possibly_stale_until_forced() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = SledStore::open(dir.path(), false).unwrap();
        store.commit(&[Mutation::Run(run("r1", 1))]).unwrap();
    }
    write_lock(dir.path(), "other-host.example", 4242);
    let before = tree_without(dir.path(), &[]);
    let err = SledStore::open(dir.path(), false).unwrap_err();
    match &err {
        StoreError::PossiblyStale { holder, .. } => {
            assert_eq!(holder.host, "other-host.example");
            assert_eq!(holder.pid, 4242);
        }
        other => panic!("expected PossiblyStale, got {other:?}"),
    }
    assert!(err.to_string().contains("other-host.example"), "{err}");
    // Refusing changed nothing, not even the lock file.
    assert_eq!(tree_without(dir.path(), &[]), before);

    let store = SledStore::open(dir.path(), true).unwrap();
    assert!(store.load_run("r1").unwrap().is_some());
    drop(store);
    // A clean release clears the holder: no longer reported.
    assert_eq!(std::fs::read(dir.path().join("lock")).unwrap(), b"");
    SledStore::open(dir.path(), false).unwrap();
}

#[test]
fn a_lock_of_a_dead_process_on_this_host_is_just_taken() {
    let dir = tempfile::tempdir().unwrap();
    drop(SledStore::open(dir.path(), false).unwrap());
    write_lock(dir.path(), &LockHolder::host_name(), 999_999);
    let store = SledStore::open(dir.path(), false).unwrap();
    let text = std::fs::read_to_string(store.lock().path()).unwrap();
    let holder: LockHolder = serde_json::from_str(&text).unwrap();
    assert_eq!(holder.pid, std::process::id());
}

// ---------------------------------------------------------------------------------------
// Damaged stores: a clear error, and the files left byte for byte as they were.

fn populated_store_without_snapshot(dir: &Path) {
    {
        let store = SledStore::open(dir, false).unwrap();
        store.commit(&[Mutation::Run(run("r1", 1))]).unwrap();
        for i in 0..20 {
            store
                .commit(&[Mutation::Step(step(
                    "r1",
                    &format!("s{i}"),
                    StepState::Succeeded,
                ))])
                .unwrap();
            store
                .append_output(&[chunk("r1", &format!("s{i}"), 1, 0, "text")])
                .unwrap();
        }
    }
}

fn populated_store(dir: &Path) {
    populated_store_without_snapshot(dir);
    // A second open and close makes sled write a snapshot file.
    drop(SledStore::open(dir, false).unwrap());
}

fn garbage(len: usize, seed: u64) -> Vec<u8> {
    let mut s = seed | 1;
    (0..len).map(|_| next_random(&mut s) as u8).collect()
}

/// Opens a damaged store: must fail with Corrupt or Io and change nothing under `db`.
fn assert_refused_untouched(dir: &Path) -> StoreError {
    let before = tree_without(dir, &["lock"]);
    let err = SledStore::open(dir, false).expect_err("a damaged store must not open");
    assert!(
        matches!(err, StoreError::Corrupt { .. } | StoreError::Io { .. }),
        "{err:?}"
    );
    assert_eq!(
        tree_without(dir, &["lock"]),
        before,
        "files changed after: {err}"
    );
    eprintln!("refused: {err}");
    // The read-only commands get the same answer, and nothing changes either.
    assert!(SledStore::open_existing(dir, false).is_err());
    assert_eq!(
        tree_without(dir, &["lock"]),
        before,
        "files changed after: {err}"
    );
    err
}

#[test]
fn corrupt_db_is_a_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("db"), garbage(4096, 7)).unwrap();
    let err = assert_refused_untouched(dir.path());
    assert!(err.to_string().contains("corrupt or unreadable"), "{err}");
}

#[test]
fn corrupt_log_full_of_garbage() {
    let dir = tempfile::tempdir().unwrap();
    populated_store(dir.path());
    let log = dir.path().join("db/db");
    let len = std::fs::metadata(&log).unwrap().len() as usize;
    std::fs::write(&log, garbage(len, 11)).unwrap();
    assert_refused_untouched(dir.path());
}

#[test]
fn corrupt_log_truncated() {
    for (keep, snapshot) in [0, 7, 100, 4096, 9000]
        .into_iter()
        .flat_map(|k| [(k, true), (k, false)])
    {
        let dir = tempfile::tempdir().unwrap();
        if snapshot {
            populated_store(dir.path());
        } else {
            populated_store_without_snapshot(dir.path());
        }
        let log = std::fs::OpenOptions::new()
            .write(true)
            .open(dir.path().join("db/db"))
            .unwrap();
        log.set_len(keep).unwrap();
        drop(log);
        assert_refused_untouched(dir.path());
    }
}

#[test]
fn corrupt_conf() {
    for (name, bytes) in [
        ("truncated", b"segm".to_vec()),
        ("garbage", garbage(40, 3)),
        ("empty", Vec::new()),
    ] {
        let dir = tempfile::tempdir().unwrap();
        populated_store(dir.path());
        std::fs::write(dir.path().join("db/conf"), &bytes).unwrap();
        let err = assert_refused_untouched(dir.path());
        eprintln!("conf {name}: {err}");
    }
    let dir = tempfile::tempdir().unwrap();
    populated_store(dir.path());
    std::fs::remove_file(dir.path().join("db/conf")).unwrap();
    assert_refused_untouched(dir.path());
}

#[test]
fn corrupt_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    populated_store(dir.path());
    let snaps: Vec<_> = std::fs::read_dir(dir.path().join("db"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("snap."))
        .collect();
    assert!(!snaps.is_empty(), "sled wrote no snapshot");
    for s in &snaps {
        let len = std::fs::metadata(s.path()).unwrap().len() as usize;
        std::fs::write(s.path(), garbage(len, 5)).unwrap();
    }
    assert_refused_untouched(dir.path());
}

#[test]
fn a_sled_database_that_is_not_ours_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = sled::open(dir.path().join("db")).unwrap();
        db.insert("k", "v").unwrap();
        db.flush().unwrap();
    }
    // sled's own lock may still be held by its background thread (sled#1289).
    std::thread::sleep(Duration::from_millis(200));
    let err = assert_refused_untouched(dir.path());
    assert!(err.to_string().contains("not a rok-plan store"), "{err}");
}

fn chown_tree(path: &Path, id: u32) {
    std::os::unix::fs::chown(path, Some(id), Some(id)).unwrap();
    if path.is_dir() {
        for entry in std::fs::read_dir(path).unwrap() {
            chown_tree(&entry.unwrap().path(), id);
        }
    }
}

#[test]
fn an_unreadable_store_is_an_error_and_untouched_but_opens_when_readable() {
    // The control of the test below: the same child, the same store, a readable database.
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return; // Only the root path of the test below uses a child.
    }
    use std::os::unix::process::CommandExt;
    let dir = tempfile::tempdir().unwrap();
    populated_store(dir.path());
    chown_tree(dir.path(), 65534);
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "child_process_entry",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_MODE, "open")
        .env(CHILD_DIR, dir.path())
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("opened\n"),
        "the child said: {said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn an_unreadable_store_is_an_error_and_untouched() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    populated_store(dir.path());
    let db = dir.path().join("db");
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        // Root reads everything: the open is tried by a child running as `nobody`, for
        // whom the store directory is writable but its database is not readable.
        use std::os::unix::process::CommandExt;
        let before = store_support::tree_without(dir.path(), &[]);
        // The store belongs to `nobody`, so that only its database's mode can refuse it.
        chown_tree(dir.path(), 65534);
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o000)).unwrap();
        let out = Command::new(std::env::current_exe().unwrap())
            .args([
                "child_process_entry",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_MODE, "open")
            .env(CHILD_DIR, dir.path())
            .uid(65534)
            .gid(65534)
            .output()
            .unwrap();
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o755)).unwrap();
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(
            said.contains("refused\n"),
            "the child said: {said}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            before,
            store_support::tree_without(dir.path(), &[]),
            "the files changed"
        );
        return;
    }
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o000)).unwrap();
    let result = SledStore::open(dir.path(), false);
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert!(matches!(
        result,
        Err(StoreError::Io { .. } | StoreError::Corrupt { .. })
    ));
}

#[test]
fn a_record_that_does_not_decode_is_a_codec_error_naming_its_key() {
    let dir = tempfile::tempdir().unwrap();
    populated_store(dir.path());
    {
        // Write bad records with sled itself, as a damaged or newer store would have them.
        let db = open_raw_sled(&dir.path().join("db"));
        db.open_tree("steps")
            .unwrap()
            .insert(b"r1\0bad", &b"not json"[..])
            .unwrap();
        let newer = serde_json::json!({"v": 9, "id": "r2"}).to_string();
        db.open_tree("runs")
            .unwrap()
            .insert(b"r2", newer.as_bytes())
            .unwrap();
        db.flush().unwrap();
    }
    // Changed behind the store's back, so its clean-close record no longer matches: drop it,
    // as if the writer had crashed (else the open is refused as damaged, see below).
    std::fs::remove_file(dir.path().join("db.clean")).unwrap();
    let store = SledStore::open(dir.path(), false).unwrap();
    match store.load_run("r1") {
        Err(StoreError::Codec { key, .. }) => assert_eq!(key, "steps/r1/bad"),
        other => panic!("expected Codec, got {other:?}"),
    }
    match store.list_runs() {
        Err(StoreError::Codec { key, detail }) => {
            assert_eq!(key, "runs/r2");
            assert!(detail.contains("newer"), "{detail}");
        }
        other => panic!("expected Codec, got {other:?}"),
    }
    // The other runs' records are still read.
    assert!(store.read_output("r1", "s1").unwrap().len() == 1);
}

fn open_raw_sled(path: &Path) -> sled::Db {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match sled::open(path) {
            Ok(db) => return db,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("{e}"),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Raw-byte search (the executor's secret tests use the same helper).

#[test]
fn committed_text_is_found_in_the_raw_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(dir.path(), false).unwrap();
    let mut s = step("r1", "a", StepState::Succeeded);
    s.outputs.insert("token".into(), "needle-3f9a1c".into());
    store
        .commit(&[Mutation::Run(run("r1", 1)), Mutation::Step(s)])
        .unwrap();
    // Durable on return: already in sled's files while the store is open.
    let found = files_containing(dir.path(), b"needle-3f9a1c");
    assert!(!found.is_empty(), "the search method finds committed text");
    assert!(files_containing(dir.path(), b"never-written-7e2d").is_empty());
    drop(store);
    assert!(!files_containing(dir.path(), b"needle-3f9a1c").is_empty());
}

// ---------------------------------------------------------------------------------------
// Costs are measured by `cargo bench --bench store` (benches/store.rs).

#[test]
fn a_flipped_byte_anywhere_in_the_log_is_refused_or_harmless() {
    let mut rng = random_seed();
    eprintln!("seed {rng}");
    for snapshot in [true, false] {
        let template = tempfile::tempdir().unwrap();
        if snapshot {
            populated_store(template.path());
        } else {
            populated_store_without_snapshot(template.path());
        }
        flip_bytes(template.path(), &mut rng, snapshot);
    }
}

fn flip_bytes(template: &Path, rng: &mut u64, snapshot: bool) {
    // Where the records are: the rest of the segment is unused.
    let log = std::fs::read(template.join("db/db")).unwrap();
    let len = log.iter().rposition(|&b| b != 0).unwrap_or(0) as u64 + 1;
    eprintln!("records in the first {len} bytes of {}", log.len());
    let (mut opened, mut refused) = (0, 0);
    for _ in 0..25 {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("db")).unwrap();
        for entry in std::fs::read_dir(template.join("db")).unwrap().flatten() {
            if entry.path().is_file() {
                std::fs::copy(entry.path(), dir.path().join("db").join(entry.file_name())).unwrap();
            }
        }
        std::fs::copy(template.join("db.clean"), dir.path().join("db.clean")).unwrap();
        let log = dir.path().join("db/db");
        let mut bytes = std::fs::read(&log).unwrap();
        let at = (next_random(rng) % len) as usize;
        bytes[at] ^= 0xff;
        std::fs::write(&log, &bytes).unwrap();
        let before = tree_without(dir.path(), &["lock"]);
        match SledStore::open(dir.path(), false) {
            Ok(store) => {
                // Only a byte sled never reads: then nothing may be missing. (Without the
                // clean-close record, sled would take damage after its last snapshot for a
                // torn tail and keep only what comes before it.)
                let snap = store.load_run("r1").unwrap().unwrap();
                assert_eq!(snap.steps.len(), 20, "flip at {at} lost records");
                eprintln!("flip at {at}: opened, nothing lost");
                opened += 1;
            }
            Err(e) => {
                assert_eq!(tree_without(dir.path(), &["lock"]), before, "{e}");
                eprintln!("flip at {at}: refused: {e}");
                refused += 1;
            }
        }
    }
    eprintln!("snapshot {snapshot}: {opened} opened, {refused} refused");
}
