//! The object store: JSON objects by resource, namespace and name, one global resourceVersion
//! counter, the indexes the controllers look things up by (uid, owner, pod by node), the event
//! log that watches replay, and the change feed that drives the controllers.
//!
//! Objects are kept behind `Arc`s: a LIST, a watch or an event shares them instead of copying.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::watch;

use super::kinds::ResourceType;

pub use super::events::{Event, EventLog, EventType, Gr};

/// Where an object lives in the store.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjRef {
    /// Its resource.
    pub gr: Gr,
    /// Its namespace ("" for cluster-scoped objects).
    pub ns: String,
    /// Its name.
    pub name: String,
}

/// Objects of one resource by namespace, then name (so listing one namespace is cheap and
/// everything comes out sorted by namespace and name).
type Resource = BTreeMap<String, Names>;

/// Objects of one namespace by name.
type Names = BTreeMap<String, Arc<Value>>;

/// How many changes the controllers may leave unread (while paused) before the feed is dropped
/// and they resynchronise from the whole store.
const MAX_PENDING_CHANGES: usize = 200_000;

/// The object store.
#[derive(Debug)]
pub struct Store {
    objects: HashMap<Gr, Resource>,
    rv: u64,
    uid_seq: u64,
    log: Arc<EventLog>,
    /// Changes the controllers have not read yet.
    changes: Vec<Arc<Event>>,
    /// Set when `changes` overflowed: the controllers must look at everything.
    changes_lost: bool,
    /// uid -> where the object is.
    by_uid: HashMap<String, ObjRef>,
    /// Owner uid -> objects with an ownerReference to it.
    dependents: HashMap<String, BTreeSet<ObjRef>>,
    /// Node name ("" for unbound) -> pods (namespace, name) bound to it.
    pods_by_node: BTreeMap<String, BTreeSet<(String, String)>>,
    /// Bumped on every removal and every write of an object marked for deletion.
    deletions: u64,
}

impl Default for Store {
    fn default() -> Self {
        Self::new()
    }
}

/// The current time as Kubernetes writes it in metadata (RFC 3339, seconds).
pub fn now_rfc3339() -> String {
    format!("{:.0}", jiff::Timestamp::now())
}

/// Key of a resource type in the store.
pub fn gr(rt: &ResourceType) -> Gr {
    (rt.group.clone(), rt.plural.clone())
}

fn is_pods(gr: &Gr) -> bool {
    gr.0.is_empty() && gr.1 == "pods"
}

fn str_at<'a>(o: &'a Value, a: &str, b: &str) -> &'a str {
    o[a][b].as_str().unwrap_or_default()
}

/// The uids an object's ownerReferences name.
pub fn owner_uids(o: &Value) -> impl Iterator<Item = &str> {
    o["metadata"]["ownerReferences"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["uid"].as_str())
}

impl Store {
    /// An empty store at resourceVersion 1.
    pub fn new() -> Self {
        Store {
            objects: HashMap::new(),
            rv: 1,
            uid_seq: 0,
            log: Arc::new(EventLog::new(1)),
            changes: Vec::new(),
            changes_lost: false,
            by_uid: HashMap::new(),
            dependents: HashMap::new(),
            pods_by_node: BTreeMap::new(),
            deletions: 0,
        }
    }

    /// The latest resourceVersion.
    pub fn rv(&self) -> u64 {
        self.rv
    }

    /// The event log (shared with the watch streams).
    pub fn log(&self) -> Arc<EventLog> {
        self.log.clone()
    }

