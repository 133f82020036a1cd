//! The loop that drives a run. It alone holds the run's state and writes the store.
//!
//! ```text
//!            ┌───────────── AttemptMsg (output, asking, done) ─────────────┐
//!            ▼                                                             │
//!   ┌──────────────────┐  commit(batch) ┌───────────┐              ┌───────┴──────┐
//!   │    dispatcher    │ ─────────────▶ │ RunStore  │              │ attempt task │
//!   │ ready set, units │ ◀───── ok ──── └───────────┘   spawn      │ check, run,  │
//!   │ states, retries  │ ───────────── after the commit ─────────▶ │ timeout      │
//!   └──────────────────┘                                           └──────────────┘
//!            │ events, after their state is durable
//!            ▼
//!        reporters
//! ```
//!
//! Every pass: start what is ready (a `when` that is false is `skipped`, a step's
//! `running` is batched), commit the batch once, then emit its events and spawn its
//! attempts. So `running` is durable before a side effect starts, a result is durable
//! before a dependent starts, and the transitions of concurrent steps share one flush.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use minijinja::Value;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::exec::ExecError;
use crate::exec::approval::ApprovalPolicy;
use crate::exec::attempt::{AttemptMsg, AttemptReport, AttemptSpec, run_attempt};
use crate::exec::clock::now_ms;
use crate::exec::event::{EVENT_VERSION, RunEvent, RunEventKind};
use crate::graph::ExecutionGraph;
use crate::params::Params;
use crate::plan::{OnFailure, Plan};
use crate::state::{
    ApprovalRecord, Mutation, OutputRecord, RunOutcome, RunRecord, RunStore, StepRecord, StepState,
};
use crate::step::{FieldKind, Fields, Redactor, StepOutcome, StepRegistry};
use crate::template::{Templates, render_fields, render_value};

/// What the dispatcher needs, fixed for the run.
pub(crate) struct RunSetup {
    pub(crate) plan: Arc<Plan>,
    pub(crate) params: Arc<Params>,
    pub(crate) graph: Arc<ExecutionGraph>,
    pub(crate) registry: StepRegistry,
    pub(crate) store: Arc<dyn RunStore>,
    pub(crate) approvals: Arc<dyn ApprovalPolicy>,
    pub(crate) parallel: usize,
    pub(crate) grace: Duration,
    pub(crate) kill_after_commits: Option<u64>,
    pub(crate) interrupts: Option<mpsc::UnboundedReceiver<()>>,
}

/// How the loop ended.
pub(crate) struct Finished {
    pub(crate) outcome: RunOutcome,
    pub(crate) records: Vec<StepRecord>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Admission {
    Yes,
    /// Not in this phase (finally, abort, interrupt).
    NotNow,
    /// Its element of this unit is not admitted yet.
    Held(usize, usize),
}

enum Msg {
    Attempt(AttemptMsg),
    RetryDue(usize),
}

struct UnitState {
    /// Ready instances waiting for their element to be admitted, by element: released
    /// when that element starts or a slot frees, so that a rolling group of a thousand
    /// elements is not rescanned on every pass.
    held: BTreeMap<usize, Vec<usize>>,
    started: Vec<bool>,
    remaining: Vec<usize>,
    active: u32,
    failed: BTreeSet<usize>,
    stopped: bool,
}

pub(crate) struct Dispatcher<'e> {
    s: RunSetup,
    run: RunRecord,
    records: Vec<StepRecord>,
    dependents: Vec<Vec<usize>>,
    waiting: Vec<usize>,
    ready: BTreeSet<usize>,
    running: usize,
    retries_pending: usize,
    units: Vec<UnitState>,
    abort: bool,
    interrupted: bool,
    run_failed: bool,
    finally_phase: bool,
    batch: Vec<Mutation>,
    events: Vec<RunEventKind>,
    to_spawn: Vec<AttemptSpec>,
    outputs: Vec<OutputRecord>,
    output_seq: Vec<u64>,
    cancels: BTreeMap<usize, CancellationToken>,
    commits: u64,
    redactor: Arc<Redactor>,
    templates: Templates,
    /// Per plan step: whether any of its templates mentions `steps` (else its context
    /// needs no walk over its dependencies, which is quadratic on long chains).
    reads_steps: Vec<bool>,
    /// The parameters as templates see them, built once (a long list parameter would
    /// otherwise be copied for every instance).
    params_value: Value,
    emit: &'e mut (dyn FnMut(&RunEvent) + Send),
    tx: mpsc::UnboundedSender<Msg>,
    rx: mpsc::UnboundedReceiver<Msg>,
}

