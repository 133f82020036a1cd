//! The executor on the in-memory store: dispatch by needs, policies, retries, captures,
//! approvals, finally, resume decisions. Steps are real local processes.

use std::sync::Arc;

use rok_plan::engine::exec::{ExecutorBuilder, PreApproved, RunEvent, RunReport};
use rok_plan::engine::params::{ParamInputs, resolve_params};
use rok_plan::engine::state::{MemoryStore, RunOutcome, StepState};
use rok_plan::engine::{PlanSource, load_plan};

fn plan(text: &str) -> rok_plan::engine::Plan {
    match load_plan(
        &PlanSource::new("t.toml", text.to_string()),
        &rok_plan::steps::builtin(),
    ) {
        Ok(p) => p,
        Err(d) => panic!(
            "invalid test plan: {:?}",
            d.iter()
                .map(|x| x.message().to_string())
                .collect::<Vec<_>>()
        ),
    }
}

async fn run(text: &str, sets: &[&str]) -> (RunReport, Vec<RunEvent>, Arc<MemoryStore>) {
    let plan = plan(text);
    let mut inputs = ParamInputs::new();
    for s in sets {
        inputs = inputs.set(*s);
    }
    let params = resolve_params(&plan, &inputs).expect("params");
    let store = Arc::new(MemoryStore::new());
    let mut events = Vec::new();
    let report = ExecutorBuilder::new(rok_plan::steps::builtin(), store.clone())
        .parallel(4)
        .build()
        .execute(&plan, &params, "t.toml", &mut |e: &RunEvent| {
            events.push(e.clone())
        })
        .await
        .expect("the run is driven");
    (report, events, store)
}

fn state(r: &RunReport, id: &str) -> StepState {
    r.steps
        .iter()
        .find(|s| s.instance_id == id)
        .unwrap_or_else(|| panic!("no instance {id}"))
        .state
}

#[tokio::test]
async fn a_chain_runs_in_order_and_outputs_flow() {
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal");
    let j = journal.display();
    let (r, _, _) = run(
        &format!(
            r#"
[plan]
name = "t"
[[step]]
id = "a"
type = "shell"
run = "echo version: 1.2.3; echo a >> {j}"
capture = {{ version = 'version: (\S+)' }}
[[step]]
id = "b"
type = "shell"
needs = ["a"]
run = "echo b {{{{ steps.a.outputs.version }}}} >> {j}"
"#
        ),
        &[],
    )
    .await;
    assert_eq!(r.outcome, RunOutcome::Succeeded);
    assert_eq!(std::fs::read_to_string(&journal).unwrap(), "a\nb 1.2.3\n");
    assert_eq!(state(&r, "b"), StepState::Succeeded);
}

#[tokio::test]
async fn retries_count_attempts_and_continue_blocks_dependents() {
    let (r, events, _) = run(
        r#"
[plan]
name = "t"
[[step]]
id = "flaky"
type = "shell"
run = "exit 3"
retry = { attempts = 3, delay = "10ms", backoff = 2.0 }
on_failure = "continue"
[[step]]
id = "after"
type = "noop"
needs = ["flaky"]
[[step]]
id = "independent"
type = "noop"
"#,
        &[],
    )
    .await;
    assert_eq!(r.outcome, RunOutcome::Failed);
    let flaky = r.steps.iter().find(|s| s.instance_id == "flaky").unwrap();
    assert_eq!(flaky.attempts, 3);
    assert_eq!(flaky.exit_status, Some(3));
    assert_eq!(state(&r, "after"), StepState::Blocked);
    assert_eq!(state(&r, "independent"), StepState::Succeeded);
    let retries = events
        .iter()
        .filter(|e| {
            matches!(
                e.kind,
                rok_plan::engine::exec::RunEventKind::StepRetrying { .. }
            )
        })
        .count();
    assert_eq!(retries, 2);
}

