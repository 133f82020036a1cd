//! StatefulSets: pods `{name}-{ordinal}`, created in order (OrderedReady) or all at once
//! (Parallel), scaled down and rolled from the highest ordinal.

use serde_json::{Value, json};

use super::super::pod::{is_active, is_ready};
use super::super::world::World;

fn ordinal(set: &str, pod: &Value) -> Option<i64> {
    pod["metadata"]["name"]
        .as_str()?
        .strip_prefix(set)?
        .strip_prefix('-')?
        .parse()
        .ok()
}

/// Reconciles the queued objects.
pub(super) fn run(w: &mut World, keys: Vec<super::dirty::Key>) {
    for key in keys {
        let Some(s) = super::get_key(w, "apps", "statefulsets", &key) else {
            continue;
        };
        if !s["metadata"]["deletionTimestamp"].is_string() {
            reconcile(w, &s);
        }
    }
}

fn reconcile(w: &mut World, s: &Value) {
    let ns = s["metadata"]["namespace"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let name = s["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let want = s["spec"]["replicas"].as_i64().unwrap_or(1).max(0);
    let parallel = s["spec"]["podManagementPolicy"] == "Parallel";
    let revision = format!("{name}-{}", super::template_hash(&s["spec"]["template"]));
    let mut pods = super::owned(w, "", "pods", s);
    pods.sort_by_key(|p| ordinal(&name, p).unwrap_or(i64::MAX));
    let terminating = pods.iter().any(|p| !is_active(p));
    let by_ordinal = |i: i64| pods.iter().find(|p| ordinal(&name, p) == Some(i));
    // Create missing pods.
    for i in 0..want {
        match by_ordinal(i) {
            Some(p) if !parallel && !is_ready(p) => break,
            Some(_) => {}
            None => {
                if !parallel && terminating {
                    break;
                }
                let pod_name = format!("{name}-{i}");
                let mut pod = super::pod_from_template(
                    &s["spec"]["template"],
                    s,
                    &[
                        ("statefulset.kubernetes.io/pod-name", pod_name.clone()),
                        ("controller-revision-hash", revision.clone()),
                        ("apps.kubernetes.io/pod-index", i.to_string()),
                    ],
                );
                pod["metadata"]["name"] = json!(pod_name);
                pod["spec"]["hostname"] = json!(pod_name);
                super::create(w, "", "pods", &ns, pod);
                if !parallel {
                    break;
                }
            }
        }
    }
    // Scale down from the top.
    let extra: Vec<&Value> = pods
        .iter()
        .filter(|p| ordinal(&name, p).is_some_and(|o| o >= want) && is_active(p))
        .collect();
    if let Some(top) = extra.last() {
        if parallel {
            for p in &extra {
                super::delete(w, "", "pods", p);
            }
        } else if !terminating {
            super::delete(w, "", "pods", top);
        }
    }
    // Rolling update from the top, one pod at a time, when all are Ready.
    let current: Vec<&Value> = pods
        .iter()
        .filter(|p| ordinal(&name, p).is_some_and(|o| o < want))
        .collect();
    let rolling = s["spec"]["updateStrategy"]["type"] != "OnDelete";
    let all_ready =
        current.len() as i64 == want && current.iter().all(|p| is_ready(p) && is_active(p));
    if rolling && all_ready && !terminating {
        let partition = s["spec"]["updateStrategy"]["rollingUpdate"]["partition"]
            .as_i64()
            .unwrap_or(0);
        if let Some(stale) = current.iter().rev().find(|p| {
            p["metadata"]["labels"]["controller-revision-hash"] != revision.as_str()
                && ordinal(&name, p).unwrap_or(0) >= partition
        }) {
            super::delete(w, "", "pods", stale);
        }
    }
    let pods = super::owned(w, "", "pods", s);
    let active: Vec<&Value> = pods.iter().filter(|p| is_active(p)).collect();
    let ready = active.iter().filter(|p| is_ready(p)).count();
    let updated = active
        .iter()
        .filter(|p| p["metadata"]["labels"]["controller-revision-hash"] == revision.as_str())
        .count();
    let mut out = s.clone();
    let current_revision = if updated == active.len() && active.len() as i64 == want {
        revision.clone()
    } else {
        s["status"]["currentRevision"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| revision.clone())
    };
    out["status"] = json!({
        "observedGeneration": s["metadata"]["generation"],
        "replicas": active.len(),
        "readyReplicas": ready,
        "availableReplicas": ready,
        "currentReplicas": if current_revision == revision { updated } else { active.len() - updated },
        "updatedReplicas": updated,
        "currentRevision": current_revision,
        "updateRevision": revision,
        "collisionCount": 0,
    });
    super::put_status(w, "apps", "statefulsets", out);
}