fn terminal_for_element(state: StepState) -> bool {
    matches!(
        state,
        StepState::Succeeded
            | StepState::Satisfied
            | StepState::Skipped
            | StepState::Failed
            | StepState::Blocked
    )
}

impl<'e> Dispatcher<'e> {
    /// Prepares the loop from the instances' records (new ones are `pending`).
    pub(crate) fn new(
        s: RunSetup,
        run: RunRecord,
        records: Vec<StepRecord>,
        emit: &'e mut (dyn FnMut(&RunEvent) + Send),
    ) -> Self {
        let graph = s.graph.clone();
        let n = graph.instances.len();
        let success = |r: &StepRecord| {
            r.state.is_success() || (r.state == StepState::Failed && r.failure_ignored)
        };
        // A `finally` instance waits only for the `finally` instances it needs: the others
        // have all ended by the time the finally phase begins, whatever their outcome.
        let counts = |i: usize, d: usize| !graph.instances[i].finally || graph.instances[d].finally;
        let mut dependents = vec![Vec::new(); n];
        let mut waiting = vec![0; n];
        for (i, inst) in graph.instances.iter().enumerate() {
            for &d in &inst.deps {
                if counts(i, d) {
                    dependents[d].push(i);
                    if !success(&records[d]) {
                        waiting[i] += 1;
                    }
                }
            }
        }
        let mut units: Vec<UnitState> = graph
            .units
            .iter()
            .map(|u| UnitState {
                held: BTreeMap::new(),
                started: vec![false; u.elements.len()],
                remaining: vec![0; u.elements.len()],
                active: 0,
                failed: BTreeSet::new(),
                stopped: false,
            })
            .collect();
        for (i, inst) in graph.instances.iter().enumerate() {
            for &(u, e) in &inst.units {
                let state = records[i].state;
                if state != StepState::Pending {
                    units[u].started[e] = true;
                }
                if !terminal_for_element(state) {
                    units[u].remaining[e] += 1;
                }
                if state == StepState::Failed && !records[i].failure_ignored {
                    units[u].failed.insert(e);
                }
            }
        }
        for u in &mut units {
            u.active = u
                .started
                .iter()
                .zip(&u.remaining)
                .filter(|(s, r)| **s && **r > 0)
                .count() as u32;
        }
        let ready = (0..n)
            .filter(|&i| records[i].state == StepState::Pending && waiting[i] == 0)
            .collect();
        let redactor = Arc::new(Redactor::new(s.params.secret_values()));
        let (tx, rx) = mpsc::unbounded_channel();
        let output_seq = vec![0; n];
        let params_value = s.params.to_template_value(false);
        let reads_steps = s
            .plan
            .steps
            .iter()
            .map(|step| {
                let texts = crate::plan::check::template_fields(step, &s.registry);
                texts.iter().any(|(t, _, _)| t.contains("steps"))
                    || step
                        .when
                        .as_ref()
                        .is_some_and(|w| w.value.contains("steps"))
                    || s.plan
                        .groups
                        .iter()
                        .any(|g| g.when.as_ref().is_some_and(|w| w.value.contains("steps")))
            })
            .collect();
        Self {
            s,
            run,
            records,
            dependents,
            waiting,
            ready,
            running: 0,
            retries_pending: 0,
            units,
            abort: false,
            interrupted: false,
            run_failed: false,
            finally_phase: false,
            batch: Vec::new(),
            events: Vec::new(),
            to_spawn: Vec::new(),
            outputs: Vec::new(),
            output_seq,
            cancels: BTreeMap::new(),
            commits: 0,
            redactor,
            templates: Templates::new(),
            reads_steps,
            params_value,
            emit,
            tx,
            rx,
        }
    }

