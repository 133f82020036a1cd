//! `kube.get`: reads one object; each entry of `fields` (NAME = path) becomes an output.

use std::collections::BTreeMap;

use rok_plan_engine::step::{Fields, StepContext, StepOutcome};
use serde_json::Value;

use super::client::{Kube, call, say};
use super::error::KubeError;
use super::field_path::{as_text, is_valid, lookup};
use super::flag;
use super::resource::Target;

pub(crate) async fn run(
    kube: &Kube,
    ctx: &StepContext,
    f: &Fields,
) -> Result<StepOutcome, KubeError> {
    let wanted: Vec<(String, String)> = match f.get("fields") {
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
            .collect(),
        _ => Vec::new(),
    };
    if let Some((name, path)) = wanted.iter().find(|(_, p)| !is_valid(p)) {
        return Err(KubeError::field(
            "fields",
            format!("`{name}`: `{path}` is not a field path like .status.version"),
        ));
    }
    let conn = kube.conn(f).await?;
    let target = Target::from_fields(ctx, &conn, f, true).await?;
    let name = target.name.clone().unwrap_or_default();
    let api = target.api(&conn);
    let what = format!("GET {}", target.describe());
    let found = call(ctx, &what, || api.get_opt(&name)).await?;
    let mut outputs = BTreeMap::new();
    let Some(obj) = found else {
        if flag(f, "optional") {
            say(
                ctx,
                format!("{} does not exist (optional)", target.describe()),
            );
            for (out, _) in wanted {
                outputs.insert(out, String::new());
            }
            return Ok(StepOutcome::Succeeded {
                outputs,
                exit_status: None,
            });
        }
        return Err(KubeError::Api {
            what,
            code: 404,
            reason: "NotFound".into(),
            message: format!("{} not found", target.describe()),
            causes: Vec::new(),
        });
    };
    let json = serde_json::to_value(&obj).map_err(|e| KubeError::Manifest(e.to_string()))?;
    for (out, path) in wanted {
        let value = lookup(&json, &path).map(as_text).unwrap_or_default();
        say(ctx, format!("{out} = {value}"));
        outputs.insert(out, value);
    }
    Ok(StepOutcome::Succeeded {
        outputs,
        exit_status: None,
    })
}
