//! The scheduler: binds Pending pods to a Ready, schedulable node matching their
//! `nodeSelector` (cordoned nodes only for pods tolerating the unschedulable taint).

use serde_json::{Value, json};

use super::super::pod::is_ready;
use super::super::world::World;

fn tolerates(pod: &Value, key: &str) -> bool {
    pod["spec"]["tolerations"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|t| t["key"] == key || t["operator"] == "Exists" && t["key"].is_null())
}

fn fits(pod: &Value, node: &Value) -> bool {
    if !is_ready(node) {
        return false;
    }
    if node["spec"]["unschedulable"] == true && !tolerates(pod, "node.kubernetes.io/unschedulable")
    {
        return false;
    }
    let taints_ok = node["spec"]["taints"]
        .as_array()
        .into_iter()
        .flatten()
        .all(|t| {
            t["effect"] != "NoSchedule" && t["effect"] != "NoExecute"
                || tolerates(pod, t["key"].as_str().unwrap_or_default())
        });
    let labels = &node["metadata"]["labels"];
    let selector_ok = pod["spec"]["nodeSelector"]
        .as_object()
        .into_iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    taints_ok && selector_ok
}

/// Tries to bind the queued pods. Each goes to the least loaded node that fits (the first in
/// name order among equals); pods that fit nowhere stay Pending and come back when a node changes.
pub(super) fn run(w: &mut World, keys: Vec<super::dirty::Key>) {
    let nodes = w.list("", "nodes", None);
    for key in keys {
        let Some(mut pod) = super::get_key(w, "", "pods", &key) else {
            continue;
        };
        if pod["spec"]["nodeName"].is_string() || pod["metadata"]["deletionTimestamp"].is_string() {
            continue;
        }
        let best = nodes.iter().filter(|n| fits(&pod, n)).min_by_key(|n| {
            w.store
                .pod_count_on(n["metadata"]["name"].as_str().unwrap_or_default())
        });
        match best {
            Some(node) => {
                let name = node["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                pod["spec"]["nodeName"] = json!(name);
                super::put_main(w, "", "pods", pod);
                if let Some(mut p) = super::get_key(w, "", "pods", &key) {
                    super::set_condition(&mut p, "PodScheduled", "True", "", "");
                    super::put_status(w, "", "pods", p);
                }
            }
            None => {
                let msg = format!(
                    "0/{} nodes are available: {} node(s) didn't match Pod's node affinity/selector or were unschedulable.",
                    nodes.len(),
                    nodes.len()
                );
                super::set_condition(&mut pod, "PodScheduled", "False", "Unschedulable", &msg);
                super::put_status(w, "", "pods", pod);
            }
        }
    }
}
