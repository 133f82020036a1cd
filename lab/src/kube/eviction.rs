//! `pods/eviction` (policy/v1): deletes a pod unless a PodDisruptionBudget forbids it.

use std::sync::Arc;

use axum::response::Response;
use serde_json::{Value, json};

use super::kinds::ResourceType;
use super::ops::DeleteOpts;
use super::pod;
use super::selectors::LabelSelector;
use super::server::{Query, Shared, json_response, parse_body};
use super::status::{ApiError, Subject};
use super::store::{gr, now_rfc3339};
use super::world::World;

const VIOLATION: &str = "Cannot evict pod as it would violate the pod's disruption budget.";

fn too_many(cause: String) -> ApiError {
    ApiError::new(429, "TooManyRequests", VIOLATION)
        .with_details(json!({"causes": [{"reason": "DisruptionBudget", "message": cause}]}))
}

/// Handles POST `…/pods/{name}/eviction`.
pub fn serve(
    sh: &Arc<Shared>,
    rt: &ResourceType,
    ns: &str,
    name: &str,
    q: &Query,
    body: &[u8],
) -> Result<Response, ApiError> {
    let eviction = parse_body(body)?;
    let d = &eviction["deleteOptions"];
    let opts = DeleteOpts {
        propagation: d["propagationPolicy"].as_str().map(str::to_string),
        grace: d["gracePeriodSeconds"].as_i64(),
        uid: d["preconditions"]["uid"].as_str().map(str::to_string),
        rv: d["preconditions"]["resourceVersion"]
            .as_str()
            .map(str::to_string),
        // kubectl puts dryRun in the Eviction's deleteOptions, the kube crate in the query.
        dry_run: q.get("dryRun").is_some_and(|v| v == "All")
            || d["dryRun"]
                .as_array()
                .is_some_and(|a| a.iter().any(|v| v == "All")),
    };
    let mut w = sh.lock();
    evict(&mut w, rt, ns, name, &opts)?;
    Ok(json_response(
        201,
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
    ))
}

/// Evicts a pod, honouring PodDisruptionBudgets.
pub fn evict(
    w: &mut World,
    rt: &ResourceType,
    ns: &str,
    name: &str,
    opts: &DeleteOpts,
) -> Result<(), ApiError> {
    let Some(pod) = w.store.get(&gr(rt), ns, name).cloned() else {
        return Err(ApiError::not_found(Subject {
            group: "",
            resource: "pods",
            name,
        }));
    };
    let phase = pod["status"]["phase"].as_str().unwrap_or("Pending");
    // Terminal, pending or already deleting pods need no budget.
    if pod["metadata"]["deletionTimestamp"].is_string()
        || matches!(phase, "Succeeded" | "Failed" | "Pending")
    {
        w.delete(rt, ns, name, opts)?;
        return Ok(());
    }
    let pdbs: Vec<Value> = w
        .list("policy", "poddisruptionbudgets", Some(ns))
        .into_iter()
        .filter(|p| {
            let sel = LabelSelector::from_object(&p["spec"]["selector"]);
            !sel.is_empty() && sel.matches(&pod)
        })
        .collect();
    if pdbs.len() > 1 {
        return Err(ApiError::internal(
            "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
        ));
    }
    let Some(mut pdb) = pdbs.into_iter().next() else {
        w.delete(rt, ns, name, opts)?;
        return Ok(());
    };
    let pdb_name = pdb["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let status = &pdb["status"];
    let healthy = status["currentHealthy"].as_i64().unwrap_or(0);
    let desired = status["desiredHealthy"].as_i64().unwrap_or(0);
    // A Running pod that is not Ready: evictable if the budget is healthy, or always under AlwaysAllow.
    if !pod::is_ready(&pod) {
        let always = pdb["spec"]["unhealthyPodEvictionPolicy"].as_str() == Some("AlwaysAllow");
        if always || healthy >= desired {
            w.delete(rt, ns, name, opts)?;
            return Ok(());
        }
    }
    if status["observedGeneration"].as_i64() < pdb["metadata"]["generation"].as_i64() {
        return Err(too_many(format!(
            "The disruption budget {pdb_name} is still being processed by the server."
        )));
    }
    let allowed = status["disruptionsAllowed"].as_i64().unwrap_or(0);
    if allowed <= 0 {
        return Err(too_many(format!(
            "The disruption budget {pdb_name} needs {desired} healthy pods and has {healthy} currently"
        )));
    }
    if opts.dry_run {
        return Ok(());
    }
    pdb["status"]["disruptionsAllowed"] = json!(allowed - 1);
    pdb["status"]["disruptedPods"][name] = json!(now_rfc3339());
    w.store
        .put(&World::gr("policy", "poddisruptionbudgets"), pdb);
    w.delete(rt, ns, name, opts)?;
    Ok(())
}