    fn emit(&mut self, kind: RunEventKind) {
        let event = RunEvent {
            version: EVENT_VERSION,
            run_id: self.run.id.clone(),
            at_ms: now_ms(),
            kind,
        };
        (self.emit)(&event);
    }

    /// Emits an event now (used before the loop starts, e.g. `run_started`).
    pub(crate) fn announce(&mut self, kind: RunEventKind) {
        self.emit(kind);
    }

    /// Commits `mutations` at once (outside the loop: the run record at start).
    pub(crate) async fn commit_now(&mut self, mutations: Vec<Mutation>) -> Result<(), ExecError> {
        self.batch.extend(mutations);
        self.flush().await
    }

    fn set(&mut self, i: usize, state: StepState, update: impl FnOnce(&mut StepRecord)) {
        let r = &mut self.records[i];
        r.state = state;
        update(r);
        self.batch.push(Mutation::Step(r.clone()));
    }

    fn finished_event(&mut self, i: usize) {
        let r = &self.records[i];
        let kind = RunEventKind::StepFinished {
            instance: r.instance_id.clone(),
            state: r.state,
            attempts: r.attempts,
            duration_ms: r
                .started_at_ms
                .zip(r.ended_at_ms)
                .map(|(s, e)| e.saturating_sub(s)),
            error: r.last_error.clone(),
            exit_status: r.exit_status,
        };
        self.events.push(kind);
    }

    /// Drives the run until nothing more can happen.
    pub(crate) async fn run(mut self) -> Result<Finished, ExecError> {
        self.prepare_step_types();
        let mut interrupts = self.s.interrupts.take();
        let mut grace_deadline: Option<tokio::time::Instant> = None;
        loop {
            self.start_ready();
            self.flush().await?;
            // After an abort or an interrupt no retry will start: its delay is not waited for.
            let retries_due = self.retries_pending > 0 && !self.regular_blocked();
            if self.running == 0 && !retries_due && self.ready_startable().is_none() {
                // Not after an interrupt, nor at a pause: the run goes on later, and its
                // finally steps run when it really ends (a node stays cordoned while the
                // operator does the manual work).
                if !self.finally_phase && !self.interrupted && !self.pausing() {
                    self.begin_finally();
                    if self.ready_startable().is_some() {
                        continue;
                    }
                }
                break;
            }
            let msg = tokio::select! {
                msg = self.rx.recv() => msg,
                sig = async {
                    match interrupts.as_mut() {
                        Some(rx) => rx.recv().await,
                        None => std::future::pending().await,
                    }
                } => {
                    match sig {
                        Some(()) => self.on_interrupt(&mut grace_deadline),
                        None => interrupts = None,
                    }
                    continue;
                }
                () = async {
                    match grace_deadline {
                        Some(d) => tokio::time::sleep_until(d).await,
                        None => std::future::pending().await,
                    }
                } => {
                    grace_deadline = None;
                    self.cancel_running();
                    continue;
                }
            };
            let Some(msg) = msg else { break };
            self.handle(msg);
            // Take everything else already waiting, so that it shares one commit.
            while let Ok(msg) = self.rx.try_recv() {
                self.handle(msg);
            }
        }
        self.flush().await?;
        Ok(Finished {
            outcome: self.outcome(),
            records: self.records,
        })
    }

    fn on_interrupt(&mut self, deadline: &mut Option<tokio::time::Instant>) {
        if self.interrupted {
            // A second interrupt: no more grace.
            self.cancel_running();
            return;
        }
        self.interrupted = true;
        *deadline = Some(tokio::time::Instant::now() + self.s.grace);
        let grace_ms = u64::try_from(self.s.grace.as_millis()).unwrap_or(u64::MAX);
        self.emit(RunEventKind::Interrupting { grace_ms });
    }

