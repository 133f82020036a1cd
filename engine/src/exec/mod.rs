//! Running plans: the executor, its dispatcher loop, attempts, resume.

mod approval;
mod attempt;
mod clock;
mod dispatcher;
mod event;
mod executor;
mod fingerprint;
mod resume;

pub use approval::{ApprovalPolicy, NoApprovals, PreApproved};
pub use clock::{digest, new_run_id, now_ms};
pub use event::{EVENT_VERSION, RunEvent, RunEventKind};
pub use executor::{Executor, ExecutorBuilder, RunReport};
pub use resume::{InDoubt, PlanDiff, ResumeOptions};

use crate::state::StoreError;

/// Why a run could not be driven (a failed step is not an error: see [`RunReport`]).
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// The state store failed; the run stopped where the store last recorded it.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No run with this id.
    #[error("no run `{0}` in the state store")]
    UnknownRun(String),
    /// `--rerun` / `--assume-done` named no instance.
    #[error("no step instance `{id}` in run `{run}`")]
    UnknownInstance {
        /// The run.
        run: String,
        /// What was named.
        id: String,
        /// The closest instance id, if any.
        suggestion: Option<String>,
    },
    /// Steps were found `running` with nothing to decide whether to run them again.
    #[error("the run stopped before {} step(s) left in doubt by a crash", .instances.len())]
    InDoubt {
        /// The run.
        run: String,
        /// The instances and why they cannot be decided automatically.
        instances: Vec<InDoubt>,
    },
    /// `--assume-done` of a step whose outputs were never recorded.
    #[error("`{instance}` cannot be assumed done: its output{} {} would be unknown", if .outputs.len() == 1 { "" } else { "s" }, .outputs.iter().map(|o| format!("`{o}`")).collect::<Vec<_>>().join(", "))]
    OutputsUnknown {
        /// The run.
        run: String,
        /// The instance.
        instance: String,
        /// Outputs that were never recorded.
        outputs: Vec<String>,
    },
    /// The plan changed since the run began.
    #[error("the plan changed since run `{run}` began")]
    PlanChanged {
        /// The run.
        run: String,
        /// What changed.
        diff: PlanDiff,
    },
    /// The plan does not expand (a `for_each` that is not a list, ...).
    #[error("the plan cannot be expanded")]
    Plan(crate::Diagnostics),
    /// A bug or a broken runtime.
    #[error("internal error: {0}")]
    Internal(String),
}
