//! Step types: what they accept ([`StepSchema`]) and how they describe themselves.

mod registry;
mod schema;

pub use registry::StepRegistry;
pub use schema::{FieldKind, FieldSpec, StepSchema};

/// A step type. Implementations live in the `rok-plan-steps` crate, or in a library
/// user's code.
pub trait StepType: Send + Sync {
    /// The type's fields and rules.
    fn schema(&self) -> &StepSchema;

    /// What `rok-plan plan` prints for an instance: the exact command, the API call in
    /// words, the instructions. `fields` are rendered (secrets as `***`, values known only
    /// at run time as `<steps.ID.outputs.NAME>`).
    fn describe(&self, fields: &serde_json::Map<String, serde_json::Value>) -> String {
        describe_fields(fields)
    }
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