    fn cancel_running(&mut self) {
        for token in self.cancels.values() {
            token.cancel();
        }
    }

    fn outcome(&self) -> RunOutcome {
        if self.interrupted {
            return RunOutcome::Interrupted;
        }
        let failed = self.records.iter().any(|r| {
            (r.state == StepState::Failed && !r.failure_ignored) || r.state == StepState::Blocked
        });
        if failed || self.run_failed {
            RunOutcome::Failed
        } else if self
            .records
            .iter()
            .all(|r| r.state.is_success() || r.failure_ignored)
        {
            RunOutcome::Succeeded
        } else {
            RunOutcome::Paused
        }
    }

    /// Whether the run stops here only to wait for an approval (nothing failed).
    fn pausing(&self) -> bool {
        let failed = self.run_failed
            || self.records.iter().any(|r| {
                (r.state == StepState::Failed && !r.failure_ignored)
                    || r.state == StepState::Blocked
            });
        !failed
            && self
                .records
                .iter()
                .any(|r| r.state == StepState::AwaitingApproval)
    }

    fn begin_finally(&mut self) {
        self.finally_phase = true;
    }

    fn regular_blocked(&self) -> bool {
        self.abort || self.interrupted
    }

    /// The first ready instance that may start now, if any.
    fn ready_startable(&self) -> Option<usize> {
        if self.interrupted {
            return None;
        }
        self.ready.iter().copied().find(|&i| self.may_start(i))
    }

    fn may_start(&self, i: usize) -> bool {
        self.admission(i) == Admission::Yes
    }

    fn admission(&self, i: usize) -> Admission {
        let inst = &self.s.graph.instances[i];
        if inst.finally {
            if !self.finally_phase {
                return Admission::NotNow;
            }
        } else if self.regular_blocked() || self.finally_phase {
            return Admission::NotNow;
        }
        for &(u, e) in &inst.units {
            let unit = &self.units[u];
            let admitted = unit.started[e]
                || (!unit.stopped
                    && self.s.graph.units[u]
                        .max_parallel
                        .is_none_or(|m| unit.active < m));
            if !admitted {
                return Admission::Held(u, e);
            }
        }
        Admission::Yes
    }

    fn start_ready(&mut self) {
        // Starting an instance can end it at once (a `when` that is false, a field that
        // cannot be rendered) and make its dependents ready; no attempt message would come
        // to wake the loop for them, so they are started in the same pass.
        loop {
            let mut progress = false;
            let candidates: Vec<usize> = self.ready.iter().copied().collect();
            for i in candidates {
                if self.running >= self.s.parallel.max(1) {
                    return;
                }
                if self.records[i].state != StepState::Pending {
                    // Blocked or decided while it was held.
                    self.ready.remove(&i);
                    continue;
                }
                match self.admission(i) {
                    Admission::Yes => {}
                    Admission::NotNow => continue,
                    Admission::Held(u, e) => {
                        self.ready.remove(&i);
                        self.units[u].held.entry(e).or_default().push(i);
                        continue;
                    }
                }
                self.ready.remove(&i);
                for (u, e) in self.s.graph.instances[i].units.clone() {
                    let unit = &mut self.units[u];
                    if !unit.started[e] {
                        unit.started[e] = true;
                        unit.active += 1;
                        // The element's other ready instances may start now too.
                        let released = unit.held.remove(&e).unwrap_or_default();
                        self.ready.extend(released);
                    }
                }
                self.start(i);
                progress = true;
            }
            if !progress || self.ready.is_empty() {
                return;
            }
        }
    }

