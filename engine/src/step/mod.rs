//! Step types: what they accept ([`StepSchema`]) and how they describe themselves.

use crate::plan::{FieldValue, StepSpec};

mod context;
mod registry;
mod schema;

pub use context::{
    Fields, OutputChunk, OutputSink, Redactor, StepContext, StepError, StepOutcome, Stream,
};
pub use registry::StepRegistry;
pub use schema::{FieldKind, FieldSpec, StepSchema};

/// A step type. Implementations live in the `rok-plan-steps` crate, or in a library
/// user's code.
///
/// The engine renders the fields, records `running` durably, then calls [`StepType::run`]
/// once per attempt; a `check` command goes to [`StepType::check`].
#[async_trait::async_trait]
pub trait StepType: Send + Sync {
    /// The type's fields and rules.
    fn schema(&self) -> &StepSchema;

    /// What `rok-plan plan` prints for an instance: the exact command, the API call in
    /// words, the instructions. `fields` are rendered (secrets as `***`, values known only
    /// at run time as `<steps.ID.outputs.NAME>`).
    fn describe(&self, fields: &serde_json::Map<String, serde_json::Value>) -> String {
        describe_fields(fields)
    }

    /// Outputs the type produces from its own fields (besides `capture`), e.g. `kube.get`'s
    /// `fields` keys. Templates of dependent steps may read these.
    fn declared_outputs(&self, fields: &indexmap::IndexMap<String, FieldValue>) -> Vec<String> {
        let _ = fields;
        Vec::new()
    }

    /// Runs one attempt. It must return promptly once `ctx.cancellation()` fires, having
    /// stopped what it started.
    ///
    /// # Errors
    /// [`StepError`] when the step could not be attempted at all; a step that ran and did
    /// not succeed returns [`StepOutcome::Failed`].
    async fn run(&self, ctx: &StepContext, fields: &Fields) -> Result<StepOutcome, StepError>;

    /// Runs the step's `check` command where the step acts (locally by default; an `ssh`
    /// step runs it on its host). `Ok(true)` means the effect is already in place.
    ///
    /// # Errors
    /// [`StepError`] when the check could not be run.
    async fn check(
        &self,
        ctx: &StepContext,
        fields: &Fields,
        command: &str,
    ) -> Result<bool, StepError> {
        let _ = fields;
        crate::process::run_check(ctx, command).await
    }

    /// Called once when a run (or a resume) starts, in the background, with the rendered
    /// fields of the type's pending instances whose fields are known before anything runs.
    /// A type may get ready for them (e.g. open connections); nothing may change, and
    /// failures must be left for `run` to report. The default does nothing.
    async fn prepare(&self, instances: Vec<Fields>) {
        let _ = instances;
    }

    /// Whether [`StepType::prepare`] does anything (rendering every instance up front
    /// costs time in large plans, so the engine only does it for types that ask).
    fn prepares(&self) -> bool {
        false
    }

    /// Called once when a run (or a resume) ends, whatever its outcome: release what the
    /// type kept open across steps (e.g. ssh master connections). The default does nothing.
    async fn end_of_run(&self) {}
}

/// Every output a step makes: its type's declared outputs, then its `capture` names.
pub fn step_outputs(step: &StepSpec, registry: &StepRegistry) -> Vec<String> {
    let mut out = registry
        .get(&step.type_name.value)
        .map(|t| t.declared_outputs(&step.fields))
        .unwrap_or_default();
    out.extend(step.capture_names().map(str::to_string));
    out
}

/// A generic description: `key=value` for every field, in order.
pub fn describe_fields(fields: &serde_json::Map<String, serde_json::Value>) -> String {
    fields
        .iter()
        .map(|(k, v)| match v {
            serde_json::Value::String(s) => format!("{k}={s}"),
            other => format!("{k}={other}"),
        })
        .collect::<Vec<_>>()
        .join(" ")
}
