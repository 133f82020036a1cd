//! Exit codes, and the one error type of the command line that maps to them.

use std::path::PathBuf;

use rok_plan_engine::Diagnostics;

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
}

impl CliError {
    pub(crate) fn exit_code(&self) -> ExitCode {
        match self {
            CliError::Plan(_) | CliError::Read { .. } | CliError::Write(_) => ExitCode::Invalid,
        }
    }
}

impl From<Diagnostics> for CliError {
    fn from(d: Diagnostics) -> Self {
        CliError::Plan(d)
    }
}
