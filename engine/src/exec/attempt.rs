//! One attempt of one instance: `check` first, then the step under its timeout, then the
//! approval (manual steps) and the captures. Runs as its own task; reports to the
//! dispatcher over a channel and never touches the store.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::duration::DisplayDuration;
use crate::exec::approval::ApprovalPolicy;
use crate::plan::Capture;
use crate::step::{Fields, OutputChunk, OutputSink, Redactor, StepContext, StepOutcome, StepType};

/// How long a step gets to return after its cancellation fired, before the attempt is
/// given up on (its task is then left to finish on its own).
const CANCEL_GRACE: Duration = Duration::from_secs(30);

/// Everything an attempt needs.
pub(crate) struct AttemptSpec {
    pub(crate) idx: usize,
    pub(crate) run_id: String,
    pub(crate) instance_id: String,
    pub(crate) attempt: u32,
    pub(crate) step: Arc<dyn StepType>,
    pub(crate) fields: Fields,
    pub(crate) check: Option<String>,
    pub(crate) env: Vec<(String, String)>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) captures: Vec<Capture>,
    pub(crate) approvals: Arc<dyn ApprovalPolicy>,
    pub(crate) redactor: Arc<Redactor>,
    pub(crate) cancel: CancellationToken,
}

/// What an attempt reports.
pub(crate) enum AttemptMsg {
    /// A chunk of output.
    Output {
        idx: usize,
        attempt: u32,
        chunk: OutputChunk,
    },
    /// A manual step asks for approval (the policy is being consulted).
    Asking { idx: usize, instructions: String },
    /// The attempt ended.
    Done(AttemptReport),
}

/// How an attempt ended.
pub(crate) struct AttemptReport {
    pub(crate) idx: usize,
    pub(crate) attempt: u32,
    pub(crate) outcome: StepOutcome,
    /// Who approved, for a manual step that was approved now.
    pub(crate) approver: Option<String>,
    /// Stdout of the attempt, trimmed (redacted).
    pub(crate) stdout: String,
    /// The attempt was cancelled from outside (interrupt, abort), not by its timeout.
    pub(crate) cancelled: bool,
}

/// Runs the attempt to its end and reports it.
pub(crate) async fn run_attempt(spec: AttemptSpec, tx: mpsc::UnboundedSender<AttemptMsg>) {
    let (out_tx, mut out_rx) = mpsc::unbounded_channel::<OutputChunk>();
    let forward = {
        let tx = tx.clone();
        let (idx, attempt) = (spec.idx, spec.attempt);
        tokio::spawn(async move {
            while let Some(chunk) = out_rx.recv().await {
                let _ = tx.send(AttemptMsg::Output {
                    idx,
                    attempt,
                    chunk,
                });
            }
        })
    };
    let sink = OutputSink::new(out_tx, spec.redactor.clone());
    let ctx = StepContext::new(
        &spec.run_id,
        &spec.instance_id,
        spec.attempt,
        spec.cancel.clone(),
        sink.clone(),
    )
    .with_env(spec.env.clone());

    let mut timed_out = false;
    let outcome = {
        let work = attempt_body(&spec, &ctx);
        tokio::pin!(work);
        match spec.timeout {
            None => work.await,
            Some(limit) => tokio::select! {
                outcome = &mut work => outcome,
                () = tokio::time::sleep(limit) => {
                    timed_out = true;
                    spec.cancel.cancel();
                    let why = format!("timed out after {}", DisplayDuration(limit));
                    // The step's own account of where it stood (e.g. which pods a drain
                    // still waited for) is worth more than the bare timeout.
                    match tokio::time::timeout(CANCEL_GRACE, &mut work).await {
                        Ok(StepOutcome::Failed { reason, .. }) if !reason.is_empty() => {
                            StepOutcome::failed(format!("{why}: {reason}"))
                        }
                        _ => StepOutcome::failed(why),
                    }
                }
            },
        }
    };
    let cancelled = spec.cancel.is_cancelled() && !timed_out;
    let stdout = sink.stdout_text();

    let mut approver = None;
    let outcome = match outcome {
        StepOutcome::AwaitingApproval { instructions } if !cancelled => {
            let _ = tx.send(AttemptMsg::Asking {
                idx: spec.idx,
                instructions: instructions.clone(),
            });
            match spec
                .approvals
                .decide(&spec.instance_id, &instructions)
                .await
            {
                Some(who) => {
                    approver = Some(who);
                    StepOutcome::done()
                }
                None => StepOutcome::AwaitingApproval { instructions },
            }
        }
        StepOutcome::Succeeded {
            outputs,
            exit_status,
        } => capture(&spec.captures, &stdout, outputs, exit_status),
        other => other,
    };
    drop(ctx);
    drop(sink);
    let _ = forward.await;
    let report = AttemptReport {
        idx: spec.idx,
        attempt: spec.attempt,
        outcome,
        approver,
        stdout: stdout.trim().to_string(),
        cancelled,
    };
    let _ = tx.send(AttemptMsg::Done(report));
}

async fn attempt_body(spec: &AttemptSpec, ctx: &StepContext) -> StepOutcome {
    if let Some(check) = &spec.check {
        match spec.step.check(ctx, &spec.fields, check).await {
            Ok(true) => return StepOutcome::Satisfied,
            Ok(false) => {}
            Err(e) => return StepOutcome::failed(format!("`check` could not run: {e}")),
        }
    }
    match spec.step.run(ctx, &spec.fields).await {
        Ok(outcome) => outcome,
        Err(e) => StepOutcome::failed(e.to_string()),
    }
}

/// Adds the captures to the type's outputs; a capture that finds nothing fails the step.
fn capture(
    captures: &[Capture],
    stdout: &str,
    mut outputs: BTreeMap<String, String>,
    exit_status: Option<i32>,
) -> StepOutcome {
    for c in captures {
        match c.regex.captures(stdout).and_then(|m| m.get(1)) {
            Some(m) => {
                outputs.insert(c.name.value.clone(), m.as_str().to_string());
            }
            None => {
                return StepOutcome::Failed {
                    reason: format!(
                        "capture `{}` found nothing in the output (regex `{}`)",
                        c.name.value,
                        c.regex.as_str()
                    ),
                    exit_status,
                };
            }
        }
    }
    StepOutcome::Succeeded {
        outputs,
        exit_status,
    }
}