    /// A receiver that is told each time the store changes.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.log.subscribe()
    }

    /// How many deletions (removals, or writes of objects being deleted) happened so far.
    pub fn deletions(&self) -> u64 {
        self.deletions
    }

    /// Drops all events up to now: watches from older versions get 410.
    pub fn compact(&mut self) {
        self.log.compact(self.rv);
    }

    /// A fresh uid.
    pub fn new_uid(&mut self) -> String {
        self.uid_seq += 1;
        let n = self.uid_seq;
        format!(
            "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
            0x6c61_6200u32 + (n >> 32) as u32,
            n & 0xffff,
            (n >> 16) & 0xfff,
            (n >> 28) & 0xfff,
            n
        )
    }

    /// Gets an object.
    pub fn get(&self, gr: &Gr, ns: &str, name: &str) -> Option<&Value> {
        self.get_arc(gr, ns, name).map(|a| &**a)
    }

    /// Gets an object, shared.
    pub fn get_arc(&self, gr: &Gr, ns: &str, name: &str) -> Option<&Arc<Value>> {
        self.objects.get(gr)?.get(ns)?.get(name)
    }

    /// Gets an object by where it is.
    pub fn get_ref(&self, r: &ObjRef) -> Option<&Value> {
        self.get(&r.gr, &r.ns, &r.name)
    }

    /// Objects of a resource, in one namespace or all (`None`), sorted by namespace and name.
    pub fn iter<'a>(
        &'a self,
        gr: &Gr,
        ns: Option<&str>,
    ) -> impl Iterator<Item = &'a Arc<Value>> + 'a {
        let res = self.objects.get(gr);
        let namespaces: Box<dyn Iterator<Item = &'a Names> + 'a> = match (res, ns) {
            (None, _) => Box::new(std::iter::empty()),
            (Some(r), None) => Box::new(r.values()),
            (Some(r), Some(n)) => Box::new(r.get(n).into_iter()),
        };
        namespaces.flat_map(|m| m.values())
    }

    /// Objects of a resource after the key `(ns, name)` (exclusive), sorted; for paging.
    pub fn iter_after<'a>(
        &'a self,
        gr: &Gr,
        ns: Option<&'a str>,
        after: Option<(&'a str, &'a str)>,
    ) -> Box<dyn Iterator<Item = &'a Arc<Value>> + 'a> {
        use std::ops::Bound::{Excluded, Included, Unbounded};
        let (Some(res), Some((after_ns, after_name))) = (self.objects.get(gr), after) else {
            return Box::new(self.iter(gr, ns));
        };
        let namespaces: Box<dyn Iterator<Item = (&'a String, &'a Names)>> = match ns {
            Some(n) => Box::new(res.get_key_value(n).into_iter()),
            None => Box::new(res.range::<str, _>((Included(after_ns), Unbounded))),
        };
        Box::new(namespaces.flat_map(move |(n, names)| {
            let names: Box<dyn Iterator<Item = &'a Arc<Value>>> = match n.as_str().cmp(after_ns) {
                std::cmp::Ordering::Less => Box::new(std::iter::empty()),
                std::cmp::Ordering::Equal => Box::new(
                    names
                        .range::<str, _>((Excluded(after_name), Unbounded))
                        .map(|(_, v)| v),
                ),
                std::cmp::Ordering::Greater => Box::new(names.values()),
            };
            names
        }))
    }

    /// Objects of a resource, in one namespace or all (`None`), sorted by namespace and name.
    pub fn list(&self, gr: &Gr, ns: Option<&str>) -> Vec<&Value> {
        self.iter(gr, ns).map(|a| &**a).collect()
    }

    /// Clones of the objects of a resource (for controllers that then write).
    pub fn list_owned(&self, gr: &Gr, ns: Option<&str>) -> Vec<Value> {
        self.iter(gr, ns).map(|a| (**a).clone()).collect()
    }

    /// How many objects a resource has.
    pub fn count(&self, gr: &Gr) -> usize {
        self.objects
            .get(gr)
            .map_or(0, |r| r.values().map(BTreeMap::len).sum())
    }

    /// Where the object with this uid is.
    pub fn by_uid(&self, uid: &str) -> Option<&ObjRef> {
        self.by_uid.get(uid)
    }

    /// Objects with an ownerReference to `uid`, sorted by resource, namespace and name.
    pub fn dependents(&self, uid: &str) -> impl Iterator<Item = &ObjRef> {
        self.dependents.get(uid).into_iter().flatten()
    }

    /// Whether any object has an ownerReference to `uid`.
    pub fn has_dependents(&self, uid: &str) -> bool {
        self.dependents.get(uid).is_some_and(|d| !d.is_empty())
    }

    /// Pods bound to `node` ("" for the unbound ones), as (namespace, name), sorted.
    pub fn pods_on(&self, node: &str) -> impl Iterator<Item = &(String, String)> {
        self.pods_by_node.get(node).into_iter().flatten()
    }

    /// How many pods are bound to `node`.
    pub fn pod_count_on(&self, node: &str) -> usize {
        self.pods_by_node.get(node).map_or(0, BTreeSet::len)
    }

    /// Takes the changes the controllers have not read yet; `None` when some were lost (the
    /// reader must then look at everything).
    pub fn take_changes(&mut self) -> Option<Vec<Arc<Event>>> {
        let changes = std::mem::take(&mut self.changes);
        if std::mem::take(&mut self.changes_lost) {
            return None;
        }
        Some(changes)
    }

    /// Whether changes are waiting for the controllers.
    pub fn has_changes(&self) -> bool {
        !self.changes.is_empty() || self.changes_lost
    }

    fn bump(&mut self) -> u64 {
        self.rv += 1;
        self.rv
    }

    fn unindex(&mut self, r: &ObjRef, o: &Value) {
        for uid in owner_uids(o) {
            if let Some(set) = self.dependents.get_mut(uid) {
                set.remove(r);
                if set.is_empty() {
                    self.dependents.remove(uid);
                }
            }
        }
        if is_pods(&r.gr) {
            let node = o["spec"]["nodeName"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            if let Some(set) = self.pods_by_node.get_mut(&node) {
                set.remove(&(r.ns.clone(), r.name.clone()));
                if set.is_empty() {
                    self.pods_by_node.remove(&node);
                }
            }
        }
    }

    fn index(&mut self, r: &ObjRef, o: &Value) {
        if let Some(uid) = o["metadata"]["uid"].as_str() {
            self.by_uid.insert(uid.to_string(), r.clone());
        }
        for uid in owner_uids(o) {
            self.dependents
                .entry(uid.to_string())
                .or_default()
                .insert(r.clone());
        }
        if is_pods(&r.gr) {
            let node = o["spec"]["nodeName"].as_str().unwrap_or_default();
            self.pods_by_node
                .entry(node.to_string())
                .or_default()
                .insert((r.ns.clone(), r.name.clone()));
        }
    }

    fn record(&mut self, event: Event) {
        let event = Arc::new(event);
        if !self.changes_lost {
            if self.changes.len() >= MAX_PENDING_CHANGES {
                self.changes.clear();
                self.changes_lost = true;
            } else {
                self.changes.push(event.clone());
            }
        }
        self.log.append(event);
    }

    /// Stores an object, new or changed, giving it the next resourceVersion. The caller has set
    /// every other field; this records ADDED or MODIFIED.
    pub fn put(&mut self, gr: &Gr, obj: Value) -> Value {
        (*self.put_arc(gr, obj)).clone()
    }

    /// Like [`Store::put`], returning the stored object shared.
    pub fn put_arc(&mut self, gr: &Gr, mut obj: Value) -> Arc<Value> {
        let r = ObjRef {
            gr: gr.clone(),
            ns: str_at(&obj, "metadata", "namespace").to_string(),
            name: str_at(&obj, "metadata", "name").to_string(),
        };
        let rv = self.bump();
        obj["metadata"]["resourceVersion"] = json!(rv.to_string());
        if obj["metadata"]["deletionTimestamp"].is_string() {
            self.deletions += 1;
        }
        let obj = Arc::new(obj);
        let before = self
            .objects
            .entry(gr.clone())
            .or_default()
            .entry(r.ns.clone())
            .or_default()
            .insert(r.name.clone(), obj.clone());
        if let Some(old) = &before {
            self.unindex(&r, old);
        }
        self.index(&r, &obj);
        let kind = if before.is_some() {
            EventType::Modified
        } else {
            EventType::Added
        };
        self.record(Event::new(rv, gr.clone(), kind, obj.clone(), before));
        obj
    }

    /// Removes an object for good, recording DELETED.
    pub fn remove(&mut self, gr: &Gr, ns: &str, name: &str) -> Option<Value> {
        let res = self.objects.get_mut(gr)?;
        let in_ns = res.get_mut(ns)?;
        let old = in_ns.remove(name)?;
        if in_ns.is_empty() {
            res.remove(ns);
        }
        let r = ObjRef {
            gr: gr.clone(),
            ns: ns.to_string(),
            name: name.to_string(),
        };
        self.unindex(&r, &old);
        if let Some(uid) = old["metadata"]["uid"].as_str() {
            self.by_uid.remove(uid);
        }
        let rv = self.bump();
        let mut obj = (*old).clone();
        obj["metadata"]["resourceVersion"] = json!(rv.to_string());
        self.deletions += 1;
        let obj = Arc::new(obj);
        self.record(Event::new(
            rv,
            gr.clone(),
            EventType::Deleted,
            obj.clone(),
            Some(old),
        ));
        Some((*obj).clone())
    }

    /// Removes every object of a resource (its CRD went away).
    pub fn remove_all(&mut self, gr: &Gr) {
        let keys: Vec<(String, String)> = self
            .iter(gr, None)
            .map(|o| {
                (
                    str_at(o, "metadata", "namespace").to_string(),
                    str_at(o, "metadata", "name").to_string(),
                )
            })
            .collect();
        for (ns, name) in keys {
            self.remove(gr, &ns, &name);
        }
    }

    /// Events after `rv` for one resource. `Err(oldest)` when `rv` has been compacted away.
    pub fn events_since(&self, gr: &Gr, rv: u64) -> Result<Vec<Arc<Event>>, u64> {
        self.log.since(gr, rv)
    }

    /// The oldest resourceVersion a watch of `gr` may start from.
    pub fn oldest(&self, gr: &Gr) -> u64 {
        self.log.oldest(gr)
    }
}
