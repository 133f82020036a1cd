//! `kube.drain`: pre-flight, cordon, evict, wait until the evicted pods are gone.
//!
//! Evictions go through the eviction API so PodDisruptionBudgets are honoured. A budget
//! that allows no disruption answers 429; kube's own retry of 429 is off (see
//! `client.rs`), and this loop asks again every `eviction_retry_interval` until the
//! step's timeout cancels it, saying each round which pods still wait and on which budget.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::Api;
use kube::api::{ListParams, PostParams};
use kube::core::Status;
use kube::runtime::watcher;
use rok_plan_engine::duration::parse_duration;
use rok_plan_engine::step::{Fields, StepContext, StepOutcome};

use super::client::{Conn, Kube, Retry, call, call_with, pause, say};
use super::cordon::cordon;
use super::error::KubeError;
use super::preflight::{Allow, Evictee, Preflight, classify};
use super::watch::{Verdict, watch_until};
use super::{flag, opt_text};

pub(crate) async fn run(
    kube: &Kube,
    ctx: &StepContext,
    f: &Fields,
) -> Result<StepOutcome, KubeError> {
    let node = opt_text(f, "node").ok_or_else(|| KubeError::field("node", "is empty"))?;
    let grace = match opt_text(f, "grace_period") {
        Some(g) => Some(
            parse_duration(g)
                .map_err(|e| KubeError::field("grace_period", e.to_string()))?
                .as_secs(),
        ),
        None => None,
    };
    let allow = Allow {
        unmanaged: flag(f, "allow_unmanaged"),
        emptydir_loss: flag(f, "allow_emptydir_loss"),
        blocked_budgets: flag(f, "wait_for_budgets"),
    };
    let conn = kube.conn(f).await?;
    let plan = preflight(ctx, &conn, node, allow).await?;
    for (pod, why) in &plan.skip {
        say(ctx, format!("skip {pod}: {why}"));
    }
    if !plan.refuse.is_empty() {
        let mut lines = Vec::new();
        for r in &plan.refuse {
            let line = format!("{}: {}", r.pod, r.reasons.join("; "));
            say(ctx, format!("refused: {line}"));
            lines.push(line);
        }
        return Ok(StepOutcome::failed(format!(
            "pre-flight refused to drain node {node}: {}",
            lines.join(" | ")
        )));
    }
    if conn.dry_run {
        let names: Vec<String> = plan.evict.iter().map(Evictee::id).collect();
        say(
            ctx,
            format!(
                "pre-flight of node {node} passed: would cordon it and evict {} pod(s){}{}",
                names.len(),
                if names.is_empty() { "" } else { ": " },
                names.join(", ")
            ),
        );
        return Ok(StepOutcome::done());
    }
    cordon(ctx, &conn, node).await?;
    let evicted = evict_all(ctx, &conn, plan.evict, grace).await?;
    wait_gone(ctx, &conn, node, &evicted).await?;
    say(
        ctx,
        format!(
            "node {node} drained: {} pod(s) evicted, {} left in place",
            evicted.len(),
            plan.skip.len()
        ),
    );
    Ok(StepOutcome::done())
}

/// Lists the node's pods and every budget, and classifies the pods.
///
/// # Errors
/// API errors (a missing node included).
pub(crate) async fn preflight(
    ctx: &StepContext,
    conn: &Conn,
    node: &str,
    allow: Allow,
) -> Result<Preflight, KubeError> {
    let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(conn.client.clone());
    call(ctx, &format!("GET node {node}"), || nodes.get(node)).await?;
    let pods: Api<Pod> = Api::all(conn.client.clone());
    let lp = ListParams::default().fields(&format!("spec.nodeName={node}"));
    let on_node = call(ctx, &format!("LIST pods on node {node}"), || pods.list(&lp))
        .await?
        .items;
    let budgets: Api<PodDisruptionBudget> = Api::all(conn.client.clone());
    let lp = ListParams::default();
    let budgets = call(ctx, "LIST poddisruptionbudgets", || budgets.list(&lp))
        .await?
        .items;
    Ok(classify(&on_node, &budgets, allow))
}

