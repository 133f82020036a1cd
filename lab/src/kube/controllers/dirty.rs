//! What each controller has to look at: the objects whose changes concern it (routed from the
//! store's change feed), and wake-ups at a given time (delays). Controllers reconcile only these,
//! never the whole store.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::super::store::{Event, EventType, ObjRef, owner_uids};
use super::super::world::{Delays, PodBehaviour, World};

/// A controller with a queue of objects to reconcile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Ctl {
    /// The cordon taint follows `spec.unschedulable`.
    Node,
    /// Terminating namespaces are emptied.
    Namespace,
    /// Deployments.
    Deployment,
    /// ReplicaSets.
    ReplicaSet,
    /// ReplicationControllers.
    ReplicationController,
    /// StatefulSets.
    StatefulSet,
    /// DaemonSets.
    DaemonSet,
    /// Jobs.
    Job,
    /// Pods to bind.
    Scheduler,
    /// Bound pods.
    Kubelet,
    /// PodDisruptionBudgets.
    Pdb,
}

/// An object's (namespace, name).
pub(crate) type Key = (String, String);

/// The work queues of the controllers.
#[derive(Debug, Default)]
pub(crate) struct Dirty {
    queues: BTreeMap<Ctl, BTreeSet<Key>>,
    /// Owners whose dependents the garbage collector checks (deleted, being deleted, or whose
    /// dependents changed).
    pub(crate) gc_owners: BTreeSet<String>,
    /// Objects the garbage collector checks for owners that are gone.
    pub(crate) gc_dependents: BTreeSet<ObjRef>,
    /// Wake-ups: at that instant, the key goes back on that controller's queue.
    timers: BTreeMap<Instant, BTreeSet<(Ctl, Key)>>,
    /// The delays and behaviours the kubelet last saw: when a test changes them, every bound
    /// pod is looked at again.
    seen_delays: Option<(Delays, Vec<(String, PodBehaviour)>)>,
}

/// The controller that reconciles objects of a kind owning pods or ReplicaSets.
fn ctl_of_owner_kind(kind: &str) -> Option<Ctl> {
    Some(match kind {
        "Deployment" => Ctl::Deployment,
        "ReplicaSet" => Ctl::ReplicaSet,
        "ReplicationController" => Ctl::ReplicationController,
        "StatefulSet" => Ctl::StatefulSet,
        "DaemonSet" => Ctl::DaemonSet,
        "Job" => Ctl::Job,
        _ => return None,
    })
}

fn ctl_of_resource(group: &str, plural: &str) -> Option<Ctl> {
    Some(match (group, plural) {
        ("", "nodes") => Ctl::Node,
        ("", "namespaces") => Ctl::Namespace,
        ("apps", "deployments") => Ctl::Deployment,
        ("apps", "replicasets") => Ctl::ReplicaSet,
        ("", "replicationcontrollers") => Ctl::ReplicationController,
        ("apps", "statefulsets") => Ctl::StatefulSet,
        ("apps", "daemonsets") => Ctl::DaemonSet,
        ("batch", "jobs") => Ctl::Job,
        ("policy", "poddisruptionbudgets") => Ctl::Pdb,
        _ => return None,
    })
}

