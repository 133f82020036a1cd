//! The object store: JSON objects by resource, namespace and name, one global resourceVersion
//! counter, and the event log that watches replay (compacted, so old versions answer 410).

use std::collections::{BTreeMap, VecDeque};

use serde_json::{Value, json};
use tokio::sync::watch;

use super::kinds::ResourceType;

/// Resource identity in the store: (group, plural).
pub type Gr = (String, String);

/// What happened to an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// Created.
    Added,
    /// Changed.
    Modified,
    /// Removed from the store.
    Deleted,
}

impl EventType {
    /// The watch event's `type`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One entry of the event log.
#[derive(Debug, Clone)]
pub struct Event {
    /// The resourceVersion the change produced.
    pub rv: u64,
    /// Which resource.
    pub gr: Gr,
    /// What happened.
    pub kind: EventType,
    /// The object after the change (before it, for deletions, with the new resourceVersion).
    pub object: std::sync::Arc<Value>,
    /// The object serialized once, shared by every watch that sends it.
    pub json: std::sync::Arc<str>,
    /// What selectors can see of the object before the change (labels, name, namespace,
    /// `spec.nodeName`, `spec.unschedulable`, `status.phase`); `None` for creations.
    pub before: Option<Value>,
}

/// The parts of an object label and field selectors look at.
pub fn selectable(o: &Value) -> Value {
    json!({
        "metadata": {"name": o["metadata"]["name"], "namespace": o["metadata"]["namespace"], "labels": o["metadata"]["labels"]},
        "spec": {"nodeName": o["spec"]["nodeName"], "unschedulable": o["spec"]["unschedulable"]},
        "status": {"phase": o["status"]["phase"]},
    })
}

/// The object store.
#[derive(Debug)]
pub struct Store {
    objects: BTreeMap<Gr, BTreeMap<(String, String), Value>>,
    rv: u64,
    uid_seq: u64,
    events: VecDeque<Event>,
    /// Watches from a resourceVersion below this one get 410 Expired.
    oldest: u64,
    /// Events kept before compaction.
    pub max_events: usize,
    changed: watch::Sender<u64>,
    /// Bumped on every removal and every write of an object marked for deletion: the garbage
    /// collector only scans when it moved.
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

impl Store {
    /// An empty store at resourceVersion 1.
    pub fn new() -> Self {
        let (changed, _) = watch::channel(1);
        Store {
            objects: BTreeMap::new(),
            rv: 1,
            uid_seq: 0,
            events: VecDeque::new(),
            oldest: 1,
            max_events: 100_000,
            changed,
            deletions: 0,
        }
    }

    /// The latest resourceVersion.
    pub fn rv(&self) -> u64 {
        self.rv
    }

    /// The oldest resourceVersion a watch may start from.
    pub fn oldest(&self) -> u64 {
        self.oldest
    }

    /// A receiver that is told each time the store changes.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// How many deletions (removals, or writes of objects being deleted) happened so far.
    pub fn deletions(&self) -> u64 {
        self.deletions
    }

    /// Drops all events up to now: watches from older versions get 410.
    pub fn compact(&mut self) {
        self.events.clear();
        self.oldest = self.rv;
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
        self.objects
            .get(gr)?
            .get(&(ns.to_string(), name.to_string()))
    }

    /// Objects of a resource, in one namespace or all (`None`), sorted by namespace and name.
    pub fn list(&self, gr: &Gr, ns: Option<&str>) -> Vec<&Value> {
        let Some(m) = self.objects.get(gr) else {
            return Vec::new();
        };
        m.iter()
            .filter(|((n, _), _)| ns.is_none_or(|x| x == n))
            .map(|(_, v)| v)
            .collect()
    }

    /// Clones of the objects of a resource (for controllers that then write).
    pub fn list_owned(&self, gr: &Gr, ns: Option<&str>) -> Vec<Value> {
        self.list(gr, ns).into_iter().cloned().collect()
    }

    fn bump(&mut self) -> u64 {
        self.rv += 1;
        self.rv
    }

    fn record(&mut self, gr: &Gr, kind: EventType, object: Value, before: Option<Value>) {
        self.events.push_back(Event {
            rv: self.rv,
            gr: gr.clone(),
            kind,
            json: object.to_string().into(),
            object: std::sync::Arc::new(object),
            before,
        });
        while self.events.len() > self.max_events {
            if let Some(e) = self.events.pop_front() {
                self.oldest = e.rv;
            }
        }
        self.changed.send_replace(self.rv);
    }

    /// Stores an object, new or changed, giving it the next resourceVersion. The caller has set
    /// every other field; this records ADDED or MODIFIED.
    pub fn put(&mut self, gr: &Gr, mut obj: Value) -> Value {
        let ns = obj["metadata"]["namespace"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let name = obj["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let rv = self.bump();
        obj["metadata"]["resourceVersion"] = json!(rv.to_string());
        if obj["metadata"]["deletionTimestamp"].is_string() {
            self.deletions += 1;
        }
        let map = self.objects.entry(gr.clone()).or_default();
        let before = map
            .insert((ns, name), obj.clone())
            .map(|old| selectable(&old));
        let kind = if before.is_some() {
            EventType::Modified
        } else {
            EventType::Added
        };
        self.record(gr, kind, obj.clone(), before);
        obj
    }

    /// Removes an object for good, recording DELETED.
    pub fn remove(&mut self, gr: &Gr, ns: &str, name: &str) -> Option<Value> {
        let mut obj = self
            .objects
            .get_mut(gr)?
            .remove(&(ns.to_string(), name.to_string()))?;
        let rv = self.bump();
        obj["metadata"]["resourceVersion"] = json!(rv.to_string());
        self.deletions += 1;
        let before = Some(selectable(&obj));
        self.record(gr, EventType::Deleted, obj.clone(), before);
        Some(obj)
    }

    /// Removes every object of a resource (its CRD went away).
    pub fn remove_all(&mut self, gr: &Gr) {
        let keys: Vec<(String, String)> = self
            .objects
            .get(gr)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        for (ns, name) in keys {
            self.remove(gr, &ns, &name);
        }
    }

    /// Events after `rv` for one resource. `Err(oldest)` when `rv` has been compacted away.
    pub fn events_since(&self, gr: &Gr, rv: u64) -> Result<Vec<Event>, u64> {
        if rv < self.oldest {
            return Err(self.oldest);
        }
        let start = self.events.partition_point(|e| e.rv <= rv);
        Ok(self
            .events
            .range(start..)
            .filter(|e| &e.gr == gr)
            .cloned()
            .collect())
    }
}
