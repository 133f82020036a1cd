//! `kube.patch`: a JSON merge patch (`merge`) or RFC 6902 operations (`json`) on one object.

use kube::api::{Patch, PatchParams};
use rok_plan_engine::step::{Fields, StepContext, StepOutcome};
use serde_json::Value;

use super::client::{Kube, call, say};
use super::error::KubeError;
use super::resource::Target;

pub(crate) async fn run(
    kube: &Kube,
    ctx: &StepContext,
    f: &Fields,
) -> Result<StepOutcome, KubeError> {
    let patch: Patch<Value> = match (f.get("merge"), f.get("json")) {
        (Some(m), _) => Patch::Merge(document("merge", m)?),
        (None, Some(j)) => {
            let ops = document("json", j)?;
            let ops: json_patch::Patch = serde_json::from_value(ops).map_err(|e| {
                KubeError::field("json", format!("is not a list of RFC 6902 operations: {e}"))
            })?;
            Patch::Json(ops)
        }
        (None, None) => return Err(KubeError::field("merge", "give `merge` or `json`")),
    };
    let conn = kube.conn(f).await?;
    let target = Target::from_fields(ctx, &conn, f, true).await?;
    let name = target.name.clone().unwrap_or_default();
    let api = target.api(&conn);
    let before = call(ctx, &format!("GET {}", target.describe()), || {
        api.get(&name)
    })
    .await?;
    let params = PatchParams {
        dry_run: conn.dry_run,
        ..PatchParams::default()
    };
    let what = format!("PATCH {}", target.describe());
    let after = call(ctx, &what, || api.patch(&name, &params, &patch)).await?;
    let dry = if conn.dry_run {
        " (server dry run)"
    } else {
        ""
    };
    if before.metadata.resource_version == after.metadata.resource_version && !conn.dry_run {
        say(ctx, format!("{}: unchanged", target.describe()));
        return Ok(StepOutcome::Satisfied);
    }
    say(ctx, format!("{}: patched{dry}", target.describe()));
    Ok(StepOutcome::done())
}

/// A patch given inline (a TOML table or list) or as YAML/JSON text.
fn document(field: &'static str, v: &Value) -> Result<Value, KubeError> {
    match v {
        Value::String(text) => serde_saphyr::from_str::<Value>(text)
            .map_err(|e| KubeError::field(field, format!("is not YAML or JSON: {e}"))),
        other => Ok(other.clone()),
    }
}
