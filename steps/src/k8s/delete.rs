//! `kube.delete`: deletes the named or selected objects and waits until they are gone.

use std::collections::BTreeSet;

use kube::api::{DeleteParams, DynamicObject, ListParams};
use rok_plan_engine::step::{Fields, StepContext, StepOutcome};

use super::client::{Conn, Kube, call, say};
use super::error::KubeError;
use super::resource::{Target, name_of};
use super::watch::{Verdict, config_for, watch_until};

pub(crate) async fn run(
    kube: &Kube,
    ctx: &StepContext,
    f: &Fields,
) -> Result<StepOutcome, KubeError> {
    let conn = kube.conn(f).await?;
    let target = Target::from_fields(ctx, &conn, f, false).await?;
    let api = target.api(&conn);
    let objs: Vec<DynamicObject> = match (&target.name, &target.selector) {
        (Some(n), _) => {
            let what = format!("GET {}", target.describe());
            call(ctx, &what, || api.get_opt(n))
                .await?
                .into_iter()
                .collect()
        }
        (None, sel) => {
            let lp = ListParams::default().labels(sel.as_deref().unwrap_or(""));
            let what = format!("LIST {}", target.describe());
            call(ctx, &what, || api.list(&lp)).await?.items
        }
    };
    if objs.is_empty() {
        say(ctx, format!("{}: nothing to delete", target.describe()));
        return Ok(StepOutcome::Satisfied);
    }
    let uids = delete_all(ctx, &conn, &target, &objs, &DeleteParams::background()).await?;
    if conn.dry_run {
        return Ok(StepOutcome::done());
    }
    wait_gone(ctx, &target, api, uids).await?;
    Ok(StepOutcome::done())
}

/// Deletes `objs`, returning the uids whose deletion was accepted (an object already
/// gone is fine).
///
/// # Errors
/// API errors other than 404.
pub(crate) async fn delete_all(
    ctx: &StepContext,
    conn: &Conn,
    target: &Target,
    objs: &[DynamicObject],
    params: &DeleteParams,
) -> Result<BTreeSet<String>, KubeError> {
    let mut params = params.clone();
    params.dry_run = conn.dry_run;
    let mut uids = BTreeSet::new();
    for o in objs {
        let name = name_of(o);
        let ns = o.metadata.namespace.clone().or(target.namespace.clone());
        let api = target.kind.api(conn, ns.as_deref());
        let what = format!("DELETE {}", target.kind.object_name(ns.as_deref(), &name));
        match call(ctx, &what, || api.delete(&name, &params)).await {
            Ok(_) => {
                let dry = if conn.dry_run {
                    " (server dry run)"
                } else {
                    ""
                };
                say(
                    ctx,
                    format!(
                        "{}: deleted{dry}",
                        target.kind.object_name(ns.as_deref(), &name)
                    ),
                );
                uids.extend(o.metadata.uid.clone());
            }
            Err(KubeError::Api { code: 404, .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(uids)
}

/// Watches until no object with one of `uids` is left.
///
/// # Errors
/// Cancellation, naming what is left.
pub(crate) async fn wait_gone(
    ctx: &StepContext,
    target: &Target,
    api: kube::Api<DynamicObject>,
    uids: BTreeSet<String>,
) -> Result<(), KubeError> {
    let what = target.describe();
    let config = config_for(target.name.as_deref(), target.selector.as_deref());
    watch_until(ctx, api, config, move |objs| {
        let left: Vec<String> = objs
            .iter()
            .filter(|o| o.metadata.uid.as_ref().is_some_and(|u| uids.contains(u)))
            .map(|o| name_of(o))
            .collect();
        if left.is_empty() {
            Verdict::done(format!("{what}: gone"))
        } else {
            Verdict::waiting(format!("{what}: waiting for {} to go", left.join(", ")))
        }
    })
    .await?;
    Ok(())
}