    /// The template context of instance `i` at run time.
    fn context(&self, i: usize, redact: bool) -> Value {
        let inst = &self.s.graph.instances[i];
        let plan = &self.s.plan;
        let mut steps = BTreeMap::new();
        // Every instance this one (transitively) needs, by step id; a step of the same group
        // element wins over a step of the same id elsewhere.
        let mut seen = BTreeSet::new();
        let mut stack: Vec<usize> = if self.reads_steps[inst.step] {
            inst.deps.clone()
        } else {
            Vec::new()
        };
        while let Some(d) = stack.pop() {
            if !seen.insert(d) {
                continue;
            }
            stack.extend(self.s.graph.instances[d].deps.iter().copied());
            let dep = &self.s.graph.instances[d];
            let id = plan.steps[dep.step].id.value.clone();
            let local = inst.group.is_some()
                && dep.group == inst.group
                && dep.group_element == inst.group_element;
            let r = &self.records[d];
            let entry: BTreeMap<&str, Value> = [
                ("outputs", Value::from_serialize_compat(&r.outputs)),
                ("stdout", Value::from(r.stdout.clone().unwrap_or_default())),
                ("state", Value::from(r.state.as_str())),
            ]
            .into_iter()
            .collect();
            if local || !steps.contains_key(&id) {
                steps.insert(id, Value::from(entry));
            }
        }
        let run = minijinja::context! { id => self.run.id.clone(), failed => self.run_failed };
        let params = if redact {
            self.s.params.to_template_value(true)
        } else {
            self.params_value.clone()
        };
        match &inst.item {
            Some(item) => minijinja::context! {
                params => params, steps => Value::from(steps), run => run,
                item => Value::from_serialize_compat(item), index => inst.index,
            },
            None => {
                minijinja::context! { params => params, steps => Value::from(steps), run => run }
            }
        }
    }

    /// Tells each step type what its pending instances will look like, where that is
    /// known now (fields that read no other step's outputs), so that it can get ready in
    /// the background (e.g. ssh connects to the hosts of a rolling upgrade ahead of time).
    fn prepare_step_types(&self) {
        let plan = &self.s.plan;
        let mut by_type: BTreeMap<&str, Vec<Fields>> = BTreeMap::new();
        for (i, inst) in self.s.graph.instances.iter().enumerate() {
            let step = &plan.steps[inst.step];
            if self.records[i].state != StepState::Pending || self.reads_steps[inst.step] {
                continue;
            }
            let Some(step_type) = self.s.registry.get(&step.type_name.value) else {
                continue;
            };
            if !step_type.prepares() {
                continue;
            }
            if let Ok(fields) = render_fields(
                &self.templates,
                step_type.schema(),
                step,
                plan.defaults.context.as_ref(),
                &self.context(i, false),
            ) {
                by_type
                    .entry(step.type_name.value.as_str())
                    .or_default()
                    .push(fields);
            }
        }
        for (name, instances) in by_type {
            if let Some(step_type) = self.s.registry.get(name).cloned() {
                tokio::spawn(async move { step_type.prepare(instances).await });
            }
        }
    }

