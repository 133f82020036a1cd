//! `kube.cordon` / `kube.uncordon`, with cordon ownership: when rok-plan cordons a node it
//! marks it with the [`CORDONED_BY`] annotation, in the same patch (so a crash cannot
//! separate the two). `kube.uncordon` only uncordons a node that carries the mark, so a
//! node someone cordoned by hand stays cordoned, unless the step says `force = true`.

use k8s_openapi::api::core::v1::Node;
use kube::Api;
use kube::api::{Patch, PatchParams};
use rok_plan_engine::step::{Fields, StepContext, StepOutcome};
use serde_json::json;

use super::client::{Conn, Kube, call, say};
use super::error::KubeError;
use super::{flag, opt_text};

/// The annotation rok-plan puts on a node it cordoned; its value is the run id.
pub(crate) const CORDONED_BY: &str = "rok-plan/cordoned-by-run";

/// How many times a cordon or uncordon reads the node again when its write is refused with
/// 409 because the node changed since it was read. Nodes change all the time (kubelet
/// heartbeats, the node controller's unschedulable taint), so one refusal is ordinary;
/// reading again also sees whether someone else cordoned the node meanwhile.
const CONFLICT_RETRIES: u32 = 5;

fn is_conflict(e: &KubeError) -> bool {
    matches!(e, KubeError::Api { code: 409, .. })
}

/// How a node stood when asked to be cordoned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Cordon {
    /// rok-plan cordoned it now.
    Cordoned,
    /// A rok-plan run (this one, or the named one) had already cordoned it.
    AlreadyOurs(String),
    /// Someone else had cordoned it: it is theirs to uncordon.
    AlreadyTheirs,
}

pub(crate) async fn run_cordon(
    kube: &Kube,
    ctx: &StepContext,
    f: &Fields,
) -> Result<StepOutcome, KubeError> {
    let node = node_field(f)?;
    let conn = kube.conn(f).await?;
    Ok(match cordon(ctx, &conn, node).await? {
        Cordon::Cordoned => StepOutcome::done(),
        Cordon::AlreadyOurs(_) | Cordon::AlreadyTheirs => StepOutcome::Satisfied,
    })
}

pub(crate) async fn run_uncordon(
    kube: &Kube,
    ctx: &StepContext,
    f: &Fields,
) -> Result<StepOutcome, KubeError> {
    let node = node_field(f)?;
    let conn = kube.conn(f).await?;
    let force = flag(f, "force");
    let mut attempt = 0;
    loop {
        match uncordon(ctx, &conn, node, force).await {
            Err(e) if is_conflict(&e) && attempt < CONFLICT_RETRIES => {
                attempt += 1;
                say(
                    ctx,
                    format!("node {node} changed meanwhile; reading it again"),
                );
            }
            other => return other,
        }
    }
}

/// One read-decide-write of an uncordon.
async fn uncordon(
    ctx: &StepContext,
    conn: &Conn,
    node: &str,
    force: bool,
) -> Result<StepOutcome, KubeError> {
    let api: Api<Node> = Api::all(conn.client.clone());
    let what = format!("GET node {node}");
    let n = call(ctx, &what, || api.get(node)).await?;
    let unschedulable = n.spec.as_ref().and_then(|s| s.unschedulable) == Some(true);
    let mark = n
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(CORDONED_BY))
        .cloned();
    if !unschedulable {
        if mark.is_some() {
            patch_node(
                ctx,
                conn,
                node,
                &n,
                json!({"metadata": {"annotations": {CORDONED_BY: null}}}),
            )
            .await?;
        }
        say(ctx, format!("node {node} is schedulable"));
        return Ok(StepOutcome::Satisfied);
    }
    if mark.is_none() && !force {
        say(
            ctx,
            format!(
                "node {node} stays cordoned: it was cordoned by someone else, not by rok-plan (set force = true to uncordon it anyway)"
            ),
        );
        return Ok(StepOutcome::Satisfied);
    }
    patch_node(
        ctx,
        conn,
        node,
        &n,
        json!({"metadata": {"annotations": {CORDONED_BY: null}}, "spec": {"unschedulable": null}}),
    )
    .await?;
    say(ctx, format!("node {node} uncordoned{}", dry(conn)));
    Ok(StepOutcome::done())
}

/// Cordons `node` unless it already is, recording that rok-plan did.
///
/// # Errors
/// API errors.
pub(crate) async fn cordon(
    ctx: &StepContext,
    conn: &Conn,
    node: &str,
) -> Result<Cordon, KubeError> {
    let mut attempt = 0;
    loop {
        match cordon_once(ctx, conn, node).await {
            Err(e) if is_conflict(&e) && attempt < CONFLICT_RETRIES => {
                attempt += 1;
                say(
                    ctx,
                    format!("node {node} changed meanwhile; reading it again"),
                );
            }
            other => return other,
        }
    }
}

/// One read-decide-write of a cordon.
async fn cordon_once(ctx: &StepContext, conn: &Conn, node: &str) -> Result<Cordon, KubeError> {
    let api: Api<Node> = Api::all(conn.client.clone());
    let what = format!("GET node {node}");
    let n = call(ctx, &what, || api.get(node)).await?;
    let unschedulable = n.spec.as_ref().and_then(|s| s.unschedulable) == Some(true);
    let mark = n
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(CORDONED_BY))
        .cloned();
    match (unschedulable, mark) {
        (true, Some(run)) => {
            say(
                ctx,
                format!("node {node} is already cordoned by rok-plan run {run}"),
            );
            Ok(Cordon::AlreadyOurs(run))
        }
        (true, None) => {
            say(
                ctx,
                format!(
                    "node {node} was already cordoned by someone else; rok-plan will leave it cordoned"
                ),
            );
            Ok(Cordon::AlreadyTheirs)
        }
        (false, _) => {
            let patch = json!({
                "metadata": {"annotations": {CORDONED_BY: ctx.run_id}},
                "spec": {"unschedulable": true},
            });
            patch_node(ctx, conn, node, &n, patch).await?;
            say(ctx, format!("node {node} cordoned{}", dry(conn)));
            Ok(Cordon::Cordoned)
        }
    }
}

/// A merge patch with the resourceVersion read, so that a concurrent change (someone
/// cordoning the node meanwhile) makes it fail instead of being overwritten.
async fn patch_node(
    ctx: &StepContext,
    conn: &Conn,
    node: &str,
    read: &Node,
    mut patch: serde_json::Value,
) -> Result<(), KubeError> {
    if let Some(rv) = &read.metadata.resource_version {
        patch["metadata"]["resourceVersion"] = json!(rv);
    }
    let api: Api<Node> = Api::all(conn.client.clone());
    let params = PatchParams {
        dry_run: conn.dry_run,
        ..PatchParams::default()
    };
    let what = format!("PATCH node {node}");
    let patch = Patch::Merge(patch);
    call(ctx, &what, || api.patch(node, &params, &patch)).await?;
    Ok(())
}

fn node_field(f: &Fields) -> Result<&str, KubeError> {
    opt_text(f, "node").ok_or_else(|| KubeError::field("node", "is empty"))
}

fn dry(conn: &Conn) -> &'static str {
    if conn.dry_run {
        " (server dry run)"
    } else {
        ""
    }
}
