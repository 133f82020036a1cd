//! The event log watches replay: per resource, bounded (older versions answer 410), behind its
//! own lock so that watch streams never wait on the world's lock.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use bytes::Bytes;
use serde_json::Value;
use tokio::sync::watch;

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

/// One change of one object.
#[derive(Debug)]
pub struct Event {
    /// The resourceVersion the change produced.
    pub rv: u64,
    /// Which resource.
    pub gr: Gr,
    /// What happened.
    pub kind: EventType,
    /// The object after the change (before it, for deletions, with the new resourceVersion).
    pub object: Arc<Value>,
    /// The object before the change; `None` for creations. Selectors look at it to turn a
    /// change that makes an object stop matching into DELETED.
    pub before: Option<Arc<Value>>,
    /// The object serialized once, on first use.
    json: OnceLock<Arc<str>>,
    /// The watch lines (`ADDED`, `MODIFIED`, `DELETED`), each rendered once, on first use, and
    /// shared by every watch that sends it: fan-out copies nothing.
    lines: [OnceLock<Bytes>; 3],
}

impl Event {
    /// A new event.
    pub fn new(
        rv: u64,
        gr: Gr,
        kind: EventType,
        object: Arc<Value>,
        before: Option<Arc<Value>>,
    ) -> Self {
        Event {
            rv,
            gr,
            kind,
            object,
            before,
            json: OnceLock::new(),
            lines: Default::default(),
        }
    }

    /// The object as JSON text (serialized at most once).
    pub fn json(&self) -> Arc<str> {
        self.json
            .get_or_init(|| self.object.to_string().into())
            .clone()
    }

    /// The watch line `{"type":KIND,"object":…}` for this object, for a watch that sends it as
    /// `kind` (which may differ from the event's own, when selectors turn it into ADDED or DELETED).
    pub fn line(&self, kind: EventType) -> Bytes {
        let slot = match kind {
            EventType::Added => 0,
            EventType::Modified => 1,
            EventType::Deleted => 2,
        };
        self.lines[slot]
            .get_or_init(|| {
                let json = self.json();
                let mut s = String::with_capacity(json.len() + 32);
                s.push_str("{\"type\":\"");
                s.push_str(kind.as_str());
                s.push_str("\",\"object\":");
                s.push_str(&json);
                s.push_str("}\n");
                Bytes::from(s)
            })
            .clone()
    }
}

/// The events kept for one resource.
#[derive(Debug, Default)]
struct ResourceLog {
    events: VecDeque<Arc<Event>>,
    /// Watches of this resource from a version below this one get 410.
    oldest: u64,
}

#[derive(Debug)]
struct LogState {
    by_resource: HashMap<Gr, ResourceLog>,
    /// Compaction point for every resource (`compact`).
    oldest: u64,
    /// Events kept per resource before the oldest are dropped.
    max_events: usize,
}

/// The event log, shared by the store (which appends) and the watch streams (which read).
#[derive(Debug)]
pub struct EventLog {
    state: Mutex<LogState>,
    /// The latest resourceVersion recorded; every append notifies it.
    latest: watch::Sender<u64>,
}

impl EventLog {
    /// An empty log at resourceVersion `rv`.
    pub fn new(rv: u64) -> Self {
        EventLog {
            state: Mutex::new(LogState {
                by_resource: HashMap::new(),
                oldest: rv,
                max_events: 100_000,
            }),
            latest: watch::channel(rv).0,
        }
    }

    fn state(&self) -> MutexGuard<'_, LogState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Sets how many events are kept per resource.
    pub fn set_max_events(&self, n: usize) {
        self.state().max_events = n.max(1);
    }

    /// A receiver told each time an event is appended.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.latest.subscribe()
    }

    /// The latest resourceVersion recorded.
    pub fn latest(&self) -> u64 {
        *self.latest.borrow()
    }

    /// Appends an event and wakes the watches.
    pub fn append(&self, event: Arc<Event>) {
        let rv = event.rv;
        {
            let mut s = self.state();
            let max = s.max_events;
            let floor = s.oldest;
            let log = s
                .by_resource
                .entry(event.gr.clone())
                .or_insert_with(|| ResourceLog {
                    events: VecDeque::new(),
                    oldest: floor,
                });
            log.events.push_back(event);
            while log.events.len() > max {
                if let Some(e) = log.events.pop_front() {
                    log.oldest = e.rv;
                }
            }
        }
        self.latest.send_replace(rv);
    }

    /// Drops every event: watches from versions before `rv` get 410.
    pub fn compact(&self, rv: u64) {
        let mut s = self.state();
        s.by_resource.clear();
        s.oldest = rv;
    }

    /// The oldest resourceVersion a watch of `gr` may start from.
    pub fn oldest(&self, gr: &Gr) -> u64 {
        let s = self.state();
        s.by_resource
            .get(gr)
            .map_or(s.oldest, |l| l.oldest.max(s.oldest))
    }

    /// Events of one resource after `rv`. `Err(oldest)` when `rv` has been compacted away.
    pub fn since(&self, gr: &Gr, rv: u64) -> Result<Vec<Arc<Event>>, u64> {
        let s = self.state();
        let Some(log) = s.by_resource.get(gr) else {
            return if rv < s.oldest {
                Err(s.oldest)
            } else {
                Ok(Vec::new())
            };
        };
        let oldest = log.oldest.max(s.oldest);
        if rv < oldest {
            return Err(oldest);
        }
        let start = log.events.partition_point(|e| e.rv <= rv);
        Ok(log.events.range(start..).cloned().collect())
    }
}
