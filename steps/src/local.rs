//! Steps that run on this machine: `noop`, `sleep`, `shell`, `manual`.

use std::time::Duration;

use rok_plan_engine::duration::parse_duration;
use rok_plan_engine::process::{ProcessEnd, ProcessSpec, run_process};
use rok_plan_engine::step::{
    FieldKind, FieldSpec, Fields, StepContext, StepError, StepOutcome, StepSchema, StepType,
};
use serde_json::{Map, Value};

use crate::{command_line, shown, text};

/// `noop`: does nothing (a join point, or a placeholder).
#[derive(Debug, Clone, Copy)]
pub struct Noop;

const NOOP: StepSchema = StepSchema {
    name: "noop",
    doc: "Does nothing; useful as a join point for `needs`.",
    fields: &[],
    exactly_one_of: &[],
    idempotent: true,
};

#[async_trait::async_trait]
impl StepType for Noop {
    fn schema(&self) -> &StepSchema {
        &NOOP
    }
    fn describe(&self, _: &Map<String, Value>) -> String {
        "nothing (a join point)".into()
    }
    async fn run(&self, _: &StepContext, _: &Fields) -> Result<StepOutcome, StepError> {
        Ok(StepOutcome::done())
    }
}

/// `sleep`: waits for a duration.
#[derive(Debug, Clone, Copy)]
pub struct Sleep;

const SLEEP: StepSchema = StepSchema {
    name: "sleep",
    doc: "Waits for `duration`.",
    fields: &[FieldSpec::required(
        "duration",
        FieldKind::Duration,
        "How long to wait, e.g. \"30s\".",
    )],
    exactly_one_of: &[],
    idempotent: true,
};

#[async_trait::async_trait]
impl StepType for Sleep {
    fn schema(&self) -> &StepSchema {
        &SLEEP
    }
    fn describe(&self, f: &Map<String, Value>) -> String {
        format!("wait {}", text(f, "duration"))
    }
    async fn run(&self, ctx: &StepContext, f: &Fields) -> Result<StepOutcome, StepError> {
        let wait = duration_field(f, "duration")?;
        tokio::select! {
            () = tokio::time::sleep(wait) => Ok(StepOutcome::done()),
            () = ctx.cancellation().cancelled() => Ok(StepOutcome::failed("cancelled while sleeping")),
        }
    }
}

/// A duration field (rendered), parsed.
pub(crate) fn duration_field(f: &Fields, key: &str) -> Result<Duration, StepError> {
    parse_duration(text(f, key)).map_err(|e| StepError::InvalidField {
        field: key.into(),
        message: e.to_string(),
    })
}

/// The process for `run` or `argv` (+ `cwd`) of a command step.
pub(crate) fn process_spec(f: &Fields) -> Result<ProcessSpec, StepError> {
    let mut spec = if let Some(run) = f.get("run").and_then(Value::as_str) {
        ProcessSpec::shell(run)
    } else {
        let argv = f
            .get("argv")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .map(|w| {
                        w.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| w.to_string())
                    })
                    .collect()
            })
            .unwrap_or_default();
        ProcessSpec::argv(argv)
    };
    spec.cwd = f.get("cwd").and_then(Value::as_str).map(Into::into);
    Ok(spec)
}

/// The exit statuses that count as success (`expect_exit`, default `[0]`).
pub(crate) fn expected_exits(f: &Fields) -> Vec<i64> {
    f.get("expect_exit")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_i64).collect())
        .unwrap_or_else(|| vec![0])
}

/// A finished process as a step outcome.
pub(crate) fn process_outcome(end: ProcessEnd, expected: &[i64]) -> StepOutcome {
    match end {
        ProcessEnd::Exited(code) if expected.contains(&i64::from(code)) => StepOutcome::Succeeded {
            outputs: Default::default(),
            exit_status: Some(code),
        },
        ProcessEnd::Exited(code) => StepOutcome::Failed {
            reason: format!(
                "exited with status {code} (expected {})",
                expected
                    .iter()
                    .map(i64::to_string)
                    .collect::<Vec<_>>()
                    .join(" or ")
            ),
            exit_status: Some(code),
        },
        ProcessEnd::Signaled(sig) => StepOutcome::failed(format!("killed by signal {sig}")),
        ProcessEnd::Cancelled => StepOutcome::failed("cancelled; its process group was killed"),
    }
}

/// `shell`: a local command.
#[derive(Debug, Clone, Copy)]
pub struct Shell;

pub(crate) const EXPECT_EXIT: FieldSpec = FieldSpec::optional(
    "expect_exit",
    FieldKind::IntegerList,
    "Exit statuses that count as success (default [0]).",
);

const SHELL: StepSchema = StepSchema {
    name: "shell",
    doc: "Runs a local command: `run` through `sh -c`, or `argv` without a shell.",
    fields: &[
        FieldSpec::optional(
            "run",
            FieldKind::Shell,
            "A shell command line, run with `sh -c`; interpolated values are shell-quoted.",
        ),
        FieldSpec::optional(
            "argv",
            FieldKind::TextList,
            "The program and its arguments, run without a shell.",
        ),
        FieldSpec::optional("cwd", FieldKind::Text, "Working directory."),
        EXPECT_EXIT,
    ],
    exactly_one_of: &["run", "argv"],
    idempotent: false,
};

#[async_trait::async_trait]
impl StepType for Shell {
    fn schema(&self) -> &StepSchema {
        &SHELL
    }
    async fn run(&self, ctx: &StepContext, f: &Fields) -> Result<StepOutcome, StepError> {
        let end = run_process(ctx, &process_spec(f)?).await?;
        Ok(process_outcome(end, &expected_exits(f)))
    }
    fn describe(&self, f: &Map<String, Value>) -> String {
        let mut line = format!("$ {}", command_line(f));
        if let Some(cwd) = shown(f, "cwd") {
            line = format!("(in {cwd}) {line}");
        }
        line
    }
}

/// `manual`: pauses until an operator approves.
#[derive(Debug, Clone, Copy)]
pub struct Manual;

const MANUAL: StepSchema = StepSchema {
    name: "manual",
    doc: "Pauses the run with `instructions` until an operator approves.",
    fields: &[FieldSpec::required(
        "instructions",
        FieldKind::Text,
        "What the operator must do before approving, e.g. \"Swap the BOOT disk of rok-1\".",
    )],
    exactly_one_of: &[],
    idempotent: false,
};

#[async_trait::async_trait]
impl StepType for Manual {
    fn schema(&self) -> &StepSchema {
        &MANUAL
    }
    async fn run(&self, _: &StepContext, f: &Fields) -> Result<StepOutcome, StepError> {
        // The engine asks for (or finds) the approval; the step itself only says what to do.
        Ok(StepOutcome::AwaitingApproval {
            instructions: text(f, "instructions").trim().to_string(),
        })
    }
    fn describe(&self, f: &Map<String, Value>) -> String {
        format!("MANUAL: {}", text(f, "instructions").trim())
    }
}
