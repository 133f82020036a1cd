//! A step's definition as a stable hash, to tell on resume which steps a changed plan
//! changed. Spans are left out: moving a step in the file changes nothing.

use serde_json::{Value, json};

use crate::exec::clock::digest;
use crate::plan::{FieldValue, FieldValueKind, Plan};

fn field_json(v: &FieldValue) -> Value {
    match &v.kind {
        FieldValueKind::Text(t) => t.clone().into(),
        FieldValueKind::Bool(b) => (*b).into(),
        FieldValueKind::Integer(i) => (*i).into(),
        FieldValueKind::Float(f) => json!(f),
        FieldValueKind::List(l) => l.iter().map(field_json).collect(),
        FieldValueKind::Table(t) => t.iter().map(|(k, v)| (k.clone(), field_json(v))).collect(),
    }
}

/// The fingerprint of step `i` of `plan` (its group's settings included).
pub(crate) fn step_fingerprint(plan: &Plan, i: usize) -> String {
    let s = &plan.steps[i];
    let group = s
        .group
        .as_ref()
        .and_then(|g| plan.group(&g.value))
        .map(|g| {
            json!({
                "id": g.id.value,
                "needs": g.needs.iter().map(|n| n.value.clone()).collect::<Vec<_>>(),
                "when": g.when.as_ref().map(|w| w.value.clone()),
                "for_each": g.for_each.as_ref().map(|w| w.value.clone()),
                "finally": g.finally,
            })
        });
    let value = json!({
        "type": s.type_name.value,
        "fields": s.fields.iter().map(|(k, v)| (k.clone(), field_json(v))).collect::<serde_json::Map<_, _>>(),
        "needs": s.needs.iter().map(|n| n.value.clone()).collect::<Vec<_>>(),
        "when": s.when.as_ref().map(|w| w.value.clone()),
        "for_each": s.for_each.as_ref().map(|w| w.value.clone()),
        "check": s.check.as_ref().map(field_json),
        "capture": s.capture.iter().map(|c| (c.name.value.clone(), Value::from(c.regex.as_str()))).collect::<serde_json::Map<_, _>>(),
        "env": s.env.iter().map(|(k, v)| (k.clone(), field_json(v))).collect::<serde_json::Map<_, _>>(),
        "idempotent": s.idempotent,
        "finally": s.finally,
        "group": group,
    });
    digest(&value.to_string())
}
