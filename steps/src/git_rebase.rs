//! `git.rebase`: the GitOps workflow of the seeds (fetch, rebase favouring local changes,
//! remove files deleted upstream, mirror), with a backup ref first.

use rok_plan_engine::step::{
    FieldKind, FieldSpec, Fields, StepContext, StepError, StepOutcome, StepSchema, StepType,
};
use serde_json::{Map, Value};

use crate::{shown, text};

/// `git.rebase`.
#[derive(Debug, Clone, Copy)]
pub struct GitRebase;

const GIT_REBASE: StepSchema = StepSchema {
    name: "git.rebase",
    doc: "Fetches and rebases a local repository on its upstream, keeping a backup ref.",
    fields: &[
        FieldSpec::required("repo", FieldKind::Text, "Path of the local repository."),
        FieldSpec::optional(
            "upstream",
            FieldKind::Text,
            "What to rebase on (default: the branch's upstream, e.g. origin/main).",
        ),
        FieldSpec::optional(
            "prefer",
            FieldKind::Choice(&["local", "upstream"]),
            "On conflicting hunks keep \"local\" changes (git rebase -Xtheirs) or \"upstream\" ones.",
        ),
        FieldSpec::optional(
            "deleted_upstream",
            FieldKind::Choice(&["remove", "keep"]),
            "Files deleted upstream but modified locally: \"remove\" them (as the seeds do) or \"keep\" them.",
        ),
        FieldSpec::optional(
            "mirror",
            FieldKind::Text,
            "A remote to push the rebased branch to afterwards (a private mirror).",
        ),
        FieldSpec::optional(
            "fetch",
            FieldKind::Bool,
            "Run `git fetch --all -p` first (default true).",
        ),
    ],
    exactly_one_of: &[],
    idempotent: true,
};

#[async_trait::async_trait]
impl StepType for GitRebase {
    async fn run(&self, _: &StepContext, _: &Fields) -> Result<StepOutcome, StepError> {
        Err(crate::not_in_this_version(self.schema().name))
    }
    fn schema(&self) -> &StepSchema {
        &GIT_REBASE
    }
    fn describe(&self, f: &Map<String, Value>) -> String {
        let upstream = shown(f, "upstream").unwrap_or_else(|| "its upstream".into());
        let mut line = format!(
            "in {}: git fetch --all -p; back up HEAD; rebase on {upstream}",
            text(f, "repo")
        );
        if text(f, "prefer") == "local" {
            line.push_str(" keeping local changes (-Xtheirs)");
        }
        if text(f, "deleted_upstream") == "remove" {
            line.push_str("; remove files deleted upstream");
        }
        if let Some(m) = shown(f, "mirror") {
            line.push_str(&format!("; push to {m}"));
        }
        line
    }
}
