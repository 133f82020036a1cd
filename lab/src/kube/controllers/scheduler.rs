//! The scheduler: binds Pending pods to a Ready, schedulable node matching their
//! `nodeSelector` (cordoned nodes only for pods tolerating the unschedulable taint).

use std::collections::BTreeMap;

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

/// One pass.
pub(super) fn run(w: &mut World) {
    let nodes = w.list("", "nodes", None);
    let mut load: BTreeMap<String, usize> = BTreeMap::new();
    let mut pending = Vec::new();
    for p in w.store.list(&World::gr("", "pods"), None) {
        match p["spec"]["nodeName"].as_str() {
            Some(n) => *load.entry(n.to_string()).or_default() += 1,
            None => pending.push(p.clone()),
        }
    }
    for mut pod in pending {
        if pod["spec"]["nodeName"].is_string() || pod["metadata"]["deletionTimestamp"].is_string() {
            continue;
        }
        let best = nodes.iter().filter(|n| fits(&pod, n)).min_by_key(|n| {
            load.get(n["metadata"]["name"].as_str().unwrap_or_default())
                .copied()
                .unwrap_or(0)
        });
        match best {
            Some(node) => {
                let name = node["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                *load.entry(name.clone()).or_default() += 1;
                pod["spec"]["nodeName"] = json!(name);
                super::put_main(w, "", "pods", pod.clone());
                if let Some(p) = w.get(
                    "",
                    "pods",
                    pod["metadata"]["namespace"].as_str().unwrap_or_default(),
                    pod["metadata"]["name"].as_str().unwrap_or_default(),
                ) {
                    let mut p = p;
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