#[tokio::test]
async fn manual_steps_pause_without_approval_and_pass_with_it() {
    let text = r#"
[plan]
name = "t"
[[step]]
id = "swap"
type = "manual"
instructions = "swap the disk"
[[step]]
id = "after"
type = "noop"
needs = ["swap"]
[[step]]
id = "other"
type = "noop"
"#;
    let (r, _, _) = run(text, &[]).await;
    assert_eq!(r.outcome, RunOutcome::Paused);
    assert_eq!(state(&r, "swap"), StepState::AwaitingApproval);
    assert_eq!(state(&r, "after"), StepState::Pending);
    assert_eq!(state(&r, "other"), StepState::Succeeded);

    let plan = plan(text);
    let params = resolve_params(&plan, &ParamInputs::new()).unwrap();
    let store = Arc::new(MemoryStore::new());
    let policy = PreApproved {
        approver: "alice".into(),
        instances: vec!["swap".into()],
        all: false,
    };
    let r = ExecutorBuilder::new(rok_plan::steps::builtin(), store.clone())
        .approvals(Arc::new(policy))
        .build()
        .execute(&plan, &params, "t.toml", &mut |_: &RunEvent| {})
        .await
        .unwrap();
    assert_eq!(r.outcome, RunOutcome::Succeeded);
    use rok_plan::engine::state::RunStore;
    let snap = store.load_run(&r.run_id).unwrap().unwrap();
    assert_eq!(snap.approvals["swap"].approver, "alice");
}

#[tokio::test]
async fn rolling_group_runs_one_element_at_a_time_and_finally_runs_after_failure() {
    let dir = tempfile::tempdir().unwrap();
    let j = dir.path().join("j");
    let jd = j.display();
    let (r, _, _) = run(
        &format!(
            r#"
[plan]
name = "t"
[params.nodes]
type = "list"
[[group]]
id = "nodes"
for_each = "params.nodes"
max_parallel = 1
[[step]]
id = "one"
group = "nodes"
type = "shell"
run = "echo start {{{{ item }}}} >> {jd}; sleep 0.05; echo end {{{{ item }}}} >> {jd}"
[[step]]
id = "two"
group = "nodes"
type = "shell"
needs = ["one"]
run = "test {{{{ item }}}} != n2"
[[step]]
id = "cleanup"
type = "shell"
finally = true
when = "run.failed"
run = "echo cleanup >> {jd}"
"#
        ),
        &["nodes=n1,n2,n3"],
    )
    .await;
    let journal = std::fs::read_to_string(&j).unwrap();
    assert_eq!(
        journal, "start n1\nend n1\nstart n2\nend n2\ncleanup\n",
        "n3 never starts after n2 fails"
    );
    assert_eq!(r.outcome, RunOutcome::Failed);
    assert_eq!(state(&r, "nodes/n2/two"), StepState::Failed);
    let n3 = r
        .steps
        .iter()
        .find(|s| s.instance_id == "nodes/n3/one")
        .unwrap();
    assert_eq!(n3.state, StepState::Blocked);
    assert_eq!(
        n3.last_error.as_deref(),
        Some("`nodes` stopped after 1 failed element(s)")
    );
    assert_eq!(state(&r, "cleanup"), StepState::Succeeded);
}

#[tokio::test]
async fn timeouts_fail_the_attempt_and_kill_the_process_group() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("pid");
    let (r, _, _) = run(
        &format!(
            r#"
[plan]
name = "t"
[[step]]
id = "slow"
type = "shell"
run = "sleep 30 & echo $! > {}; wait"
timeout = "300ms"
"#,
            pidfile.display()
        ),
        &[],
    )
    .await;
    assert_eq!(r.outcome, RunOutcome::Failed);
    let slow = r.steps.iter().find(|s| s.instance_id == "slow").unwrap();
    assert!(
        slow.last_error
            .as_deref()
            .unwrap_or("")
            .contains("timed out"),
        "{:?}",
        slow.last_error
    );
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // The background `sleep` was in the step's process group: it is gone too.
    let alive = std::path::Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z ");
    assert!(!alive, "the grandchild {pid} survived the timeout");
}

#[tokio::test]
async fn secrets_are_redacted_from_outputs_and_errors() {
    let (r, events, store) = run(
        r#"
[plan]
name = "t"
[params.pw]
secret = true
[[step]]
id = "leak"
type = "shell"
run = "echo the password is {{ params.pw }}; echo {{ params.pw }} >&2; exit 1"
"#,
        &["pw=hunter2"],
    )
    .await;
    assert_eq!(r.outcome, RunOutcome::Failed);
    let everything = format!("{:?}{:?}", r.steps, events);
    assert!(!everything.contains("hunter2"), "{everything}");
    use rok_plan::engine::state::RunStore;
    let out = store.read_output(&r.run_id, "leak").unwrap();
    let text: String = out.iter().map(|o| o.text.clone()).collect();
    assert!(text.contains("the password is ***"), "{text}");
    let snap = store.load_run(&r.run_id).unwrap().unwrap();
    assert!(!format!("{snap:?}").contains("hunter2"));
}
