//! The simulated Rok operator (`RokCluster`, group `rok.arrikto.com`): a new `spec.version`
//! scales the members to zero, runs an upgrade Job, then scales back and reports the version.

use serde_json::{Value, json};

use super::super::world::World;

/// The RokCluster CRD the lab installs for Rok scenarios.
pub const ROK_CRD: &str = r#"{
  "apiVersion": "apiextensions.k8s.io/v1",
  "kind": "CustomResourceDefinition",
  "metadata": {"name": "rokclusters.rok.arrikto.com"},
  "spec": {
    "group": "rok.arrikto.com",
    "scope": "Namespaced",
    "names": {"plural": "rokclusters", "singular": "rokcluster", "kind": "RokCluster", "listKind": "RokClusterList"},
    "versions": [{
      "name": "v1alpha1", "served": true, "storage": true,
      "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}},
      "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.members", "statusReplicasPath": ".status.totalMembers"}},
      "additionalPrinterColumns": [
        {"name": "Version", "type": "string", "jsonPath": ".status.version"},
        {"name": "Health", "type": "string", "jsonPath": ".status.health"},
        {"name": "Total Members", "type": "integer", "jsonPath": ".status.totalMembers"},
        {"name": "Ready Members", "type": "integer", "jsonPath": ".status.readyMembers"},
        {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}
      ]
    }]
  }
}"#;

/// Rok CSI pods log while operations are pending ([`World::rok_busy_until`]).
pub(super) fn emit_logs(w: &mut World) {
    let now = std::time::Instant::now();
    let Some(until) = w.rok_busy_until else {
        return;
    };
    if now >= until {
        w.rok_busy_until = None;
        return;
    }
    if w.rok_last_log
        .is_some_and(|t| now.duration_since(t) < w.rok_log_every)
    {
        return;
    }
    w.rok_last_log = Some(now);
    w.name_seq += 1;
    let task = w.name_seq;
    for (app, container) in [
        ("rok-csi-node", "csi-node"),
        ("rok-csi-controller", "csi-controller"),
    ] {
        let running: Vec<(String, String)> = w
            .store
            .iter(&World::gr("", "pods"), None)
            .filter(|p| p["metadata"]["labels"]["app"] == app && p["status"]["phase"] == "Running")
            .map(|p| {
                (
                    p["metadata"]["namespace"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    p["metadata"]["name"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                )
            })
            .collect();
        for (ns, name) in running {
            w.append_log(
                &ns,
                &name,
                container,
                &format!("INFO rok-csi: task {task}: operation pending on volume pvc-{task:08x}"),
            );
        }
    }
}

/// Whether the Rok operator runs: a `rok-operator` StatefulSet with a Ready pod (or no
/// operator installed at all, for bare RokCluster tests).
fn operator_running(w: &World) -> bool {
    match w.get("apps", "statefulsets", "rok-system", "rok-operator") {
        None => true,
        Some(s) => s["status"]["readyReplicas"].as_i64().unwrap_or(0) > 0,
    }
}

/// One pass.
pub(super) fn run(w: &mut World) {
    if w.rt("rok.arrikto.com", "rokclusters").is_none() || !operator_running(w) {
        return;
    }
    for rc in w.list("rok.arrikto.com", "rokclusters", None) {
        if !rc["metadata"]["deletionTimestamp"].is_string() {
            reconcile(w, &rc);
        }
    }
}

fn reconcile(w: &mut World, rc: &Value) {
    let ns = rc["metadata"]["namespace"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let name = rc["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let want_version = rc["spec"]["version"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let members = rc["spec"]["members"].as_i64().unwrap_or(1);
    let have_version = rc["status"]["version"].as_str().map(str::to_string);
    let sts_name = name.clone();
    let sts = w.get("apps", "statefulsets", &ns, &sts_name);
    let mut out = rc.clone();
    let upgrading = have_version.as_deref().is_some_and(|v| v != want_version);
    let job_name = format!(
        "{name}-upgrade-{}",
        super::template_hash(&json!(want_version))
            .chars()
            .take(5)
            .collect::<String>()
    );
    let target = if upgrading { 0 } else { members };
    match &sts {
        None => {
            let sts = json!({
                "apiVersion": "apps/v1", "kind": "StatefulSet",
                "metadata": {"name": sts_name, "labels": {"app": "rok"}, "ownerReferences": [super::owner_ref(rc)]},
                "spec": {"replicas": target, "selector": {"matchLabels": {"app": "rok", "rok-cluster": name}}, "serviceName": name,
                    "template": {"metadata": {"labels": {"app": "rok", "rok-cluster": name}}, "spec": {"containers": [{"name": "rok", "image": rc["spec"]["images"]["rok"].as_str().unwrap_or("gcr.io/arrikto-deploy/roke")}]}}},
            });
            super::create(w, "apps", "statefulsets", &ns, sts);
        }
        Some(s) if s["spec"]["replicas"].as_i64() != Some(target) => {
            let mut s = s.clone();
            s["spec"]["replicas"] = json!(target);
            super::put_main(w, "apps", "statefulsets", s);
        }
        Some(_) => {}
    }
    let sts = w.get("apps", "statefulsets", &ns, &sts_name);
    let total = sts
        .as_ref()
        .and_then(|s| s["status"]["replicas"].as_i64())
        .unwrap_or(0);
    let ready = sts
        .as_ref()
        .and_then(|s| s["status"]["readyReplicas"].as_i64())
        .unwrap_or(0);
    let mut version = have_version.clone().unwrap_or_else(|| want_version.clone());
    let phase;
    if upgrading {
        if total == 0 {
            match w.get("batch", "jobs", &ns, &job_name) {
                None => {
                    let job = json!({
                        "apiVersion": "batch/v1", "kind": "Job",
                        "metadata": {"name": job_name, "labels": {"app": "rok-upgrade"}, "ownerReferences": [super::owner_ref(rc)]},
                        "spec": {"template": {"metadata": {"labels": {"app": "rok-upgrade"}}, "spec": {"restartPolicy": "Never", "containers": [{"name": "upgrade", "image": "gcr.io/arrikto-deploy/rok-upgrade"}]}}},
                    });
                    super::create(w, "batch", "jobs", &ns, job);
                    phase = "Upgrading";
                }
                Some(j)
                    if j["status"]["conditions"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|c| c["type"] == "Complete" && c["status"] == "True") =>
                {
                    version = want_version.clone();
                    phase = "Upgrading";
                }
                Some(j)
                    if j["status"]["conditions"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|c| c["type"] == "Failed" && c["status"] == "True") =>
                {
                    phase = "Failed";
                }
                Some(_) => phase = "Upgrading",
            }
        } else {
            phase = "Upgrading";
        }
    } else {
        phase = if ready == members {
            "Running"
        } else {
            "Scaling"
        };
    }
    out["status"]["version"] = json!(version);
    out["status"]["health"] = json!(if phase == "Running" {
        "OK"
    } else if phase == "Failed" {
        "ERROR"
    } else {
        "WARNING"
    });
    out["status"]["phase"] = json!(phase);
    out["status"]["totalMembers"] = json!(total);
    out["status"]["readyMembers"] = json!(ready);
    out["status"]["observedGeneration"] = rc["metadata"]["generation"].clone();
    super::put_status(w, "rok.arrikto.com", "rokclusters", out);
}
