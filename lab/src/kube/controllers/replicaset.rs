//! ReplicaSets and ReplicationControllers: keep `spec.replicas` pods from the template.

use serde_json::{Value, json};

use super::super::pod::{is_active, is_ready};
use super::super::selectors::LabelSelector;
use super::super::world::World;

/// Reconciles the queued ReplicaSets (`apps`) or ReplicationControllers (core).
pub(super) fn run(w: &mut World, group: &str, plural: &str, keys: Vec<super::dirty::Key>) {
    for key in keys {
        let Some(rs) = super::get_key(w, group, plural, &key) else {
            continue;
        };
        if rs["metadata"]["deletionTimestamp"].is_string() {
            continue;
        }
        let ns = rs["metadata"]["namespace"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let want = rs["spec"]["replicas"].as_i64().unwrap_or(1).max(0) as usize;
        let mut pods: Vec<Value> = super::owned(w, "", "pods", &rs)
            .into_iter()
            .filter(is_active)
            .collect();
        if pods.len() < want {
            let name = rs["metadata"]["name"].as_str().unwrap_or_default();
            for _ in pods.len()..want {
                let mut pod = super::pod_from_template(&rs["spec"]["template"], &rs, &[]);
                pod["metadata"]["generateName"] = json!(format!("{name}-"));
                if let Some(p) = super::create(w, "", "pods", &ns, pod) {
                    pods.push(p);
                }
            }
        } else if pods.len() > want {
            // Not-ready pods go first, then the newest.
            pods.sort_by_key(|p| {
                (
                    is_ready(p),
                    std::cmp::Reverse(
                        p["metadata"]["creationTimestamp"]
                            .as_str()
                            .unwrap_or_default()
                            .to_string(),
                    ),
                )
            });
            for p in pods.drain(..pods.len() - want) {
                super::delete(w, "", "pods", &p);
            }
        }
        let sel = if group.is_empty() {
            let m = rs["spec"]["selector"].clone();
            LabelSelector::from_object(&json!({"matchLabels": m}))
        } else {
            LabelSelector::from_object(&rs["spec"]["selector"])
        };
        let ready = pods.iter().filter(|p| is_ready(p)).count();
        let mut updated = rs.clone();
        updated["status"] = json!({
            "replicas": pods.len(),
            "fullyLabeledReplicas": pods.iter().filter(|p| sel.matches(p)).count(),
            "readyReplicas": ready,
            "availableReplicas": ready,
            "observedGeneration": rs["metadata"]["generation"],
        });
        super::put_status(w, group, plural, updated);
    }
}
