//! Exit codes, and the one error type of the command line that maps to them.

use std::path::PathBuf;

use rok_plan_engine::Diagnostics;
use rok_plan_engine::exec::ExecError;
use rok_plan_engine::state::StoreError;

/// The process exit codes of `rok-plan`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitCode {
    /// The command (or run) succeeded.
    Success = 0,
    /// A step failed.
    StepFailed = 1,
    /// The plan or the command line is invalid, or the state store cannot be used.
    Invalid = 2,
    /// The run paused (awaiting approval, or a step in doubt needs a decision).
    Paused = 3,
    /// Interrupted (Ctrl-C, SIGTERM).
    Interrupted = 130,
}

impl From<ExitCode> for std::process::ExitCode {
    fn from(code: ExitCode) -> Self {
        std::process::ExitCode::from(code as u8)
    }
}

/// Why a command could not do its work.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CliError {
    /// Problems in a plan, a parameters file or `--set` (already gathered).
    #[error("{0}")]
    Plan(Diagnostics),
    /// A file could not be read.
    #[error("cannot read `{path}`: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Output could not be written.
    #[error("cannot write output: {0}")]
    Write(#[from] std::io::Error),
    /// The state store cannot be used.
    #[error("{0}")]
    Store(#[from] StoreError),
    /// Driving the run failed (or it needs a decision).
    #[error("{0}")]
    Exec(#[from] ExecError),
    /// No store where one was expected.
    #[error("no state store in `{}` (runs are kept where `rok-plan execute` ran, or in --state DIR)", .0.display())]
    NoStore(PathBuf),
    /// No such run or instance.
    #[error("{0}")]
    NoRun(String),
    /// An unfinished run of the same plan exists.
    #[error("run `{run}` of plan `{plan}` is unfinished")]
    Unfinished {
        run: String,
        plan: String,
        state_flag: String,
    },
    /// A flag's value is not usable.
    #[error("{0}")]
    Usage(String),
}

impl CliError {
    pub(crate) fn exit_code(&self) -> ExitCode {
        match self {
            CliError::Exec(ExecError::InDoubt { .. }) => ExitCode::Paused,
            _ => ExitCode::Invalid,
        }
    }
}

impl CliError {
    /// What to do about it, when there is something to say.
    pub(crate) fn help(&self) -> Option<String> {
        match self {
            CliError::Unfinished { run, state_flag, .. } => Some(format!(
                "continue it with `rok-plan{state_flag} resume {run}`, or start another run with `--new`"
            )),
            CliError::Store(StoreError::Locked { .. }) => {
                Some("one process drives a store at a time; wait for it to finish, or use another --state DIR".into())
            }
            CliError::Store(StoreError::PossiblyStale { .. }) => Some(
                "if that process is surely gone, take the lock over with --force-unlock".into(),
            ),
            CliError::Store(StoreError::Corrupt { .. } | StoreError::Codec { .. }) => Some(
                "the files were left as they are; move the directory aside (keep it for inspection) and use another --state DIR".into(),
            ),
            CliError::Exec(ExecError::InDoubt { run, instances }) => {
                let mut h = String::from("decide for each, as an operator who checked the system:
");
                for i in instances {
                    h.push_str(&format!(
                        "  it took effect:       rok-plan resume {run} --assume-done {}
  run it again:         rok-plan resume {run} --rerun {}
",
                        i.instance, i.instance
                    ));
                }
                Some(h.trim_end().to_string())
            }
            CliError::Exec(ExecError::PlanChanged { diff, .. }) => {
                let mut h = String::new();
                for (what, ids) in [("added", &diff.added), ("removed", &diff.removed), ("changed", &diff.changed)] {
                    if !ids.is_empty() {
                        h.push_str(&format!("{what}: {}
", ids.join(", ")));
                    }
                }
                h.push_str("resume with --allow-plan-change to go on (changed steps run again), or restore the plan file");
                Some(h)
            }
            CliError::Exec(ExecError::UnknownInstance { suggestion: Some(s), .. }) => Some(format!("did you mean `{s}`?")),
            CliError::Exec(ExecError::OutputsUnknown { run, instance, .. }) => Some(format!(
                "later steps read them; run it again instead: rok-plan resume {run} --rerun {instance}"
            )),
            _ => None,
        }
    }
}

impl From<Diagnostics> for CliError {
    fn from(d: Diagnostics) -> Self {
        CliError::Plan(d)
    }
}
