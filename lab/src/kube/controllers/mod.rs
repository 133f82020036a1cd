//! The simulated controllers, deterministic, driven by changes: the store's change feed is
//! routed into per-controller queues ([`dirty`]), and each controller reconciles only the objects
//! queued for it (a bounded batch per pass, so that no pass holds the world for long), through
//! the same write paths the API uses. Delays are wake-ups at a given time, not rescans.

mod daemonset;
mod deployment;
mod dirty;
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
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::ops::{DeleteOpts, Part, WriteOpts};
use super::server::Shared;
use super::store::ObjRef;
use super::world::World;

pub(crate) use dirty::Dirty;
use dirty::{Ctl, route_changes};
pub use rok::ROK_CRD;

/// Objects one controller reconciles per pass at most; the rest wait for the next pass.
const BATCH: usize = 128;
/// Passes run back to back while they make progress, at most this many before the loop waits.
const MAX_PASSES: usize = 20;
/// The loop looks at time-driven work (Rok logs) at least this often.
const TICK: Duration = Duration::from_millis(25);
/// After a change wakes the loop, it waits this long so a burst of writes is handled in one pass.
const BATCH_WINDOW: Duration = Duration::from_millis(10);

/// Runs one controller on the next batch of its queue, after routing the changes so far (so that
/// what an earlier controller wrote in this pass is seen by the later ones, as before).
fn step(w: &mut World, ctl: Ctl, run: impl FnOnce(&mut World, Vec<dirty::Key>)) {
    route_changes(w);
    let keys = w.dirty.take(ctl, BATCH);
    if !keys.is_empty() {
        run(w, keys);
    }
}

/// One pass of every controller over what changed.
pub fn reconcile(w: &mut World) {
    route_changes(w);
    w.dirty.fire_timers(Instant::now());
    step(w, Ctl::Node, node::run);
    step(w, Ctl::Namespace, namespace::run);
    route_changes(w);
    gc::run(w);
    step(w, Ctl::Deployment, deployment::run);
    step(w, Ctl::ReplicaSet, |w, k| {
        replicaset::run(w, "apps", "replicasets", k)
    });
    step(w, Ctl::ReplicationController, |w, k| {
        replicaset::run(w, "", "replicationcontrollers", k)
    });
    step(w, Ctl::StatefulSet, statefulset::run);
    step(w, Ctl::DaemonSet, daemonset::run);
    step(w, Ctl::Job, job::run);
    route_changes(w);
    rok::run(w);
    rok::emit_logs(w);
    step(w, Ctl::Scheduler, scheduler::run);
    step(w, Ctl::Kubelet, kubelet::run);
    step(w, Ctl::Pdb, pdb::run);
}

/// Runs the controllers until the world is dropped.
pub async fn run(sh: Arc<Shared>) {
    let mut changed = sh.lock().store.subscribe();
    loop {
        changed.mark_unchanged();
        let mut next_timer = None;
        // Settle: run passes while they change something (bounded), releasing the lock
        // between passes so API requests are not starved.
        for _ in 0..MAX_PASSES {
            let progressed = {
                let mut w = sh.lock();
                if w.controllers_paused {
                    false
                } else {
                    let before = w.store.rv();
                    reconcile(&mut w);
                    next_timer = w.dirty.next_timer();
                    w.store.rv() != before || w.dirty.pending()
                }
            };
            if !progressed {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let wait = next_timer
            .map(|t| t.saturating_duration_since(Instant::now()))
            .unwrap_or(TICK)
            .min(TICK);
        tokio::select! {
            r = changed.changed() => {
                if r.is_err() { return }
                tokio::time::sleep(BATCH_WINDOW).await;
            }
            _ = tokio::time::sleep(wait) => {}
        }
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
    let _ = w.update_shared(&rt, &ns, &name, obj, Part::Status, &WriteOpts::default());
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
    let _ = w.update_shared(&rt, &ns, &name, obj, Part::Main, &WriteOpts::default());
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
    delete_with(w, group, plural, obj, DeleteOpts::default());
}

/// [`delete`] with options (the garbage collector deletes the dependents of an owner deleted
/// in the foreground in the foreground too, as kube-controller-manager does, so that the
/// owner goes only once its dependents' dependents are gone).
pub(crate) fn delete_with(w: &mut World, group: &str, plural: &str, obj: &Value, opts: DeleteOpts) {
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
    let _ = w.delete(&rt, &ns, &name, &opts);
}

/// A controller ownerReference to `owner`.
pub(crate) fn owner_ref(owner: &Value) -> Value {
    json!({
        "apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"], "controller": true, "blockOwnerDeletion": true,
    })
}

/// The objects of a resource controlled by `owner` (by uid), sorted by namespace and name.
pub(crate) fn owned(w: &World, group: &str, plural: &str, owner: &Value) -> Vec<Value> {
    let uid = owner["metadata"]["uid"].as_str().unwrap_or_default();
    let ns = owner["metadata"]["namespace"].as_str();
    w.store
        .dependents(uid)
        .filter(|r| r.gr.0 == group && r.gr.1 == plural && ns.is_none_or(|n| n == r.ns))
        .filter_map(|r: &ObjRef| w.store.get_ref(r))
        .filter(|o| super::pod::controller_uid(o) == Some(uid))
        .cloned()
        .collect()
}

/// Gets the object a queued key names.
pub(crate) fn get_key(w: &World, group: &str, plural: &str, key: &dirty::Key) -> Option<Value> {
    w.get(group, plural, &key.0, &key.1)
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
