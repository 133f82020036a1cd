//! `ssh`: a command on a remote host, through the system's ssh.

use rok_plan_engine::step::{
    FieldKind, FieldSpec, Fields, StepContext, StepError, StepOutcome, StepSchema, StepType,
};
use serde_json::{Map, Value};

use crate::local::EXPECT_EXIT;
use crate::{command_line, text};

/// `ssh`: runs a command on `host` (as ssh knows it: ~/.ssh/config, known_hosts).
#[derive(Debug, Clone, Copy)]
pub struct Ssh;

const SSH: StepSchema = StepSchema {
    name: "ssh",
    doc: "Runs a command on a remote host over ssh (ssh_config and known_hosts apply).",
    fields: &[
        FieldSpec::required(
            "host",
            FieldKind::Text,
            "The host as ssh knows it (an alias of ~/.ssh/config, user@host, host).",
        ),
        FieldSpec::optional(
            "run",
            FieldKind::Shell,
            "A shell command line run on the host; interpolated values are shell-quoted.",
        ),
        FieldSpec::optional(
            "argv",
            FieldKind::TextList,
            "The program and its arguments, each passed as one word.",
        ),
        FieldSpec::optional(
            "sudo",
            FieldKind::Bool,
            "Run the command with sudo on the host.",
        ),
        FieldSpec::optional("cwd", FieldKind::Text, "Working directory on the host."),
        FieldSpec::optional(
            "host_key_checking",
            FieldKind::Choice(&["yes", "accept-new"]),
            "\"yes\" (default): the host key must be known; \"accept-new\": record unknown keys (recorded in the run).",
        ),
        EXPECT_EXIT,
    ],
    exactly_one_of: &["run", "argv"],
    idempotent: false,
};

#[async_trait::async_trait]
impl StepType for Ssh {
    async fn run(&self, _: &StepContext, _: &Fields) -> Result<StepOutcome, StepError> {
        Err(crate::not_in_this_version(self.schema().name))
    }
    fn schema(&self) -> &StepSchema {
        &SSH
    }
    fn describe(&self, f: &Map<String, Value>) -> String {
        let sudo = if f.get("sudo").and_then(Value::as_bool) == Some(true) {
            "sudo "
        } else {
            ""
        };
        format!("ssh {}: {sudo}{}", text(f, "host"), command_line(f))
    }
}
