//! The `scale` subresource (autoscaling/v1 `Scale`) of Deployments, StatefulSets,
//! ReplicaSets, ReplicationControllers and CRDs that declare it.

use std::sync::Arc;

use axum::http::{HeaderMap, Method};
use axum::response::Response;
use serde_json::{Value, json};

use super::kinds::ResourceType;
use super::ops::{Part, WriteOpts};
use super::patch;
use super::selectors::LabelSelector;
use super::server::{Query, Shared, json_response, parse_body};
use super::status::{ApiError, Subject};
use super::store::gr;

fn get_path<'a>(obj: &'a Value, path: &str) -> &'a Value {
    path.trim_start_matches('.')
        .split('.')
        .fold(obj, |cur, seg| &cur[seg])
}

fn set_path(obj: &mut Value, path: &str, v: Value) {
    let mut cur = obj;
    for seg in path.trim_start_matches('.').split('.') {
        if !cur.is_object() {
            *cur = json!({});
        }
        cur = &mut cur[seg];
    }
    *cur = v;
}

fn paths(rt: &ResourceType) -> (String, String, Option<String>) {
    match &rt.scale_paths {
        Some(p) => (p.spec.clone(), p.status.clone(), p.selector.clone()),
        None => (".spec.replicas".into(), ".status.replicas".into(), None),
    }
}

/// The `Scale` view of an object.
pub fn scale_of(rt: &ResourceType, obj: &Value) -> Value {
    let (spec, status, sel_path) = paths(rt);
    let selector = match sel_path {
        Some(p) => get_path(obj, &p).as_str().unwrap_or_default().to_string(),
        None => {
            let s = &obj["spec"]["selector"];
            if rt.kind == "ReplicationController" {
                let parts: Vec<String> = s
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                    .collect();
                parts.join(",")
            } else {
                LabelSelector::from_object(s).to_query()
            }
        }
    };
    let m = &obj["metadata"];
    json!({
        "kind": "Scale", "apiVersion": "autoscaling/v1",
        "metadata": {"name": m["name"], "namespace": m["namespace"], "uid": m["uid"], "resourceVersion": m["resourceVersion"], "creationTimestamp": m["creationTimestamp"]},
        "spec": {"replicas": get_path(obj, &spec).as_i64().unwrap_or(0)},
        "status": {"replicas": get_path(obj, &status).as_i64().unwrap_or(0), "selector": selector},
    })
}

/// Serves GET, PUT and PATCH on `…/scale`.
#[allow(clippy::too_many_arguments)]
pub fn serve(
    sh: &Arc<Shared>,
    rt: &ResourceType,
    ns: &str,
    name: &str,
    m: &Method,
    headers: &HeaderMap,
    q: &Query,
    body: &[u8],
) -> Result<Response, ApiError> {
    let mut w = sh.lock();
    let store_ns = if rt.namespaced { ns } else { "" };
    let obj = w
        .store
        .get(&gr(rt), store_ns, name)
        .cloned()
        .ok_or_else(|| {
            ApiError::not_found(Subject {
                group: &rt.group,
                resource: &rt.plural,
                name,
            })
        })?;
    let current = scale_of(rt, &obj);
    let wanted = match *m {
        Method::GET => return Ok(json_response(200, &current)),
        Method::PUT => parse_body(body)?,
        Method::PATCH => {
            let p = parse_body(body)?;
            let mut s = current.clone();
            let ct = headers
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            match ct.split(';').next().unwrap_or_default() {
                "application/json-patch+json" => patch::json_patch(&mut s, &p)?,
                "application/strategic-merge-patch+json" => patch::strategic_merge(&mut s, &p)?,
                "application/apply-patch+yaml" => patch::merge_patch(&mut s, &p),
                _ => patch::merge_patch(&mut s, &p),
            }
            s
        }
        _ => return Err(ApiError::method_not_allowed()),
    };
    if let Some(rv) = wanted["metadata"]["resourceVersion"].as_str()
        && !rv.is_empty()
        && Some(rv) != obj["metadata"]["resourceVersion"].as_str()
    {
        return Err(ApiError::conflict(Subject {
            group: &rt.group,
            resource: &rt.plural,
            name,
        }));
    }
    let Some(replicas) = wanted["spec"]["replicas"].as_i64() else {
        return Err(ApiError::invalid(
            "autoscaling",
            "Scale",
            name,
            &[("FieldValueRequired", "spec.replicas", "Required value")],
        ));
    };
    if replicas < 0 {
        return Err(ApiError::invalid(
            "autoscaling",
            "Scale",
            name,
            &[(
                "FieldValueInvalid",
                "spec.replicas",
                &format!("Invalid value: {replicas}: must be greater than or equal to 0"),
            )],
        ));
    }
    let (spec_path, _, _) = paths(rt);
    let mut updated = obj.clone();
    set_path(&mut updated, &spec_path, json!(replicas));
    if let Some(m) = updated["metadata"].as_object_mut() {
        m.remove("resourceVersion");
    }
    let mgr = q.get("fieldManager").cloned().unwrap_or_else(|| {
        headers
            .get("user-agent")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("unknown")
            .split('/')
            .next()
            .unwrap_or("unknown")
            .to_string()
    });
    let opts = WriteOpts {
        dry_run: q.get("dryRun").is_some_and(|v| v == "All"),
        manager: mgr,
        subresource: "scale".into(),
    };
    let out = w.update(rt, ns, name, updated, Part::Main, &opts)?;
    Ok(json_response(200, &scale_of(rt, &out)))
}
