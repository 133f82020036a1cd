//! Starting and resuming runs.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::exec::ExecError;
use crate::exec::approval::{ApprovalPolicy, NoApprovals};
use crate::exec::clock::{digest, new_run_id, now_ms};
use crate::exec::dispatcher::{Dispatcher, Finished, RunSetup};
use crate::exec::event::{RunEvent, RunEventKind};
use crate::exec::fingerprint::step_fingerprint;
use crate::exec::resume::{ResumeOptions, prepare};
use crate::graph::{ExecutionGraph, expand};
use crate::params::Params;
use crate::plan::Plan;
use crate::state::{Mutation, RunOutcome, RunRecord, RunStore, StepRecord, StepState};
use crate::step::{Redactor, StepRegistry};

/// Runs plans against a store. Build one with [`ExecutorBuilder`].
pub struct Executor {
    registry: StepRegistry,
    store: Arc<dyn RunStore>,
    approvals: Arc<dyn ApprovalPolicy>,
    parallel: usize,
    grace: Duration,
    kill_after_commits: Option<u64>,
    interrupts: Option<mpsc::UnboundedReceiver<()>>,
    settings: BTreeMap<String, String>,
}

impl std::fmt::Debug for Executor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Executor")
            .field("parallel", &self.parallel)
            .finish_non_exhaustive()
    }
}

/// Builds an [`Executor`].
#[must_use]
pub struct ExecutorBuilder {
    inner: Executor,
}

impl ExecutorBuilder {
    /// With these step types and this store; no approvals, 16 steps at once.
    pub fn new(registry: StepRegistry, store: Arc<dyn RunStore>) -> Self {
        Self {
            inner: Executor {
                registry,
                store,
                approvals: Arc::new(NoApprovals),
                parallel: 16,
                grace: Duration::from_secs(10),
                kill_after_commits: None,
                interrupts: None,
                settings: BTreeMap::new(),
            },
        }
    }

    /// How many steps may run at once (`--parallel`).
    pub fn parallel(mut self, n: usize) -> Self {
        self.inner.parallel = n.max(1);
        self
    }

    /// Who approves manual steps.
    pub fn approvals(mut self, policy: Arc<dyn ApprovalPolicy>) -> Self {
        self.inner.approvals = policy;
        self
    }

    /// How long running steps get after an interrupt before they are killed.
    pub fn grace(mut self, grace: Duration) -> Self {
        self.inner.grace = grace;
        self
    }

    /// Each `()` received is an interrupt (Ctrl-C, SIGTERM); the second kills at once.
    pub fn interrupts(mut self, rx: mpsc::UnboundedReceiver<()>) -> Self {
        self.inner.interrupts = Some(rx);
        self
    }

    /// A setting recorded with the run (a new one, or added to a resumed one), e.g.
    /// `ssh.host_key_checking`.
    pub fn setting(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.inner.settings.insert(key.into(), value.into());
        self
    }

    /// Test-only fault hook: the process kills itself with SIGKILL right after its `n`th
    /// store commit, as a crash or power cut would.
    pub fn kill_after_commits(mut self, n: Option<u64>) -> Self {
        self.inner.kill_after_commits = n;
        self
    }

    /// The executor.
    pub fn build(self) -> Executor {
        self.inner
    }
}

/// How a run stands when [`Executor::execute`] or [`Executor::resume`] returns.
#[derive(Clone, Debug)]
pub struct RunReport {
    /// The run's id.
    pub run_id: String,
    /// Succeeded, failed, paused or interrupted.
    pub outcome: RunOutcome,
    /// Every instance's record.
    pub steps: Vec<StepRecord>,
}

impl RunReport {
    /// Instances waiting for approval.
    pub fn awaiting_approval(&self) -> Vec<&str> {
        self.steps
            .iter()
            .filter(|r| r.state == StepState::AwaitingApproval)
            .map(|r| r.instance_id.as_str())
            .collect()
    }
}

fn counts(records: &[StepRecord]) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for r in records {
        *out.entry(r.state.as_str().to_string()).or_insert(0) += 1;
    }
    out
}

