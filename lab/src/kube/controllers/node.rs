//! Node lifecycle: the `node.kubernetes.io/unschedulable:NoSchedule` taint follows
//! `spec.unschedulable` (cordon).

use serde_json::{Value, json};

use super::super::world::World;

const TAINT: &str = "node.kubernetes.io/unschedulable";

/// Reconciles the queued nodes.
pub(super) fn run(w: &mut World, keys: Vec<super::dirty::Key>) {
    for key in keys {
        let Some(mut node) = super::get_key(w, "", "nodes", &key) else {
            continue;
        };
        let cordoned = node["spec"]["unschedulable"] == true;
        let taints: Vec<Value> = node["spec"]["taints"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let has = taints.iter().any(|t| t["key"] == TAINT);
        if cordoned == has {
            continue;
        }
        let mut taints: Vec<Value> = taints.into_iter().filter(|t| t["key"] != TAINT).collect();
        if cordoned {
            taints.push(json!({"key": TAINT, "effect": "NoSchedule", "timeAdded": super::super::store::now_rfc3339()}));
        }
        if taints.is_empty() {
            if let Some(m) = node["spec"].as_object_mut() {
                m.remove("taints");
            }
        } else {
            node["spec"]["taints"] = json!(taints);
        }
        super::put_main(w, "", "nodes", node);
    }
}