    fn start(&mut self, i: usize) {
        let inst = self.s.graph.instances[i].clone();
        let plan = self.s.plan.clone();
        let step = &plan.steps[inst.step];
        let ctx = self.context(i, false);
        // `when`: the group's, then the step's.
        let group = inst.group.map(|g| &plan.groups[g]);
        for w in group
            .and_then(|g| g.when.as_ref())
            .into_iter()
            .chain(step.when.as_ref())
        {
            match self.templates.eval(&w.value, &ctx) {
                Ok(v) if v.is_true() => {}
                Ok(_) => {
                    let now = now_ms();
                    self.set(i, StepState::Skipped, |r| {
                        r.started_at_ms.get_or_insert(now);
                        r.ended_at_ms = Some(now);
                    });
                    self.finished_event(i);
                    self.on_success(i);
                    return;
                }
                Err(e) => {
                    let reason = self.redactor.redact(&format!(
                        "`when = \"{}\"` cannot be evaluated: {e}",
                        w.value
                    ));
                    self.fail_final(i, reason, None);
                    return;
                }
            }
        }
        let Some(step_type) = self.s.registry.get(&step.type_name.value).cloned() else {
            self.fail_final(
                i,
                format!("no step type `{}` is registered", step.type_name.value),
                None,
            );
            return;
        };
        let rendered = render_fields(
            &self.templates,
            step_type.schema(),
            step,
            plan.defaults.context.as_ref(),
            &ctx,
        )
        .and_then(|fields| {
            let check = step
                .check
                .as_ref()
                .map(|c| render_value(&self.templates, "check", c, FieldKind::Shell, &ctx))
                .transpose()?
                .and_then(|v| v.as_str().map(str::to_string));
            let mut env = Vec::new();
            for (k, v) in &step.env {
                let value = render_value(&self.templates, k, v, FieldKind::Text, &ctx)?;
                env.push((k.clone(), value.as_str().unwrap_or_default().to_string()));
            }
            Ok((fields, check, env))
        });
        let (fields, check, env) = match rendered {
            Ok(r) => r,
            Err(e) => {
                let reason = self.redactor.redact(&format!("cannot render: {e}"));
                self.fail_final(i, reason, None);
                return;
            }
        };
        let attempt = self.records[i].attempts + 1;
        let now = now_ms();
        self.set(i, StepState::Running, |r| {
            r.attempts = attempt;
            r.started_at_ms.get_or_insert(now);
            r.ended_at_ms = None;
        });
        let action = self.redactor.redact(&step_type.describe(&fields));
        self.events.push(RunEventKind::StepStarted {
            instance: inst.id.clone(),
            attempt,
            action,
        });
        let token = CancellationToken::new();
        self.cancels.insert(i, token.clone());
        self.running += 1;
        self.to_spawn.push(AttemptSpec {
            idx: i,
            run_id: self.run.id.clone(),
            instance_id: inst.id.clone(),
            attempt,
            step: step_type,
            fields,
            check,
            env,
            timeout: step.effective_timeout(&plan.defaults),
            captures: step.capture.clone(),
            approvals: self.s.approvals.clone(),
            redactor: self.redactor.clone(),
            cancel: token,
        });
    }

    /// Commits the batch, then emits its events and spawns its attempts.
    async fn flush(&mut self) -> Result<(), ExecError> {
        if !self.outputs.is_empty() {
            let chunks = std::mem::take(&mut self.outputs);
            let store = self.s.store.clone();
            spawn_store(move || store.append_output(&chunks)).await?;
        }
        if !self.batch.is_empty() {
            let batch = std::mem::take(&mut self.batch);
            let store = self.s.store.clone();
            spawn_store(move || store.commit(&batch)).await?;
            self.commits += 1;
            if self.s.kill_after_commits == Some(self.commits) {
                // Test-only fault hook: die exactly as a power cut or `kill -9` would.
                // SAFETY: kill(2) on our own pid; no memory is touched.
                unsafe {
                    libc::kill(libc::getpid(), libc::SIGKILL);
                }
            }
        }
        for kind in std::mem::take(&mut self.events) {
            self.emit(kind);
        }
        for spec in std::mem::take(&mut self.to_spawn) {
            let tx = self.tx.clone();
            let (fwd_tx, mut fwd_rx) = mpsc::unbounded_channel();
            tokio::spawn(run_attempt(spec, fwd_tx));
            tokio::spawn(async move {
                while let Some(m) = fwd_rx.recv().await {
                    if tx.send(Msg::Attempt(m)).is_err() {
                        break;
                    }
                }
            });
        }
        Ok(())
    }

