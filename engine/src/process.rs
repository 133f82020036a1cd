//! Local processes for steps: each runs in its own process group, its output is streamed
//! line by line to the attempt's [`OutputSink`](crate::step::OutputSink), and cancellation
//! (timeout, Ctrl-C, abort) kills the whole group, so no child is left behind.

use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};

use crate::step::{StepContext, StepError, Stream};

/// What to run.
#[derive(Clone, Debug)]
pub enum Program {
    /// A command line, run with `sh -c`.
    Shell(String),
    /// A program and its arguments, no shell.
    Argv(Vec<String>),
}

/// A process to start.
#[derive(Clone, Debug)]
pub struct ProcessSpec {
    /// The program.
    pub program: Program,
    /// Working directory.
    pub cwd: Option<PathBuf>,
    /// Extra environment variables (the step's `env` is added by [`run_process`]).
    pub env: Vec<(String, String)>,
    /// How long the group gets between SIGTERM and SIGKILL once cancelled.
    pub kill_grace: Duration,
}

impl ProcessSpec {
    /// `sh -c line`.
    pub fn shell(line: impl Into<String>) -> Self {
        Self {
            program: Program::Shell(line.into()),
            cwd: None,
            env: Vec::new(),
            kill_grace: Duration::from_secs(5),
        }
    }

    /// A program with arguments.
    pub fn argv(argv: Vec<String>) -> Self {
        Self {
            program: Program::Argv(argv),
            cwd: None,
            env: Vec::new(),
            kill_grace: Duration::from_secs(5),
        }
    }
}

/// How a process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProcessEnd {
    /// It exited with this status.
    Exited(i32),
    /// A signal killed it (not one of ours).
    Signaled(i32),
    /// The attempt was cancelled; the group was killed.
    Cancelled,
}

/// Runs `spec`, streaming its output to `ctx`, until it ends or `ctx` is cancelled.
///
/// # Errors
/// [`StepError::Io`] when the program cannot be started.
pub async fn run_process(ctx: &StepContext, spec: &ProcessSpec) -> Result<ProcessEnd, StepError> {
    let mut cmd = match &spec.program {
        Program::Shell(line) => {
            let mut c = tokio::process::Command::new("sh");
            c.arg("-c").arg(line);
            c
        }
        Program::Argv(argv) => {
            let Some((program, args)) = argv.split_first() else {
                return Err(StepError::InvalidField {
                    field: "argv".into(),
                    message: "is empty: it needs at least the program".into(),
                });
            };
            let mut c = tokio::process::Command::new(program);
            c.args(args);
            c
        }
    };
    if let Some(cwd) = &spec.cwd {
        cmd.current_dir(cwd);
    }
    cmd.envs(ctx.env.iter().cloned())
        .envs(spec.env.iter().cloned())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group, so that a kill reaches every descendant.
        .process_group(0)
        .kill_on_drop(true);
    let what = match &spec.program {
        Program::Shell(_) => "sh".to_string(),
        Program::Argv(a) => format!("`{}`", a.first().map(String::as_str).unwrap_or_default()),
    };
    let mut child = cmd.spawn().map_err(|source| StepError::Io {
        context: format!("cannot start {what}"),
        source,
    })?;
    let pgid = child.id().and_then(|p| i32::try_from(p).ok());
    let out = child
        .stdout
        .take()
        .map(|o| tokio::spawn(stream_lines(o, ctx.output().clone(), Stream::Stdout)));
    let err = child
        .stderr
        .take()
        .map(|e| tokio::spawn(stream_lines(e, ctx.output().clone(), Stream::Stderr)));

    let end = tokio::select! {
        status = child.wait() => {
            let status = status.map_err(|source| StepError::Io { context: format!("waiting for {what}"), source })?;
            // The leader is gone; anything it left in its group goes too.
            if let Some(pgid) = pgid {
                kill_group(pgid, libc::SIGKILL);
            }
            match (status.code(), status.signal()) {
                (Some(code), _) => ProcessEnd::Exited(code),
                (None, Some(sig)) => ProcessEnd::Signaled(sig),
                (None, None) => ProcessEnd::Signaled(0),
            }
        }
        () = ctx.cancellation().cancelled() => {
            if let Some(pgid) = pgid {
                kill_group(pgid, libc::SIGTERM);
                if tokio::time::timeout(spec.kill_grace, child.wait()).await.is_err() {
                    kill_group(pgid, libc::SIGKILL);
                }
                kill_group(pgid, libc::SIGKILL);
            }
            let _ = child.wait().await;
            ProcessEnd::Cancelled
        }
    };
    // Output pipes close once every process of the group is gone.
    for task in [out, err].into_iter().flatten() {
        let _ = task.await;
    }
    Ok(end)
}

/// Runs a `check` command locally: `Ok(true)` when it exits 0. Its output is not recorded.
///
/// # Errors
/// [`StepError::Io`] when `sh` cannot be started.
pub async fn run_check(ctx: &StepContext, command: &str) -> Result<bool, StepError> {
    let quiet = StepContext::new(
        ctx.run_id.clone(),
        ctx.instance_id.clone(),
        ctx.attempt,
        ctx.cancellation().clone(),
        crate::step::OutputSink::buffer(),
    )
    .with_env(ctx.env.clone());
    Ok(run_process(&quiet, &ProcessSpec::shell(command)).await? == ProcessEnd::Exited(0))
}

fn kill_group(pgid: i32, signal: i32) {
    // SAFETY: kill(2) with a negative pid signals a process group; it has no memory effects.
    unsafe {
        libc::kill(-pgid, signal);
    }
}

/// Copies `reader` to `sink` line by line until it ends (or fails), so output reaches the
/// store as it comes rather than when the command ends.
pub async fn stream_lines(
    reader: impl tokio::io::AsyncRead + Unpin,
    sink: crate::step::OutputSink,
    stream: Stream,
) {
    let mut lines = BufReader::new(reader);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match lines.read_until(b'\n', &mut buf).await {
            Ok(0) => break,
            Ok(_) => sink.write(stream, &String::from_utf8_lossy(&buf)),
            Err(e) => {
                // Say so: a step whose output silently stopped would look like it said nothing.
                sink.write(
                    Stream::Stderr,
                    &format!("rok-plan: reading the command's {stream:?} failed: {e}\n"),
                );
                break;
            }
        }
    }
}
