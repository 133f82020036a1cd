//! Steps that run on this machine: `noop`, `sleep`, `shell`, `manual`.

use rok_plan_engine::step::{FieldKind, FieldSpec, StepSchema, StepType};
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

impl StepType for Noop {
    fn schema(&self) -> &StepSchema {
        &NOOP
    }
    fn describe(&self, _: &Map<String, Value>) -> String {
        "nothing (a join point)".into()
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

impl StepType for Sleep {
    fn schema(&self) -> &StepSchema {
        &SLEEP
    }
    fn describe(&self, f: &Map<String, Value>) -> String {
        format!("wait {}", text(f, "duration"))
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

impl StepType for Shell {
    fn schema(&self) -> &StepSchema {
        &SHELL
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

impl StepType for Manual {
    fn schema(&self) -> &StepSchema {
        &MANUAL
    }
    fn describe(&self, f: &Map<String, Value>) -> String {
        format!("MANUAL: {}", text(f, "instructions").trim())
    }
}
