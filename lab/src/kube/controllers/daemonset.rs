//! DaemonSets: one pod per matching node, cordoned nodes included (the pods tolerate the
//! unschedulable taint).

use serde_json::{Value, json};

use super::super::pod::{is_active, is_ready};
use super::super::world::World;

/// Reconciles the queued DaemonSets.
pub(super) fn run(w: &mut World, keys: Vec<super::dirty::Key>) {
    let nodes = w.list("", "nodes", None);
    for key in keys {
        let Some(ds) = super::get_key(w, "apps", "daemonsets", &key) else {
            continue;
        };
        if !ds["metadata"]["deletionTimestamp"].is_string() {
            reconcile(w, &ds, &nodes);
        }
    }
}

fn reconcile(w: &mut World, ds: &Value, nodes: &[Value]) {
    let ns = ds["metadata"]["namespace"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let name = ds["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let revision = super::template_hash(&ds["spec"]["template"]);
    let selector = ds["spec"]["template"]["spec"]["nodeSelector"].clone();
    let targets: Vec<String> = nodes
        .iter()
        .filter(|n| {
            selector
                .as_object()
                .into_iter()
                .flatten()
                .all(|(k, v)| n["metadata"]["labels"].get(k) == Some(v))
        })
        .filter_map(|n| n["metadata"]["name"].as_str().map(str::to_string))
        .collect();
    let pods: Vec<Value> = super::owned(w, "", "pods", ds);
    let all_ready = pods.iter().all(|p| is_ready(p) && is_active(p));
    let mut rolled = false;
    for node in &targets {
        let on_node: Vec<&Value> = pods
            .iter()
            .filter(|p| p["spec"]["nodeName"] == node.as_str())
            .collect();
        if on_node.is_empty() {
            let mut pod = super::pod_from_template(
                &ds["spec"]["template"],
                ds,
                &[
                    ("controller-revision-hash", revision.clone()),
                    (
                        "pod-template-generation",
                        ds["metadata"]["generation"].to_string(),
                    ),
                ],
            );
            pod["metadata"]["generateName"] = json!(format!("{name}-"));
            pod["spec"]["nodeName"] = json!(node);
            let mut tolerations = pod["spec"]["tolerations"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            for key in [
                "node.kubernetes.io/not-ready",
                "node.kubernetes.io/unreachable",
                "node.kubernetes.io/disk-pressure",
                "node.kubernetes.io/memory-pressure",
                "node.kubernetes.io/pid-pressure",
                "node.kubernetes.io/unschedulable",
            ] {
                let effect = if key.ends_with("ready") || key.ends_with("unreachable") {
                    "NoExecute"
                } else {
                    "NoSchedule"
                };
                tolerations.push(json!({"key": key, "operator": "Exists", "effect": effect}));
            }
            pod["spec"]["tolerations"] = json!(tolerations);
            super::create(w, "", "pods", &ns, pod);
        } else if !rolled
            && all_ready
            && on_node
                .iter()
                .any(|p| p["metadata"]["labels"]["controller-revision-hash"] != revision.as_str())
        {
            for p in on_node {
                super::delete(w, "", "pods", p);
            }
            rolled = true;
        }
    }
    for p in &pods {
        if !targets.iter().any(|n| p["spec"]["nodeName"] == n.as_str()) && is_active(p) {
            super::delete(w, "", "pods", p);
        }
    }
    let pods: Vec<Value> = super::owned(w, "", "pods", ds)
        .into_iter()
        .filter(is_active)
        .collect();
    let ready = pods.iter().filter(|p| is_ready(p)).count();
    let updated = pods
        .iter()
        .filter(|p| p["metadata"]["labels"]["controller-revision-hash"] == revision.as_str())
        .count();
    let mut out = ds.clone();
    out["status"] = json!({
        "observedGeneration": ds["metadata"]["generation"],
        "desiredNumberScheduled": targets.len(),
        "currentNumberScheduled": pods.len(),
        "numberMisscheduled": 0,
        "numberReady": ready,
        "numberAvailable": ready,
        "updatedNumberScheduled": updated,
    });
    super::put_status(w, "apps", "daemonsets", out);
}