impl Executor {
    fn setup(&mut self, plan: &Plan, params: &Params, graph: ExecutionGraph) -> RunSetup {
        RunSetup {
            plan: Arc::new(plan.clone()),
            params: Arc::new(params.clone()),
            graph: Arc::new(graph),
            registry: self.registry.clone(),
            store: self.store.clone(),
            approvals: self.approvals.clone(),
            parallel: self.parallel,
            grace: self.grace,
            kill_after_commits: self.kill_after_commits,
            interrupts: self.interrupts.take(),
        }
    }

    /// Starts a new run of `plan` (read from `plan_path`) and drives it to its end, a
    /// failure, or a pause.
    ///
    /// # Errors
    /// [`ExecError`] when the run cannot be driven (the store failed); a failed step is
    /// reported in [`RunReport::outcome`].
    pub async fn execute(
        mut self,
        plan: &Plan,
        params: &Params,
        plan_path: &str,
        on_event: &mut (dyn FnMut(&RunEvent) + Send),
    ) -> Result<RunReport, ExecError> {
        let graph = expand(plan, params).map_err(ExecError::Plan)?;
        let run_id = new_run_id();
        let run = RunRecord {
            v: 1,
            id: run_id.clone(),
            plan_name: plan.name.clone(),
            plan_path: plan_path.to_string(),
            // A secret's value may be written in the plan itself (a `default`): the stored
            // copy is redacted like everything else; the hash is of the real text.
            plan_text: Redactor::new(params.secret_values()).redact(plan.source.text()),
            plan_hash: digest(plan.source.text()),
            params: params
                .iter()
                .filter(|(k, _)| !params.is_secret(k))
                .map(|(k, v)| (k.to_string(), v.to_json()))
                .collect(),
            secret_params: params
                .iter()
                .filter(|(k, _)| params.is_secret(k))
                .map(|(k, _)| k.to_string())
                .collect(),
            started_at_ms: now_ms(),
            ended_at_ms: None,
            outcome: RunOutcome::Running,
            settings: self.settings.clone(),
        };
        let records: Vec<StepRecord> = graph
            .instances
            .iter()
            .enumerate()
            .map(|(i, inst)| {
                StepRecord::pending(
                    &run_id,
                    &inst.id,
                    step_fingerprint(plan, graph.instances[i].step),
                )
            })
            .collect();
        let n = records.len();
        let mut first: Vec<Mutation> = vec![Mutation::Run(run.clone())];
        first.extend(records.iter().cloned().map(Mutation::Step));
        let setup = self.setup(plan, params, graph);
        let mut d = Dispatcher::new(setup, run.clone(), records, on_event);
        d.commit_now(first).await?;
        d.announce(RunEventKind::RunStarted {
            plan: plan.name.clone(),
            instances: n,
            already_done: 0,
            resumed: false,
        });
        let finished = d.run().await;
        self.end_of_run().await;
        self.finish(run, finished?, on_event).await
    }

