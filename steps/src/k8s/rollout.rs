//! Conditions on workloads, in kube's `conditions` voice: [`replicas_observed`] (a scale
//! has taken effect) and [`rollout_complete`] (every pod runs the current template and is
//! ready), judged from an object's JSON so that they work for any kind with the usual
//! status fields.

use kube::api::DynamicObject;
use serde_json::Value;

use super::watch::Verdict;

fn int(o: &Value, path: &[&str]) -> i64 {
    let mut cur = o;
    for p in path {
        match cur.get(p) {
            Some(v) => cur = v,
            None => return 0,
        }
    }
    cur.as_i64().unwrap_or(0)
}

fn observed(o: &Value) -> bool {
    let generation = int(o, &["metadata", "generation"]);
    generation == 0 || int(o, &["status", "observedGeneration"]) >= generation
}

fn json(o: &DynamicObject) -> Value {
    serde_json::to_value(o).unwrap_or_default()
}

/// The controller has seen the change and runs exactly `want` replicas, all ready.
pub(crate) fn replicas_observed(want: i64) -> impl Fn(&[&DynamicObject]) -> Verdict {
    move |objs| {
        let Some(o) = objs.first().map(|o| json(o)) else {
            return Verdict::waiting("waiting for the object to exist");
        };
        let replicas = int(&o, &["status", "replicas"]);
        let ready = int(&o, &["status", "readyReplicas"]);
        let status = format!("{replicas} replicas, {ready} ready (want {want})");
        if observed(&o) && replicas == want && ready == want {
            Verdict::done(status)
        } else {
            Verdict::waiting(status)
        }
    }
}

/// Every replica runs the current template and is ready (Deployment, StatefulSet,
/// DaemonSet, ReplicationController).
pub(crate) fn rollout_complete() -> impl Fn(&[&DynamicObject]) -> Verdict {
    |objs| {
        let Some(obj) = objs.first() else {
            return Verdict::waiting("waiting for the object to exist");
        };
        let kind = obj.types.as_ref().map(|t| t.kind.as_str()).unwrap_or("");
        let o = json(obj);
        let (done, status) = match kind {
            "DaemonSet" => {
                let desired = int(&o, &["status", "desiredNumberScheduled"]);
                let updated = int(&o, &["status", "updatedNumberScheduled"]);
                let ready = int(&o, &["status", "numberReady"]);
                (
                    updated == desired && ready == desired,
                    format!("{updated}/{desired} pods updated, {ready} ready"),
                )
            }
            "StatefulSet" => {
                let want = int(&o, &["spec", "replicas"]);
                let updated = int(&o, &["status", "updatedReplicas"]);
                let ready = int(&o, &["status", "readyReplicas"]);
                let current = o["status"]["currentRevision"].as_str().unwrap_or("");
                let update = o["status"]["updateRevision"].as_str().unwrap_or("");
                (
                    updated == want && ready == want && (update.is_empty() || current == update),
                    format!("{updated}/{want} replicas updated, {ready} ready"),
                )
            }
            _ => {
                let want = int(&o, &["spec", "replicas"]);
                let replicas = int(&o, &["status", "replicas"]);
                let updated = if kind == "Deployment" {
                    int(&o, &["status", "updatedReplicas"])
                } else {
                    replicas
                };
                let ready = int(&o, &["status", "readyReplicas"]);
                (
                    replicas == want && updated == want && ready == want,
                    format!("{updated}/{want} replicas updated, {replicas} running, {ready} ready"),
                )
            }
        };
        if observed(&o) && done {
            Verdict::done(status)
        } else {
            Verdict::waiting(status)
        }
    }
}
