//! `kube.scale`: sets the replicas through the `scale` subresource, then waits until the
//! controller reports them (by watch).

use kube::api::{Patch, PatchParams};
use rok_plan_engine::step::{Fields, StepContext, StepOutcome};
use serde_json::{Value, json};

use super::client::{Conn, Kube, call, say};
use super::error::KubeError;
use super::resource::Target;
use super::rollout::replicas_observed;
use super::watch::{config_for, watch_until};

pub(crate) async fn run(
    kube: &Kube,
    ctx: &StepContext,
    f: &Fields,
) -> Result<StepOutcome, KubeError> {
    let replicas = match f.get("replicas") {
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    }
    .filter(|n| *n >= 0)
    .ok_or_else(|| KubeError::field("replicas", "must be a whole number, 0 or more"))?;
    let wait = !matches!(f.get("wait"), Some(Value::Bool(false)));
    let conn = kube.conn(f).await?;
    let target = Target::from_fields(ctx, &conn, f, true).await?;
    if !target.kind.has_subresource("scale") {
        return Err(KubeError::field(
            "resource",
            format!("{} has no scale subresource", target.kind.ar.kind),
        ));
    }
    scale_to(ctx, &conn, &target, replicas, wait).await?;
    Ok(StepOutcome::done())
}

/// Sets `target`'s replicas to `replicas` and, with `wait`, watches until observed.
///
/// # Errors
/// API errors; cancellation while waiting.
pub(crate) async fn scale_to(
    ctx: &StepContext,
    conn: &Conn,
    target: &Target,
    replicas: i64,
    wait: bool,
) -> Result<(), KubeError> {
    let name = target.name.clone().unwrap_or_default();
    let api = target.api(conn);
    let params = PatchParams {
        dry_run: conn.dry_run,
        ..PatchParams::default()
    };
    let patch = Patch::Merge(json!({"spec": {"replicas": replicas}}));
    let what = format!("PATCH {}/scale", target.describe());
    call(ctx, &what, || api.patch_scale(&name, &params, &patch)).await?;
    if conn.dry_run {
        say(
            ctx,
            format!(
                "{}: would scale to {replicas} (server dry run)",
                target.describe()
            ),
        );
        return Ok(());
    }
    say(ctx, format!("{}: scaled to {replicas}", target.describe()));
    if wait {
        watch_until(
            ctx,
            api,
            config_for(Some(&name), None),
            replicas_observed(replicas),
        )
        .await?;
    }
    Ok(())
}
