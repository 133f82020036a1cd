//! Rendering a step's fields for one instance: every string through the template engine,
//! with shell quoting where the field is a command.

use std::collections::BTreeMap;

use minijinja::Value;

use crate::plan::{FieldValue, FieldValueKind, Plan, StepSpec};
use crate::step::{FieldKind, StepSchema};
use crate::template::{Quoting, TemplateError, Templates};

/// A field that failed to render.
#[derive(Debug, Clone, thiserror::Error)]
#[error("field `{field}`: {error}")]
pub struct FieldError {
    /// The field's key.
    pub field: String,
    /// What went wrong.
    #[source]
    pub error: TemplateError,
    /// Where the field is written.
    pub span: std::ops::Range<usize>,
}

/// Renders every type field of `step`.
///
/// # Errors
/// The first field that fails to render.
pub fn render_fields(
    templates: &Templates,
    schema: &StepSchema,
    step: &StepSpec,
    defaults_context: Option<&FieldValue>,
    ctx: &Value,
) -> Result<serde_json::Map<String, serde_json::Value>, FieldError> {
    let mut out = serde_json::Map::new();
    for (name, value) in &step.fields {
        let kind = schema.field(name).map_or(FieldKind::Any, |f| f.kind);
        out.insert(
            name.clone(),
            render_value(templates, name, value, kind, ctx)?,
        );
    }
    if let (Some(ctx_default), Some(field)) = (defaults_context, schema.field("context"))
        && !out.contains_key("context")
    {
        {
            out.insert(
                "context".into(),
                render_value(templates, "context", ctx_default, field.kind, ctx)?,
            );
        }
    }
    Ok(out)
}

/// Renders one value (a field, `check`, an `env` entry).
///
/// # Errors
/// [`FieldError`] when a template fails.
pub fn render_value(
    templates: &Templates,
    name: &str,
    value: &FieldValue,
    kind: FieldKind,
    ctx: &Value,
) -> Result<serde_json::Value, FieldError> {
    let err = |error| FieldError {
        field: name.to_string(),
        error,
        span: value.span.clone(),
    };
    Ok(match &value.kind {
        FieldValueKind::Text(t) => {
            let quoting = if matches!(kind, FieldKind::Shell) {
                Quoting::Shell
            } else {
                Quoting::Plain
            };
            let text = templates.render(t, quoting, ctx).map_err(err)?;
            match kind {
                FieldKind::Integer => text
                    .trim()
                    .parse::<i64>()
                    .map_or_else(|_| text.into(), Into::into),
                FieldKind::Bool => match text.trim().to_ascii_lowercase().as_str() {
                    "true" => true.into(),
                    "false" => false.into(),
                    _ => text.into(),
                },
                _ => text.into(),
            }
        }
        FieldValueKind::Bool(b) => (*b).into(),
        FieldValueKind::Integer(i) => (*i).into(),
        FieldValueKind::Float(f) => {
            serde_json::Number::from_f64(*f).map_or(serde_json::Value::Null, Into::into)
        }
        FieldValueKind::List(items) => {
            let inner = match kind {
                FieldKind::TextList | FieldKind::TextOrList => FieldKind::Text,
                FieldKind::IntegerList => FieldKind::Integer,
                other => other,
            };
            let mut out = Vec::new();
            for item in items {
                out.push(render_value(templates, name, item, inner, ctx)?);
            }
            out.into()
        }
        FieldValueKind::Table(t) => {
            let mut out = serde_json::Map::new();
            for (k, v) in t {
                let inner = match kind {
                    FieldKind::TableList(fields) => fields
                        .iter()
                        .find(|f| f.name == k)
                        .map_or(FieldKind::Any, |f| f.kind),
                    _ => FieldKind::Any,
                };
                out.insert(k.clone(), render_value(templates, name, v, inner, ctx)?);
            }
            out.into()
        }
    })
}

/// What `steps.ID` shows in a preview: placeholders for values only a run can know.
pub fn placeholder_steps(
    plan: &Plan,
    registry: &crate::step::StepRegistry,
    group: Option<&str>,
) -> Value {
    let mut steps = BTreeMap::new();
    let mut add = |s: &StepSpec| {
        let id = &s.id.value;
        let outputs: BTreeMap<String, Value> = crate::step::step_outputs(s, registry)
            .into_iter()
            .map(|n| {
                let shown = Value::from_safe_string(format!("<steps.{id}.outputs.{n}>"));
                (n, shown)
            })
            .collect();
        let entry: BTreeMap<&str, Value> = [
            ("outputs", Value::from(outputs)),
            (
                "stdout",
                Value::from_safe_string(format!("<steps.{id}.stdout>")),
            ),
        ]
        .into_iter()
        .collect();
        steps.insert(id.clone(), Value::from(entry));
    };
    for (_, s) in plan.steps_in(None) {
        add(s);
    }
    if let Some(g) = group {
        for (_, s) in plan.steps_in(Some(g)) {
            add(s);
        }
    }
    Value::from(steps)
}