fn key_of(o: &Value) -> Key {
    (
        o["metadata"]["namespace"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        o["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    )
}

fn being_deleted(o: &Value) -> bool {
    o["metadata"]["deletionTimestamp"].is_string()
}

impl Dirty {
    /// Queues an object for a controller.
    pub(crate) fn mark(&mut self, ctl: Ctl, key: Key) {
        self.queues.entry(ctl).or_default().insert(key);
    }

    /// Takes up to `max` keys from a controller's queue, in (namespace, name) order; the rest
    /// stay queued for the next pass (so that no pass holds the world for long).
    pub(crate) fn take(&mut self, ctl: Ctl, max: usize) -> Vec<Key> {
        let Some(q) = self.queues.get_mut(&ctl) else {
            return Vec::new();
        };
        let mut out = Vec::with_capacity(q.len().min(max));
        while out.len() < max {
            match q.pop_first() {
                Some(k) => out.push(k),
                None => break,
            }
        }
        out
    }

    /// Whether any controller has queued work (timers aside).
    pub(crate) fn pending(&self) -> bool {
        self.queues.values().any(|q| !q.is_empty())
            || !self.gc_owners.is_empty()
            || !self.gc_dependents.is_empty()
    }

    /// Brings `key` back to `ctl` at `at`.
    pub(crate) fn wake_at(&mut self, at: Instant, ctl: Ctl, key: Key) {
        self.timers.entry(at).or_default().insert((ctl, key));
    }

    /// When the next wake-up is due.
    pub(crate) fn next_timer(&self) -> Option<Instant> {
        self.timers.keys().next().copied()
    }

    /// Queues the keys whose wake-up is due.
    pub(crate) fn fire_timers(&mut self, now: Instant) {
        while let Some(entry) = self.timers.first_entry() {
            if *entry.key() > now {
                break;
            }
            for (ctl, key) in entry.remove() {
                self.mark(ctl, key);
            }
        }
    }
}

/// Routes one change to the controllers it concerns.
fn route(w: &mut World, e: &Event) {
    let (group, plural) = (e.gr.0.as_str(), e.gr.1.as_str());
    let obj = &*e.object;
    let key = key_of(obj);
    let deleted = e.kind == EventType::Deleted;
    let d = &mut w.dirty;
    if let Some(ctl) = ctl_of_resource(group, plural) {
        d.mark(ctl, key.clone());
    }
    match (group, plural) {
        ("", "nodes") => {
            // A node that changes may take pods that could not be scheduled, and DaemonSets
            // follow the nodes.
            for p in w.store.pods_on("") {
                w.dirty.mark(Ctl::Scheduler, p.clone());
            }
            for ds in w.store.iter(&World::gr("apps", "daemonsets"), None) {
                w.dirty.mark(Ctl::DaemonSet, key_of(ds));
            }
        }
        ("", "pods") => {
            if !deleted {
                let ctl = if obj["spec"]["nodeName"].is_string() {
                    Ctl::Kubelet
                } else {
                    Ctl::Scheduler
                };
                d.mark(ctl, key.clone());
            }
            for pdb in w
                .store
                .iter(&World::gr("policy", "poddisruptionbudgets"), Some(&key.0))
            {
                w.dirty.mark(Ctl::Pdb, key_of(pdb));
            }
        }
        _ => {}
    }
    // The controller owning the object looks again (old and new owner).
    for o in std::iter::once(obj).chain(e.before.as_deref()) {
        if let Some(owner) = controller_owner(o)
            && let Some(ctl) = ctl_of_owner_kind(owner.0)
        {
            w.dirty.mark(ctl, (key.0.clone(), owner.1.to_string()));
        }
    }
    // A Deployment that recreates its pods waits until its old ReplicaSets' pods are gone.
    if deleted
        && plural == "pods"
        && group.is_empty()
        && let Some(("ReplicaSet", rs)) = controller_owner(obj)
        && let Some(rs) = w.store.get(&World::gr("apps", "replicasets"), &key.0, rs)
        && let Some(("Deployment", dep)) = controller_owner(rs)
        && let Some(ctl) = ctl_of_owner_kind("Deployment")
    {
        let dep = dep.to_string();
        w.dirty.mark(ctl, (key.0.clone(), dep));
    }
    // A terminating namespace is emptied as its objects go.
    if !key.0.is_empty()
        && w.store
            .get(&World::gr("", "namespaces"), "", &key.0)
            .is_some_and(being_deleted)
    {
        w.dirty.mark(Ctl::Namespace, (String::new(), key.0.clone()));
    }
    route_gc(w, e, deleted);
}

/// The garbage collector looks at the dependents of objects that go or are being deleted, at
/// owners whose dependents change (a foreground deletion finishes when the last one goes), and at
/// objects whose ownerReferences change (their owners may be gone already).
fn route_gc(w: &mut World, e: &Event, deleted: bool) {
    let obj = &*e.object;
    let d = &mut w.dirty;
    if (deleted || being_deleted(obj))
        && let Some(uid) = obj["metadata"]["uid"].as_str()
    {
        d.gc_owners.insert(uid.to_string());
    }
    let before_owners: Vec<&str> = e
        .before
        .as_deref()
        .map(|b| owner_uids(b).collect())
        .unwrap_or_default();
    let owners: Vec<&str> = owner_uids(obj).collect();
    if deleted || before_owners != owners {
        for uid in before_owners.iter().chain(owners.iter()) {
            d.gc_owners.insert((*uid).to_string());
        }
        if !deleted && !owners.is_empty() {
            d.gc_dependents.insert(ObjRef {
                gr: e.gr.clone(),
                ns: key_of(obj).0,
                name: key_of(obj).1,
            });
        }
    }
}

/// The (kind, name) of an object's controller ownerReference.
fn controller_owner(o: &Value) -> Option<(&str, &str)> {
    let r = o["metadata"]["ownerReferences"]
        .as_array()?
        .iter()
        .find(|r| r["controller"] == true)?;
    Some((r["kind"].as_str()?, r["name"].as_str()?))
}

/// Routes every change since the last call; when changes were lost, queues everything.
pub(crate) fn route_changes(w: &mut World) {
    match w.store.take_changes() {
        Some(changes) => {
            for e in changes {
                route(w, &e);
            }
        }
        None => mark_everything(w),
    }
    let now = (w.delays.clone(), w.behaviours.clone());
    if w.dirty.seen_delays.as_ref() != Some(&now) {
        w.dirty.seen_delays = Some(now);
        mark_bound_pods(w);
    }
}

/// Queues every bound pod for the kubelet (delays or behaviours changed).
pub(crate) fn mark_bound_pods(w: &mut World) {
    let pods: Vec<Key> = w
        .store
        .iter(&World::gr("", "pods"), None)
        .filter(|p| p["spec"]["nodeName"].is_string())
        .map(|p| key_of(p))
        .collect();
    for k in pods {
        w.dirty.mark(Ctl::Kubelet, k);
    }
}

/// Queues every object of every controller (the change feed was lost).
pub(crate) fn mark_everything(w: &mut World) {
    let mut marks: Vec<(Ctl, Key)> = Vec::new();
    for (group, plural) in [
        ("", "nodes"),
        ("", "namespaces"),
        ("apps", "deployments"),
        ("apps", "replicasets"),
        ("", "replicationcontrollers"),
        ("apps", "statefulsets"),
        ("apps", "daemonsets"),
        ("batch", "jobs"),
        ("policy", "poddisruptionbudgets"),
    ] {
        if let Some(ctl) = ctl_of_resource(group, plural) {
            marks.extend(
                w.store
                    .iter(&World::gr(group, plural), None)
                    .map(|o| (ctl, key_of(o))),
            );
        }
    }
    for p in w.store.iter(&World::gr("", "pods"), None) {
        let ctl = if p["spec"]["nodeName"].is_string() {
            Ctl::Kubelet
        } else {
            Ctl::Scheduler
        };
        marks.push((ctl, key_of(p)));
    }
    let mut gc_owners = BTreeSet::new();
    let mut gc_dependents = BTreeSet::new();
    for t in w.kinds.types() {
        let g = (t.group.clone(), t.plural.clone());
        for o in w.store.iter(&g, None) {
            if being_deleted(o)
                && let Some(uid) = o["metadata"]["uid"].as_str()
            {
                gc_owners.insert(uid.to_string());
            }
            if owner_uids(o).next().is_some() {
                let (ns, name) = key_of(o);
                gc_dependents.insert(ObjRef {
                    gr: g.clone(),
                    ns,
                    name,
                });
            }
        }
    }
    for (ctl, k) in marks {
        w.dirty.mark(ctl, k);
    }
    w.dirty.gc_owners.extend(gc_owners);
    w.dirty.gc_dependents.extend(gc_dependents);
}

/// A pod key and when the kubelet should look at it again.
pub(crate) fn wake_kubelet(w: &mut World, key: &Key, since: Instant, after: Duration) {
    w.dirty.wake_at(since + after, Ctl::Kubelet, key.clone());
}
