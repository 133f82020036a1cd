//! What the store keeps. These are a contract with every older and newer rok-plan that
//! reads the same store: fields are only added (with defaults), never renamed.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::step::Stream;

/// The state of a step instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepState {
    /// Not started (or to run again).
    Pending,
    /// Started, not known to have ended. Found on resume: the step is in doubt.
    Running,
    /// Done.
    Succeeded,
    /// Its `check` found the effect already in place.
    Satisfied,
    /// `when` was false.
    Skipped,
    /// Failed (after its retries).
    Failed,
    /// Not run because something it needs failed.
    Blocked,
    /// Waiting for an operator's approval.
    AwaitingApproval,
}

impl StepState {
    /// Ended well: dependents may start.
    pub fn is_success(self) -> bool {
        matches!(
            self,
            StepState::Succeeded | StepState::Satisfied | StepState::Skipped
        )
    }

    /// The name as shown and stored.
    pub fn as_str(self) -> &'static str {
        match self {
            StepState::Pending => "pending",
            StepState::Running => "running",
            StepState::Succeeded => "succeeded",
            StepState::Satisfied => "satisfied",
            StepState::Skipped => "skipped",
            StepState::Failed => "failed",
            StepState::Blocked => "blocked",
            StepState::AwaitingApproval => "awaiting_approval",
        }
    }
}

/// How a run stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunOutcome {
    /// Being driven (or its process died: the lock tells which).
    Running,
    /// Every step ended well.
    Succeeded,
    /// A step failed.
    Failed,
    /// Waiting for an approval or a decision about a step in doubt.
    Paused,
    /// Stopped by Ctrl-C or SIGTERM.
    Interrupted,
}

impl RunOutcome {
    /// The name as shown and stored.
    pub fn as_str(self) -> &'static str {
        match self {
            RunOutcome::Running => "running",
            RunOutcome::Succeeded => "succeeded",
            RunOutcome::Failed => "failed",
            RunOutcome::Paused => "paused",
            RunOutcome::Interrupted => "interrupted",
        }
    }

    /// Finished for good (nothing to resume).
    pub fn is_final(self) -> bool {
        self == RunOutcome::Succeeded
    }
}

fn v1() -> u32 {
    1
}

/// A run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Record version.
    #[serde(default = "v1")]
    pub v: u32,
    /// The run's id.
    pub id: String,
    /// `[plan] name`.
    pub plan_name: String,
    /// The plan file as given.
    pub plan_path: String,
    /// The plan's text when the run began.
    pub plan_text: String,
    /// A hash of the plan's text.
    pub plan_hash: String,
    /// Parameter values, without secrets.
    pub params: BTreeMap<String, serde_json::Value>,
    /// Names of the secret parameters (their values are never stored).
    #[serde(default)]
    pub secret_params: Vec<String>,
    /// Unix milliseconds.
    pub started_at_ms: u64,
    /// Unix milliseconds, once the run stopped (for now).
    #[serde(default)]
    pub ended_at_ms: Option<u64>,
    /// How it stands.
    pub outcome: RunOutcome,
    /// Settings recorded for the run (e.g. `host_key_checking = "accept-new"`).
    #[serde(default)]
    pub settings: BTreeMap<String, String>,
}

/// A step instance.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    /// Record version.
    #[serde(default = "v1")]
    pub v: u32,
    /// The run.
    pub run_id: String,
    /// The instance id.
    pub instance_id: String,
    /// Its state.
    pub state: StepState,
    /// Attempts started so far.
    #[serde(default)]
    pub attempts: u32,
    /// When the first attempt started (unix ms).
    #[serde(default)]
    pub started_at_ms: Option<u64>,
    /// When it ended (unix ms).
    #[serde(default)]
    pub ended_at_ms: Option<u64>,
    /// The last exit status, for commands.
    #[serde(default)]
    pub exit_status: Option<i32>,
    /// The last error (redacted).
    #[serde(default)]
    pub last_error: Option<String>,
    /// Outputs (redacted), kept for dependents, also across resumes.
    #[serde(default)]
    pub outputs: BTreeMap<String, String>,
    /// The step's stdout, trimmed (redacted), for `steps.ID.stdout`.
    #[serde(default)]
    pub stdout: Option<String>,
    /// A hash of the step's definition, to tell changed steps on resume.
    #[serde(default)]
    pub spec_hash: String,
    /// The step failed with `on_failure = "ignore"`: dependents went on, resume keeps it.
    #[serde(default)]
    pub failure_ignored: bool,
}

impl StepRecord {
    /// A step instance that has not started.
    pub fn pending(run_id: &str, instance_id: &str, spec_hash: String) -> Self {
        Self {
            v: 1,
            run_id: run_id.to_string(),
            instance_id: instance_id.to_string(),
            state: StepState::Pending,
            attempts: 0,
            started_at_ms: None,
            ended_at_ms: None,
            exit_status: None,
            last_error: None,
            outputs: BTreeMap::new(),
            stdout: None,
            spec_hash,
            failure_ignored: false,
        }
    }
}

/// An operator's approval of a manual step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ApprovalRecord {
    /// Record version.
    #[serde(default = "v1")]
    pub v: u32,
    /// The run.
    pub run_id: String,
    /// The instance approved.
    pub instance_id: String,
    /// Who approved (`--approver`, else the login name).
    pub approver: String,
    /// When (unix ms).
    pub at_ms: u64,
    /// The plan's hash when approved; void for any other version of the plan.
    pub plan_hash: String,
}

/// A piece of an attempt's output.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OutputRecord {
    /// The run.
    pub run_id: String,
    /// The instance.
    pub instance_id: String,
    /// 1-based attempt.
    pub attempt: u32,
    /// Order within the instance's output (increasing across attempts).
    pub seq: u64,
    /// The stream.
    pub stream: Stream,
    /// The text (redacted).
    pub text: String,
    /// When it came (unix ms).
    pub at_ms: u64,
}

/// One change in [`RunStore::commit`](super::RunStore::commit).
#[derive(Clone, Debug, PartialEq)]
pub enum Mutation {
    /// Create or replace a run.
    Run(RunRecord),
    /// Create or replace a step instance.
    Step(StepRecord),
    /// Record an approval.
    Approval(ApprovalRecord),
}

/// A run as loaded.
#[derive(Clone, Debug, PartialEq)]
pub struct RunSnapshot {
    /// The run.
    pub run: RunRecord,
    /// Its instances, by id.
    pub steps: BTreeMap<String, StepRecord>,
    /// Its approvals, by instance id.
    pub approvals: BTreeMap<String, ApprovalRecord>,
}