    /// Continues run `run_id` with `plan` (re-read from its file) and `params` (its stored
    /// values plus secrets given again).
    ///
    /// # Errors
    /// [`ExecError::PlanChanged`], [`ExecError::InDoubt`] (the run is left paused),
    /// [`ExecError::UnknownRun`], [`ExecError::UnknownInstance`], [`ExecError::Store`].
    pub async fn resume(
        mut self,
        run_id: &str,
        plan: &Plan,
        params: &Params,
        options: &ResumeOptions,
        on_event: &mut (dyn FnMut(&RunEvent) + Send),
    ) -> Result<RunReport, ExecError> {
        let store = self.store.clone();
        let id = run_id.to_string();
        let snapshot = tokio::task::spawn_blocking(move || store.load_run(&id))
            .await
            .map_err(|e| ExecError::Internal(e.to_string()))??
            .ok_or_else(|| ExecError::UnknownRun(run_id.to_string()))?;
        let graph = expand(plan, params).map_err(ExecError::Plan)?;
        let fingerprints: Vec<String> = graph
            .instances
            .iter()
            .map(|i| step_fingerprint(plan, i.step))
            .collect();
        let new_hash = digest(plan.source.text());
        let plan_changed = new_hash != snapshot.run.plan_hash;
        let mut run = snapshot.run.clone();
        // Settings given to this resume (e.g. accepting new host keys) are recorded too.
        run.settings
            .extend(self.settings.iter().map(|(k, v)| (k.clone(), v.clone())));
        let prepared = match prepare(
            &snapshot,
            plan,
            &self.registry,
            &graph,
            &fingerprints,
            plan_changed,
            options,
        ) {
            Ok(p) => p,
            Err(e) => {
                if matches!(e, ExecError::InDoubt { .. }) {
                    run.outcome = RunOutcome::Paused;
                    run.ended_at_ms = Some(now_ms());
                    let store = self.store.clone();
                    let m = vec![Mutation::Run(run)];
                    tokio::task::spawn_blocking(move || store.commit(&m))
                        .await
                        .map_err(|e| ExecError::Internal(e.to_string()))??;
                }
                return Err(e);
            }
        };
        run.outcome = RunOutcome::Running;
        run.ended_at_ms = None;
        if plan_changed {
            run.plan_text = Redactor::new(params.secret_values()).redact(plan.source.text());
            run.plan_hash = new_hash;
        }
        let already_done = prepared
            .records
            .iter()
            .filter(|r| r.state.is_success())
            .count();
        let n = prepared.records.len();
        let mut first: Vec<Mutation> = vec![Mutation::Run(run.clone())];
        first.extend(prepared.records.iter().cloned().map(Mutation::Step));
        let setup = self.setup(plan, params, graph);
        let mut d = Dispatcher::new(setup, run.clone(), prepared.records, on_event);
        if !prepared.diff.is_empty() {
            let diff = prepared.diff.clone();
            d.announce(RunEventKind::PlanChanged {
                added: diff.added,
                removed: diff.removed,
                changed: diff.changed,
            });
        }
        if !prepared.rerun.is_empty() {
            d.announce(RunEventKind::Rerunning {
                instances: prepared.rerun.clone(),
            });
        }
        d.commit_now(first).await?;
        d.announce(RunEventKind::RunStarted {
            plan: plan.name.clone(),
            instances: n,
            already_done,
            resumed: true,
        });
        let finished = d.run().await;
        self.end_of_run().await;
        self.finish(run, finished?, on_event).await
    }

    /// Lets every step type release what it kept open across steps.
    async fn end_of_run(&self) {
        for t in self.registry.types() {
            t.end_of_run().await;
        }
    }

    async fn finish(
        &self,
        mut run: RunRecord,
        finished: Finished,
        on_event: &mut (dyn FnMut(&RunEvent) + Send),
    ) -> Result<RunReport, ExecError> {
        run.outcome = finished.outcome;
        run.ended_at_ms = Some(now_ms());
        let store = self.store.clone();
        let m = vec![Mutation::Run(run.clone())];
        tokio::task::spawn_blocking(move || store.commit(&m))
            .await
            .map_err(|e| ExecError::Internal(e.to_string()))??;
        let records = finished.records;
        let in_doubt = if finished.outcome == RunOutcome::Interrupted {
            records
                .iter()
                .filter(|r| r.state == StepState::Running)
                .map(|r| r.instance_id.clone())
                .collect()
        } else {
            Vec::new()
        };
        on_event(&RunEvent {
            version: crate::exec::EVENT_VERSION,
            run_id: run.id.clone(),
            at_ms: now_ms(),
            kind: RunEventKind::RunFinished {
                outcome: finished.outcome,
                counts: counts(&records),
                awaiting_approval: records
                    .iter()
                    .filter(|r| r.state == StepState::AwaitingApproval)
                    .map(|r| r.instance_id.clone())
                    .collect(),
                in_doubt,
                failed: records
                    .iter()
                    .filter(|r| r.state == StepState::Failed && !r.failure_ignored)
                    .map(|r| {
                        (
                            r.instance_id.clone(),
                            r.last_error.clone().unwrap_or_default(),
                        )
                    })
                    .collect(),
            },
        });
        Ok(RunReport {
            run_id: run.id,
            outcome: finished.outcome,
            steps: records,
        })
    }
}
