//! Deployments: one ReplicaSet per `pod-template-hash`; a template change rolls the pods over
//! within `maxSurge`/`maxUnavailable` (or `Recreate`).

use serde_json::{Value, json};

use super::super::world::World;

const REVISION: &str = "deployment.kubernetes.io/revision";

fn replicas(v: &Value) -> i64 {
    v["spec"]["replicas"].as_i64().unwrap_or(0)
}

fn ready(v: &Value) -> i64 {
    v["status"]["readyReplicas"].as_i64().unwrap_or(0)
}

/// Reconciles the queued Deployments.
pub(super) fn run(w: &mut World, keys: Vec<super::dirty::Key>) {
    for key in keys {
        let Some(d) = super::get_key(w, "apps", "deployments", &key) else {
            continue;
        };
        if d["metadata"]["deletionTimestamp"].is_string() {
            continue;
        }
        reconcile(w, &d);
    }
}

fn reconcile(w: &mut World, d: &Value) {
    let ns = d["metadata"]["namespace"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let name = d["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let desired = replicas(d);
    let mut template = d["spec"]["template"].clone();
    if let Some(a) = template["metadata"]["annotations"].as_object_mut() {
        a.remove(REVISION);
    }
    let hash = template_hash_of(&template);
    let rss = super::owned(w, "apps", "replicasets", d);
    let max_rev = rss
        .iter()
        .filter_map(|r| {
            r["metadata"]["annotations"][REVISION]
                .as_str()?
                .parse::<i64>()
                .ok()
        })
        .max()
        .unwrap_or(0);
    let new_rs = match rss
        .iter()
        .find(|r| r["metadata"]["labels"]["pod-template-hash"] == hash.as_str())
    {
        Some(r) => r.clone(),
        None => {
            let mut t = template.clone();
            t["metadata"]["labels"]["pod-template-hash"] = json!(hash);
            let mut selector = d["spec"]["selector"].clone();
            selector["matchLabels"]["pod-template-hash"] = json!(hash);
            let mut labels = t["metadata"]["labels"].clone();
            if !labels.is_object() {
                labels = json!({});
            }
            let old_total: i64 = rss.iter().map(replicas).sum();
            let recreate = d["spec"]["strategy"]["type"] == "Recreate";
            let surge = super::int_or_percent(
                &d["spec"]["strategy"]["rollingUpdate"]["maxSurge"],
                desired,
                true,
                1,
            );
            let start = if rss.is_empty() {
                desired
            } else if recreate {
                0
            } else {
                (desired + surge - old_total).clamp(0, desired)
            };
            let rs = json!({
                "apiVersion": "apps/v1", "kind": "ReplicaSet",
                "metadata": {"name": format!("{name}-{hash}"), "labels": labels, "annotations": {REVISION: (max_rev + 1).to_string(), "deployment.kubernetes.io/desired-replicas": desired.to_string()}, "ownerReferences": [super::owner_ref(d)]},
                "spec": {"replicas": start, "selector": selector, "template": t},
            });
            match super::create(w, "apps", "replicasets", &ns, rs) {
                Some(r) => r,
                None => return,
            }
        }
    };
    let new_name = new_rs["metadata"]["name"].clone();
    let olds: Vec<Value> = super::owned(w, "apps", "replicasets", d)
        .into_iter()
        .filter(|r| r["metadata"]["name"] != new_name)
        .collect();
    let recreate = d["spec"]["strategy"]["type"] == "Recreate";
    let surge = super::int_or_percent(
        &d["spec"]["strategy"]["rollingUpdate"]["maxSurge"],
        desired,
        true,
        1,
    );
    let unavailable = super::int_or_percent(
        &d["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"],
        desired,
        false,
        0,
    );
    let (surge, unavailable) = if surge == 0 && unavailable == 0 {
        (1, 0)
    } else {
        (surge, unavailable)
    };
    let old_total: i64 = olds.iter().map(replicas).sum();
    let mut new_target = replicas(&new_rs);
    if recreate {
        for o in &olds {
            scale(w, o, 0);
        }
        // As kube-apiserver's deployment controller (oldPodsRunning): the new pods wait until
        // no old pod is left that has not finished, terminating ones included.
        let old_pods_running = olds.iter().any(|o| {
            o["status"]["replicas"].as_i64().unwrap_or(0) > 0
                || super::owned(w, "", "pods", o)
                    .iter()
                    .any(|p| !matches!(p["status"]["phase"].as_str(), Some("Succeeded" | "Failed")))
        });
        if !old_pods_running {
            new_target = desired;
        }
    } else if olds.is_empty() || new_target > desired {
        new_target = desired;
    } else if new_target < desired {
        new_target = new_target.max((desired + surge - old_total).min(desired));
    }
    scale(w, &new_rs, new_target);
    if !recreate && !olds.is_empty() {
        // Scale old sets down as far as availability allows.
        let total_ready: i64 = ready(&new_rs) + olds.iter().map(ready).sum::<i64>();
        let mut can_remove = (total_ready - (desired - unavailable)).max(0);
        for o in &olds {
            let r = replicas(o);
            if r == 0 || can_remove == 0 {
                continue;
            }
            let cut = r.min(can_remove);
            can_remove -= cut;
            scale(w, o, r - cut);
        }
    }
    status(w, d, &ns);
}

fn template_hash_of(t: &Value) -> String {
    super::template_hash(t)
}

fn scale(w: &mut World, rs: &Value, n: i64) {
    if replicas(rs) == n {
        return;
    }
    let mut rs = rs.clone();
    rs["spec"]["replicas"] = json!(n);
    super::put_main(w, "apps", "replicasets", rs);
}

fn status(w: &mut World, d: &Value, _ns: &str) {
    let rss = super::owned(w, "apps", "replicasets", d);
    let mut template = d["spec"]["template"].clone();
    if let Some(a) = template["metadata"]["annotations"].as_object_mut() {
        a.remove(REVISION);
    }
    let hash = template_hash_of(&template);
    let desired = replicas(d);
    let new_rs = rss
        .iter()
        .find(|r| r["metadata"]["labels"]["pod-template-hash"] == hash.as_str());
    let total: i64 = rss
        .iter()
        .map(|r| r["status"]["replicas"].as_i64().unwrap_or(0))
        .sum();
    let ready_total: i64 = rss.iter().map(ready).sum();
    let updated = new_rs
        .map(|r| r["status"]["replicas"].as_i64().unwrap_or(0))
        .unwrap_or(0);
    let new_ready = new_rs.map(ready).unwrap_or(0);
    let unavailable = super::int_or_percent(
        &d["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"],
        desired,
        false,
        0,
    );
    let mut out = d.clone();
    let revision = new_rs
        .and_then(|r| r["metadata"]["annotations"][REVISION].as_str())
        .map(str::to_string);
    out["status"]["observedGeneration"] = d["metadata"]["generation"].clone();
    out["status"]["replicas"] = json!(total);
    out["status"]["updatedReplicas"] = json!(updated);
    out["status"]["readyReplicas"] = json!(ready_total);
    out["status"]["availableReplicas"] = json!(ready_total);
    out["status"]["unavailableReplicas"] = json!((total - ready_total).max(0));
    if ready_total >= desired - unavailable {
        super::set_condition(
            &mut out,
            "Available",
            "True",
            "MinimumReplicasAvailable",
            "Deployment has minimum availability.",
        );
    } else {
        super::set_condition(
            &mut out,
            "Available",
            "False",
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.",
        );
    }
    let rs_name = new_rs
        .and_then(|r| r["metadata"]["name"].as_str())
        .unwrap_or_default()
        .to_string();
    if updated == desired && new_ready == desired && total == desired {
        super::set_condition(
            &mut out,
            "Progressing",
            "True",
            "NewReplicaSetAvailable",
            &format!("ReplicaSet \"{rs_name}\" has successfully progressed."),
        );
    } else {
        super::set_condition(
            &mut out,
            "Progressing",
            "True",
            "ReplicaSetUpdated",
            &format!("ReplicaSet \"{rs_name}\" is progressing."),
        );
    }
    put_revision(w, d, revision);
    super::put_status(w, "apps", "deployments", out);
}

fn put_revision(w: &mut World, d: &Value, revision: Option<String>) {
    let Some(rev) = revision else { return };
    if d["metadata"]["annotations"][REVISION].as_str() == Some(rev.as_str()) {
        return;
    }
    let Some(mut cur) = w.get(
        "apps",
        "deployments",
        d["metadata"]["namespace"].as_str().unwrap_or_default(),
        d["metadata"]["name"].as_str().unwrap_or_default(),
    ) else {
        return;
    };
    cur["metadata"]["annotations"][REVISION] = json!(rev);
    super::put_main(w, "apps", "deployments", cur);
}
