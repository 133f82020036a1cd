//! The simulated controllers. Each reconciles the whole world after every change (and on a
//! short tick, for delays), deterministically, through the same write paths the API uses.

mod daemonset;
mod deployment;
mod gc;
mod job;
mod kubelet;
mod namespace;
mod node;
mod pdb;
mod replicaset;
mod rok;
mod scheduler;
mod statefulset;

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use super::ops::{DeleteOpts, Part, WriteOpts};
use super::server::Shared;
use super::world::World;

pub use rok::ROK_CRD;

/// One pass of every controller.
pub fn reconcile(w: &mut World) {
    node::run(w);
    namespace::run(w);
    gc::run(w);
    deployment::run(w);
    replicaset::run(w, "apps", "replicasets");
    replicaset::run(w, "", "replicationcontrollers");
    statefulset::run(w);
    daemonset::run(w);
    job::run(w);
    rok::run(w);
    rok::emit_logs(w);
    scheduler::run(w);
    kubelet::run(w);
    pdb::run(w);
}

/// Runs the controllers until the world is dropped.
pub async fn run(sh: Arc<Shared>) {
    let mut changed = sh.lock().store.subscribe();
    loop {
        changed.mark_unchanged();
        // Settle: run passes while they change something (bounded), releasing the lock
        // between passes so API requests are not starved.
        for _ in 0..20 {
            let progressed = {
                let mut w = sh.lock();
                if w.controllers_paused {
                    false
                } else {
                    let before = w.store.rv();
                    reconcile(&mut w);
                    w.store.rv() != before
                }
            };
            if !progressed {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        tokio::select! {
            r = changed.changed() => if r.is_err() { return },
            _ = tokio::time::sleep(Duration::from_millis(25)) => {}
        }
        // Batch bursts of API writes into one pass (a pass scans every object).
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Writes an object's status if it changed.
pub(crate) fn put_status(w: &mut World, group: &str, plural: &str, obj: Value) {
    let Some(rt) = w.rt(group, plural) else {
        return;
    };
    let ns = obj["metadata"]["namespace"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let name = obj["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let mut obj = obj;
    if let Some(m) = obj["metadata"].as_object_mut() {
        m.remove("resourceVersion");
    }
    let _ = w.update(&rt, &ns, &name, obj, Part::Status, &WriteOpts::default());
}

/// Writes an object (main part) if it changed.
pub(crate) fn put_main(w: &mut World, group: &str, plural: &str, obj: Value) {
    let Some(rt) = w.rt(group, plural) else {
        return;
    };
    let ns = obj["metadata"]["namespace"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let name = obj["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let mut obj = obj;
    if let Some(m) = obj["metadata"].as_object_mut() {
        m.remove("resourceVersion");
    }
    let _ = w.update(&rt, &ns, &name, obj, Part::Main, &WriteOpts::default());
}

/// Creates an object as a controller.
pub(crate) fn create(
    w: &mut World,
    group: &str,
    plural: &str,
    ns: &str,
    obj: Value,
) -> Option<Value> {
    let rt = w.rt(group, plural)?;
    w.create(&rt, ns, obj, &WriteOpts::default()).ok()
}

/// Deletes an object as a controller (background propagation, default grace).
pub(crate) fn delete(w: &mut World, group: &str, plural: &str, obj: &Value) {
    let Some(rt) = w.rt(group, plural) else {
        return;
    };
    let ns = obj["metadata"]["namespace"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let name = obj["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let _ = w.delete(&rt, &ns, &name, &DeleteOpts::default());
}

/// A controller ownerReference to `owner`.
pub(crate) fn owner_ref(owner: &Value) -> Value {
    json!({
        "apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"], "controller": true, "blockOwnerDeletion": true,
    })
}

/// The objects of a resource controlled by `owner` (by uid).
pub(crate) fn owned(w: &World, group: &str, plural: &str, owner: &Value) -> Vec<Value> {
    let uid = owner["metadata"]["uid"].as_str().unwrap_or_default();
    let ns = owner["metadata"]["namespace"].as_str();
    w.store
        .list(&World::gr(group, plural), ns)
        .into_iter()
        .filter(|o| super::pod::controller_uid(o) == Some(uid))
        .cloned()
        .collect()
}

/// A stable hash of a pod template, in the digits kube uses for `pod-template-hash`.
pub(crate) fn template_hash(template: &Value) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in template.to_string().bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100_0000_01b3);
    }
    const DIGITS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    (0..10)
        .map(|i| DIGITS[((h >> (i * 6)) % DIGITS.len() as u64) as usize] as char)
        .collect()
}

/// A pod built from a template.
pub(crate) fn pod_from_template(
    template: &Value,
    owner: &Value,
    extra_labels: &[(&str, String)],
) -> Value {
    let mut meta = template["metadata"].clone();
    if !meta.is_object() {
        meta = json!({});
    }
    for (k, v) in extra_labels {
        meta["labels"][*k] = json!(v);
    }
    meta["ownerReferences"] = json!([owner_ref(owner)]);
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": template["spec"].clone()})
}

/// Sets a condition, keeping `lastTransitionTime` when the status did not change.
pub(crate) fn set_condition(obj: &mut Value, ty: &str, status: &str, reason: &str, message: &str) {
    if !obj["status"]["conditions"].is_array() {
        obj["status"]["conditions"] = json!([]);
    }
    let now = super::store::now_rfc3339();
    let Some(list) = obj["status"]["conditions"].as_array_mut() else {
        return;
    };
    match list.iter_mut().find(|c| c["type"] == ty) {
        Some(c) => {
            if c["status"] != status {
                c["lastTransitionTime"] = json!(now);
            }
            c["status"] = json!(status);
            c["reason"] = json!(reason);
            c["message"] = json!(message);
        }
        None => list.push(json!({"type": ty, "status": status, "reason": reason, "message": message, "lastTransitionTime": now, "lastUpdateTime": now})),
    }
}

/// Reads an int-or-percent against a total; `up` rounds up.
pub(crate) fn int_or_percent(v: &Value, total: i64, up: bool, default: i64) -> i64 {
    match v {
        Value::Number(n) => n.as_i64().unwrap_or(default),
        Value::String(s) => match s.strip_suffix('%').and_then(|p| p.parse::<i64>().ok()) {
            Some(p) if up => (p * total + 99) / 100,
            Some(p) => p * total / 100,
            None => s.parse().unwrap_or(default),
        },
        _ => default,
    }
}