/// The policy/v1 Eviction of `pod`. Written here rather than by `Api::evict`: kube 5 sends
/// the delete options under the key `delete_options`, which the API server ignores, so the
/// drain's grace period would never reach the pod.
fn eviction_body(pod: &Evictee, grace: Option<u64>) -> serde_json::Value {
    let mut eviction = serde_json::json!({
        "apiVersion": "policy/v1",
        "kind": "Eviction",
        "metadata": {"name": pod.name, "namespace": pod.namespace},
    });
    if let Some(g) = grace {
        eviction["deleteOptions"] = serde_json::json!({"gracePeriodSeconds": g});
    }
    eviction
}

/// Evicts every pod, asking again for those a budget refuses until all are evicted or
/// the attempt is cancelled. Returns the uids of the evicted pods.
async fn evict_all(
    ctx: &StepContext,
    conn: &Conn,
    mut pending: Vec<Evictee>,
    grace: Option<u64>,
) -> Result<BTreeSet<(String, String)>, KubeError> {
    let mut evicted = BTreeSet::new();
    let mut round = 0u32;
    while !pending.is_empty() {
        round += 1;
        let mut refused = Vec::new();
        for pod in std::mem::take(&mut pending) {
            let api: Api<Pod> = Api::namespaced(conn.client.clone(), &pod.namespace);
            let what = format!("evict pod {}", pod.id());
            // An eviction's 429 is a budget's answer: this loop owns that retry.
            let body = eviction_body(&pod, grace);
            let post = PostParams::default();
            match call_with(ctx, &what, Retry::ServerErrors, || {
                api.create_subresource::<_, Status>("eviction", &pod.name, &post, &body)
            })
            .await
            {
                Ok(_) => {
                    say(ctx, format!("evicted {}", pod.id()));
                    evicted.insert((pod.namespace.clone(), pod.name.clone()));
                }
                Err(KubeError::Api { code: 404, .. }) => {}
                Err(KubeError::Api {
                    code: 429,
                    message,
                    causes,
                    ..
                }) => {
                    let why = pod
                        .budget
                        .as_ref()
                        .map(|b| format!("PodDisruptionBudget {b}"))
                        .unwrap_or_else(|| message.clone());
                    let detail = causes.first().cloned().unwrap_or(message);
                    refused.push((pod, format!("{why}: {detail}")));
                }
                Err(e) => return Err(e),
            }
        }
        if refused.is_empty() {
            break;
        }
        let waiting: Vec<String> = refused
            .iter()
            .map(|(p, why)| format!("{} ({why})", p.id()))
            .collect();
        let waiting = waiting.join(", ");
        say(
            ctx,
            format!(
                "eviction round {round}: {} pod(s) still waiting: {waiting}; asking again in {} s",
                refused.len(),
                conn.eviction_retry.as_secs_f64()
            ),
        );
        if pause(ctx, conn.eviction_retry).await.is_err() {
            return Err(KubeError::Cancelled(format!(
                "pods still waiting for their disruption budget: {waiting}"
            )));
        }
        pending = refused.into_iter().map(|(p, _)| p).collect();
    }
    Ok(evicted)
}

/// Watches the node's pods until none of the evicted ones is left.
async fn wait_gone(
    ctx: &StepContext,
    conn: &Conn,
    node: &str,
    evicted: &BTreeSet<(String, String)>,
) -> Result<(), KubeError> {
    if evicted.is_empty() {
        return Ok(());
    }
    let pods: Api<Pod> = Api::all(conn.client.clone());
    let config = watcher::Config::default().fields(&format!("spec.nodeName={node}"));
    watch_until(ctx, pods, config, |objs| {
        let left: Vec<String> = objs
            .iter()
            .filter(|p| {
                evicted.contains(&(
                    p.metadata.namespace.clone().unwrap_or_default(),
                    p.metadata.name.clone().unwrap_or_default(),
                ))
            })
            .map(|p| {
                format!(
                    "{}/{}",
                    p.metadata.namespace.clone().unwrap_or_default(),
                    p.metadata.name.clone().unwrap_or_default()
                )
            })
            .collect();
        if left.is_empty() {
            Verdict::done(format!("evicted pods have left node {node}"))
        } else {
            Verdict::waiting(format!("waiting for {} to terminate", left.join(", ")))
        }
    })
    .await?;
    Ok(())
}
