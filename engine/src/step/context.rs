//! What one attempt of a step gets (its context) and gives back (its outcome).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// A step's rendered fields (templates already applied).
pub type Fields = serde_json::Map<String, serde_json::Value>;

/// Which output stream a chunk came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stream {
    /// Standard output (captures read it).
    Stdout,
    /// Standard error.
    Stderr,
}

/// A piece of output, already redacted.
#[derive(Clone, Debug)]
pub struct OutputChunk {
    /// The stream.
    pub stream: Stream,
    /// The text (whole lines where the producer could tell).
    pub text: String,
}

/// Replaces every secret value by `***` (longest first, so a secret that contains another
/// is not half-revealed).
#[derive(Clone, Debug, Default)]
pub struct Redactor {
    secrets: Vec<String>,
}

impl Redactor {
    /// Redacts these values (empty ones are ignored).
    pub fn new(secrets: impl IntoIterator<Item = String>) -> Self {
        let mut secrets: Vec<String> = secrets.into_iter().filter(|s| !s.is_empty()).collect();
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        Self { secrets }
    }

    /// `text` with every secret value replaced by `***`.
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for s in &self.secrets {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), "***");
            }
        }
        out
    }
}

/// Where a step writes its output: redacted, kept for `capture` and `steps.ID.stdout`,
/// and streamed to the state store as it comes.
#[derive(Clone)]
pub struct OutputSink {
    tx: Option<mpsc::UnboundedSender<OutputChunk>>,
    redactor: Arc<Redactor>,
    stdout: Arc<Mutex<String>>,
}

impl std::fmt::Debug for OutputSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OutputSink")
    }
}

impl OutputSink {
    /// A sink that streams every chunk to `tx`.
    pub fn new(tx: mpsc::UnboundedSender<OutputChunk>, redactor: Arc<Redactor>) -> Self {
        Self {
            tx: Some(tx),
            redactor,
            stdout: Arc::default(),
        }
    }

    /// A sink that only keeps stdout (for checks and tests).
    pub fn buffer() -> Self {
        Self {
            tx: None,
            redactor: Arc::default(),
            stdout: Arc::default(),
        }
    }

    /// Records `text` from `stream`, redacting secrets first.
    pub fn write(&self, stream: Stream, text: &str) {
        let text = self.redactor.redact(text);
        if stream == Stream::Stdout
            && let Ok(mut buf) = self.stdout.lock()
        {
            buf.push_str(&text);
        }
        if let Some(tx) = &self.tx {
            // The receiver only goes away when the run is over; output after that is moot.
            let _ = tx.send(OutputChunk { stream, text });
        }
    }

    /// Everything written to stdout so far (redacted).
    pub fn stdout_text(&self) -> String {
        self.stdout.lock().map(|b| b.clone()).unwrap_or_default()
    }

    /// The redactor in use, for steps that report text by other means (errors).
    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }
}

/// Everything one attempt of a step may use.
#[derive(Debug, Clone)]
pub struct StepContext {
    /// The run's id.
    pub run_id: String,
    /// The instance's id (`g/node-2/s`).
    pub instance_id: String,
    /// 1-based attempt number.
    pub attempt: u32,
    /// The step's rendered `env` entries.
    pub env: Vec<(String, String)>,
    cancel: CancellationToken,
    output: OutputSink,
}

impl StepContext {
    /// A context for one attempt.
    pub fn new(
        run_id: impl Into<String>,
        instance_id: impl Into<String>,
        attempt: u32,
        cancel: CancellationToken,
        output: OutputSink,
    ) -> Self {
        Self {
            run_id: run_id.into(),
            instance_id: instance_id.into(),
            attempt,
            env: Vec::new(),
            cancel,
            output,
        }
    }

    /// With the step's `env` entries.
    #[must_use]
    pub fn with_env(mut self, env: Vec<(String, String)>) -> Self {
        self.env = env;
        self
    }

    /// Fires when the attempt must stop (timeout, Ctrl-C after the grace period, abort).
    /// A step must then stop its side effects (kill its processes, remote ones included)
    /// and return promptly.
    pub fn cancellation(&self) -> &CancellationToken {
        &self.cancel
    }

    /// Where to write output.
    pub fn output(&self) -> &OutputSink {
        &self.output
    }
}

/// How an attempt ended. A failed step is an outcome, not an error.
#[derive(Clone, Debug, PartialEq)]
pub enum StepOutcome {
    /// Done. `outputs` are the type's own outputs (captures are added by the engine).
    Succeeded {
        /// Outputs the step type produced (e.g. `kube.get` fields).
        outputs: BTreeMap<String, String>,
        /// The exit status, for commands.
        exit_status: Option<i32>,
    },
    /// The effect was already in place; nothing was changed.
    Satisfied,
    /// The step did not do what it should.
    Failed {
        /// Why, in one line (redacted).
        reason: String,
        /// The exit status, for commands.
        exit_status: Option<i32>,
    },
    /// The step needs an operator's approval before it counts as done (`manual`).
    AwaitingApproval {
        /// What the operator must do.
        instructions: String,
    },
}

impl StepOutcome {
    /// Succeeded with no outputs and no exit status.
    pub fn done() -> Self {
        StepOutcome::Succeeded {
            outputs: BTreeMap::new(),
            exit_status: None,
        }
    }

    /// Failed with `reason`.
    pub fn failed(reason: impl Into<String>) -> Self {
        StepOutcome::Failed {
            reason: reason.into(),
            exit_status: None,
        }
    }
}

/// The step could not be attempted at all (the tool broke, not the step).
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// A rendered field has a value the type cannot use.
    #[error("field `{field}`: {message}")]
    InvalidField {
        /// The field.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// An I/O error (spawning a program, reading a file).
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The step type cannot run here (not built in this version, or not supported).
    #[error("{0}")]
    Unsupported(String),
    /// Anything else.
    #[error("{0}")]
    Other(String),
}