    fn handle(&mut self, msg: Msg) {
        match msg {
            Msg::RetryDue(i) => {
                self.retries_pending -= 1;
                if self.records[i].state == StepState::Pending {
                    self.ready.insert(i);
                }
            }
            Msg::Attempt(AttemptMsg::Output {
                idx,
                attempt,
                chunk,
            }) => {
                self.output_seq[idx] += 1;
                let record = OutputRecord {
                    run_id: self.run.id.clone(),
                    instance_id: self.records[idx].instance_id.clone(),
                    attempt,
                    seq: self.output_seq[idx],
                    stream: chunk.stream,
                    text: chunk.text.clone(),
                    at_ms: now_ms(),
                };
                self.outputs.push(record);
                let instance = self.records[idx].instance_id.clone();
                self.emit(RunEventKind::StepOutput {
                    instance,
                    attempt,
                    stream: chunk.stream,
                    text: chunk.text,
                });
            }
            Msg::Attempt(AttemptMsg::Asking { idx, instructions }) => {
                let instance = self.records[idx].instance_id.clone();
                self.emit(RunEventKind::ApprovalNeeded {
                    instance,
                    instructions,
                });
            }
            Msg::Attempt(AttemptMsg::Done(report)) => self.on_done(report),
        }
    }

    fn on_done(&mut self, report: AttemptReport) {
        let i = report.idx;
        self.running -= 1;
        self.cancels.remove(&i);
        if report.cancelled && self.interrupted {
            // Killed by the interrupt: what it did is unknown. It stays `running`, so
            // that resume treats it as in doubt instead of guessing.
            return;
        }
        let now = now_ms();
        let stdout = Some(report.stdout.clone()).filter(|s| !s.is_empty());
        match report.outcome {
            StepOutcome::Succeeded {
                outputs,
                exit_status,
            } => {
                if let Some(approver) = report.approver {
                    self.batch.push(Mutation::Approval(ApprovalRecord {
                        v: 1,
                        run_id: self.run.id.clone(),
                        instance_id: self.records[i].instance_id.clone(),
                        approver: approver.clone(),
                        at_ms: now,
                        plan_hash: self.run.plan_hash.clone(),
                    }));
                    let instance = self.records[i].instance_id.clone();
                    self.events
                        .push(RunEventKind::Approved { instance, approver });
                }
                self.set(i, StepState::Succeeded, |r| {
                    r.ended_at_ms = Some(now);
                    r.outputs = outputs;
                    r.stdout = stdout;
                    r.exit_status = exit_status;
                    r.last_error = None;
                });
                self.finished_event(i);
                self.on_success(i);
            }
            StepOutcome::Satisfied => {
                self.set(i, StepState::Satisfied, |r| {
                    r.ended_at_ms = Some(now);
                    r.last_error = None;
                });
                self.finished_event(i);
                self.on_success(i);
            }
            StepOutcome::AwaitingApproval { .. } => {
                self.set(i, StepState::AwaitingApproval, |r| {
                    r.ended_at_ms = Some(now)
                });
                self.finished_event(i);
            }
            StepOutcome::Failed {
                reason,
                exit_status,
            } => {
                let reason = self.redactor.redact(&reason);
                let step = &self.s.plan.steps[self.s.graph.instances[i].step];
                let retry = step.effective_retry(&self.s.plan.defaults);
                if report.attempt < retry.attempts && !self.regular_blocked() {
                    let delay = retry.delay_before(report.attempt + 1);
                    self.set(i, StepState::Pending, |r| {
                        r.last_error = Some(reason.clone());
                        r.exit_status = exit_status;
                        r.stdout = stdout;
                    });
                    let instance = self.records[i].instance_id.clone();
                    self.events.push(RunEventKind::StepRetrying {
                        instance,
                        attempt: report.attempt,
                        error: reason,
                        delay_ms: u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                    });
                    self.retries_pending += 1;
                    let tx = self.tx.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(delay).await;
                        let _ = tx.send(Msg::RetryDue(i));
                    });
                } else {
                    self.records[i].stdout = stdout;
                    self.fail_final(i, reason, exit_status);
                }
            }
        }
    }

    /// Instance `i` ended well (or its failure is ignored): its dependents may go on.
    fn on_success(&mut self, i: usize) {
        self.element_progress(i);
        for d in self.dependents[i].clone() {
            self.waiting[d] = self.waiting[d].saturating_sub(1);
            if self.waiting[d] == 0 && self.records[d].state == StepState::Pending {
                self.ready.insert(d);
            }
        }
    }

    fn element_progress(&mut self, i: usize) {
        for &(u, e) in &self.s.graph.instances[i].units {
            let unit = &mut self.units[u];
            unit.remaining[e] = unit.remaining[e].saturating_sub(1);
            if unit.remaining[e] == 0 && unit.started[e] {
                unit.active = unit.active.saturating_sub(1);
                // A slot is free: the next held element (in list order) may be admitted.
                if let Some((_, waiting)) = unit.held.pop_first() {
                    self.ready.extend(waiting);
                }
            }
        }
    }

    /// The last attempt of `i` failed (or it could not be attempted): apply `on_failure`.
    fn fail_final(&mut self, i: usize, reason: String, exit_status: Option<i32>) {
        let step = &self.s.plan.steps[self.s.graph.instances[i].step];
        let policy = step.effective_on_failure(&self.s.plan.defaults);
        let now = now_ms();
        let ignored = policy == OnFailure::Ignore;
        self.set(i, StepState::Failed, |r| {
            r.ended_at_ms = Some(now);
            r.started_at_ms.get_or_insert(now);
            r.last_error = Some(reason);
            r.exit_status = exit_status;
            r.failure_ignored = ignored;
        });
        self.finished_event(i);
        if ignored {
            self.on_success(i);
            return;
        }
        self.run_failed = true;
        self.element_progress(i);
        for (u, e) in self.s.graph.instances[i].units.clone() {
            self.units[u].failed.insert(e);
            let allowed = self.s.graph.units[u].max_failures as usize;
            if self.units[u].failed.len() > allowed && !self.units[u].stopped {
                self.units[u].stopped = true;
                self.block_unstarted(u);
            }
        }
        match policy {
            OnFailure::Abort => self.abort = true,
            OnFailure::Continue | OnFailure::Ignore => self.block_dependents(i),
        }
    }

    fn block(&mut self, d: usize, why: String) {
        let now = now_ms();
        self.ready.remove(&d);
        self.set(d, StepState::Blocked, |r| {
            r.last_error = Some(why);
            r.ended_at_ms = Some(now);
        });
        self.element_progress(d);
        self.finished_event(d);
    }

    fn block_dependents(&mut self, i: usize) {
        let failed = self.records[i].instance_id.clone();
        let mut stack = self.dependents[i].clone();
        while let Some(d) = stack.pop() {
            if self.records[d].state != StepState::Pending || self.s.graph.instances[d].finally {
                continue;
            }
            self.block(d, format!("`{failed}` failed"));
            stack.extend(self.dependents[d].iter().copied());
        }
    }

    fn block_unstarted(&mut self, u: usize) {
        let id = self.s.graph.units[u].id.clone();
        let failed = self.units[u].failed.len();
        for d in 0..self.records.len() {
            let unstarted = self.s.graph.instances[d]
                .units
                .iter()
                .any(|&(uu, e)| uu == u && !self.units[u].started[e]);
            if unstarted && self.records[d].state == StepState::Pending {
                self.block(
                    d,
                    format!("`{id}` stopped after {failed} failed element(s)"),
                );
            }
        }
    }
}

async fn spawn_store<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, crate::state::StoreError> + Send + 'static,
) -> Result<T, ExecError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(ExecError::Store),
        Err(e) => Err(ExecError::Internal(format!(
            "the state store task failed: {e}"
        ))),
    }
}

/// Values as templates see them.
trait FromSerializeCompat {
    fn from_serialize_compat<T: serde::Serialize>(v: &T) -> Value;
}

impl FromSerializeCompat for Value {
    fn from_serialize_compat<T: serde::Serialize>(v: &T) -> Value {
        Value::from(minijinja::value::Serde(
            serde_json::to_value(v).unwrap_or_default(),
        ))
    }
}
