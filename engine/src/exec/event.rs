//! What a run reports as it goes: the only door to output. Reporters (human progress, JSON
//! lines) receive these; they never read the store.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::state::{RunOutcome, StepState};
use crate::step::Stream;

/// The version of the event format (`--output json` prints one event per line).
pub const EVENT_VERSION: u32 = 1;

/// One event.
#[derive(Clone, Debug, Serialize)]
pub struct RunEvent {
    /// [`EVENT_VERSION`].
    pub version: u32,
    /// The run.
    pub run_id: String,
    /// When (unix ms).
    pub at_ms: u64,
    /// What happened.
    #[serde(flatten)]
    pub kind: RunEventKind,
}

/// What happened.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum RunEventKind {
    /// A run starts (or resumes).
    RunStarted {
        /// `[plan] name`.
        plan: String,
        /// Instances in all.
        instances: usize,
        /// Instances already finished (on resume).
        already_done: usize,
        /// True on `resume`.
        resumed: bool,
    },
    /// The plan changed since the run began and `--allow-plan-change` was given.
    PlanChanged {
        /// Instances added.
        added: Vec<String>,
        /// Instances removed.
        removed: Vec<String>,
        /// Instances whose step changed (they run again).
        changed: Vec<String>,
    },
    /// Instances that `--rerun` will run again, before anything starts.
    Rerunning {
        /// Their ids.
        instances: Vec<String>,
    },
    /// An attempt starts (its `running` is durable).
    StepStarted {
        /// The instance.
        instance: String,
        /// 1-based attempt.
        attempt: u32,
        /// What it does (redacted).
        action: String,
    },
    /// Output of an attempt (redacted).
    StepOutput {
        /// The instance.
        instance: String,
        /// 1-based attempt.
        attempt: u32,
        /// The stream.
        stream: Stream,
        /// The text.
        text: String,
    },
    /// An attempt failed and another follows after `delay_ms`.
    StepRetrying {
        /// The instance.
        instance: String,
        /// The attempt that failed.
        attempt: u32,
        /// Why it failed.
        error: String,
        /// Wait before the next attempt.
        delay_ms: u64,
    },
    /// A manual step waits for an operator.
    ApprovalNeeded {
        /// The instance.
        instance: String,
        /// What the operator must do.
        instructions: String,
    },
    /// An operator approved a manual step.
    Approved {
        /// The instance.
        instance: String,
        /// Who.
        approver: String,
    },
    /// An instance reached a state that is durable now.
    StepFinished {
        /// The instance.
        instance: String,
        /// Its state.
        state: StepState,
        /// Attempts made.
        attempts: u32,
        /// Wall time of its attempts (ms).
        duration_ms: Option<u64>,
        /// The last error.
        error: Option<String>,
        /// The last exit status.
        exit_status: Option<i32>,
    },
    /// Ctrl-C or SIGTERM: no new steps; running ones get `grace_ms`, then are killed.
    Interrupting {
        /// The grace period.
        grace_ms: u64,
    },
    /// The run stopped (for good, or paused).
    RunFinished {
        /// How it stands.
        outcome: RunOutcome,
        /// Instances per state.
        counts: BTreeMap<String, usize>,
        /// Manual steps waiting for approval.
        awaiting_approval: Vec<String>,
        /// Steps found in doubt that need a decision (`--assume-done` / `--rerun`).
        in_doubt: Vec<String>,
        /// Failed instances with their errors.
        failed: Vec<(String, String)>,
    },
}
