//! The simulated cluster's whole state: the store, the kind table, and what the simulation
//! keeps beside the API (log buffers, pod behaviours, delays, faults, timers).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::watch;

use super::controllers::Dirty;
use super::kinds::{KindTable, ResourceType};
use super::store::{Gr, Store};

/// How a pod's containers behave, set by tests by pod name prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PodBehaviour {
    /// Runs and becomes Ready after the start delay (the default).
    Normal,
    /// Runs, but never becomes Ready.
    NeverReady,
    /// Becomes Ready only after this extra delay.
    SlowReady(Duration),
    /// Runs, then exits with code 1 (Job pods fail).
    Fail,
}

/// Delays the controllers honour; all default to zero so tests are quick.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Delays {
    /// From binding to Running and Ready.
    pub pod_start: Duration,
    /// From a graceful delete to the pod's removal.
    pub pod_stop: Duration,
    /// How long a Job's pod runs before it exits (the Rok upgrade Job included).
    pub job_run: Duration,
}

/// One log line of a container.
#[derive(Debug, Clone)]
pub struct LogLine {
    /// When it was written.
    pub ts: jiff::Timestamp,
    /// The text, without a newline.
    pub text: String,
}

/// Everything behind the API.
#[derive(Debug)]
pub struct World {
    /// Objects and events.
    pub store: Store,
    /// Served resource types.
    pub kinds: KindTable,
    /// Controller delays.
    pub delays: Delays,
    /// Behaviours by pod name prefix.
    pub behaviours: Vec<(String, PodBehaviour)>,
    /// Log buffers by (namespace, pod, container).
    pub logs: BTreeMap<(String, String, String), Vec<LogLine>>,
    /// Told whenever a log line is appended.
    pub logs_changed: watch::Sender<u64>,
    /// Timers by object uid (when a pod was bound, deleted, ...): `bound`, `running`, `deleted`.
    pub timers: BTreeMap<(String, &'static str), Instant>,
    /// Counter for generated names.
    pub name_seq: u64,
    /// Whether the controllers run.
    pub controllers_paused: bool,
    /// What the controllers have to look at.
    pub(crate) dirty: Dirty,
    /// Rok CSI pods log "operation pending" lines until then.
    pub rok_busy_until: Option<std::time::Instant>,
    /// How often they log while busy.
    pub rok_log_every: Duration,
    /// When they last logged.
    pub rok_last_log: Option<std::time::Instant>,
}

impl Default for World {
    fn default() -> Self {
        Self::new()
    }
}

impl World {
    /// An empty world with the built-in kinds.
    pub fn new() -> Self {
        World {
            store: Store::new(),
            kinds: KindTable::builtin(),
            delays: Delays::default(),
            behaviours: Vec::new(),
            logs: BTreeMap::new(),
            logs_changed: watch::channel(0).0,
            timers: BTreeMap::new(),
            name_seq: 0,
            controllers_paused: false,
            dirty: Dirty::default(),
            rok_busy_until: None,
            rok_log_every: Duration::from_millis(100),
            rok_last_log: None,
        }
    }

    /// The resource type for a group and plural, any version.
    pub fn rt(&self, group: &str, plural: &str) -> Option<ResourceType> {
        self.kinds
            .types()
            .iter()
            .find(|t| t.group == group && t.plural == plural)
            .cloned()
    }

    /// A five-character suffix like the ones `generateName` produces.
    pub fn random_suffix(&mut self) -> String {
        const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
        self.name_seq += 1;
        let mut n = self.name_seq.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 7;
        (0..5)
            .map(|_| {
                let c = ALPHABET[(n % ALPHABET.len() as u64) as usize] as char;
                n /= ALPHABET.len() as u64;
                c
            })
            .collect()
    }

    /// Sets how pods whose name starts with `prefix` behave (replacing an earlier setting
    /// for the same prefix).
    pub fn set_behaviour(&mut self, prefix: &str, b: PodBehaviour) {
        self.behaviours.retain(|(p, _)| p != prefix);
        self.behaviours.push((prefix.to_string(), b));
    }

    /// The behaviour of a pod, by the longest matching name prefix.
    pub fn behaviour(&self, pod_name: &str) -> PodBehaviour {
        self.behaviours
            .iter()
            .filter(|(p, _)| pod_name.starts_with(p.as_str()))
            .max_by_key(|(p, _)| p.len())
            .map(|(_, b)| *b)
            .unwrap_or(PodBehaviour::Normal)
    }

    /// Appends a log line to a container's buffer.
    pub fn append_log(&mut self, ns: &str, pod: &str, container: &str, text: &str) {
        self.logs
            .entry((ns.to_string(), pod.to_string(), container.to_string()))
            .or_default()
            .push(LogLine {
                ts: jiff::Timestamp::now(),
                text: text.to_string(),
            });
        self.logs_changed.send_modify(|n| *n += 1);
    }

    /// Gets an object by group and plural.
    pub fn get(&self, group: &str, plural: &str, ns: &str, name: &str) -> Option<Value> {
        self.store
            .get(&(group.to_string(), plural.to_string()), ns, name)
            .cloned()
    }

    /// Lists objects by group and plural.
    pub fn list(&self, group: &str, plural: &str, ns: Option<&str>) -> Vec<Value> {
        self.store
            .list_owned(&(group.to_string(), plural.to_string()), ns)
    }

    /// Store key of a group and plural.
    pub fn gr(group: &str, plural: &str) -> Gr {
        (group.to_string(), plural.to_string())
    }
}
