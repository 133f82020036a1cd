//! The journal: every tool invocation on every host, so that tests can assert what ran
//! where and how often (e.g. `upgrade-node` exactly once per host, even across a crash).
//!
//! The file has one JSON line per event (`start`, then `end` with the exit status); an
//! invocation killed before it ended has only its `start`. [`read_journal`] pairs them.

use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::error::ApplianceError;
use super::paths::LabPaths;

/// One tool invocation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invocation {
    /// Unique per invocation.
    pub id: String,
    /// The host it ran on.
    pub host: String,
    /// Its argv, the tool's file name first (`["rok-config", "set", "k=v"]`).
    pub argv: Vec<String>,
    /// When it started (milliseconds since the Unix epoch).
    pub started_ms: u64,
    /// When it ended; `None` if it was killed (or still runs).
    pub ended_ms: Option<u64>,
    /// Its exit status; `None` if it was killed (or still runs).
    pub exit_code: Option<i32>,
}

impl Invocation {
    /// Whether its argv starts with these words (`"rok-cluster-upgrade-v0.12.0 upgrade-node"`).
    pub fn is(&self, command: &str) -> bool {
        let words: Vec<&str> = command.split_whitespace().collect();
        words.len() <= self.argv.len() && words.iter().zip(&self.argv).all(|(a, b)| a == b)
    }
}

#[derive(Serialize, Deserialize)]
struct Event {
    id: String,
    event: String,
    host: String,
    #[serde(default)]
    argv: Vec<String>,
    at_ms: u64,
    #[serde(default)]
    exit_code: Option<i32>,
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Appends events of one invocation.
#[derive(Debug)]
pub(crate) struct JournalWriter {
    paths: LabPaths,
    id: String,
    host: String,
}

impl JournalWriter {
    /// Records the start of `argv` on `host`.
    pub(crate) fn start(
        paths: LabPaths,
        host: &str,
        argv: &[String],
    ) -> Result<Self, ApplianceError> {
        let at_ms = now_ms();
        let id = format!("{host}-{}-{at_ms}", std::process::id());
        let w = Self {
            paths,
            id: id.clone(),
            host: host.to_string(),
        };
        w.append(&Event {
            id,
            event: "start".into(),
            host: host.to_string(),
            argv: argv.to_vec(),
            at_ms,
            exit_code: None,
        })?;
        Ok(w)
    }

    /// Records the end with `exit_code`.
    pub(crate) fn end(&self, exit_code: i32) -> Result<(), ApplianceError> {
        self.append(&Event {
            id: self.id.clone(),
            event: "end".into(),
            host: self.host.clone(),
            argv: Vec::new(),
            at_ms: now_ms(),
            exit_code: Some(exit_code),
        })
    }

    fn append(&self, e: &Event) -> Result<(), ApplianceError> {
        let path = self.paths.journal();
        let mut line = serde_json::to_string(e).map_err(|err| ApplianceError::Corrupt {
            path: path.clone(),
            message: err.to_string(),
        })?;
        line.push('\n');
        // O_APPEND and one write per line: concurrent tools never interleave a line.
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut f| f.write_all(line.as_bytes()))
            .map_err(|err| ApplianceError::io(&path, err))
    }
}

/// Every invocation of the lab at `paths`, in start order.
pub fn read_journal(paths: &LabPaths) -> Result<Vec<Invocation>, ApplianceError> {
    let path = paths.journal();
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(ApplianceError::io(&path, e)),
    };
    let mut out: Vec<Invocation> = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let e: Event = serde_json::from_str(line).map_err(|err| ApplianceError::Corrupt {
            path: path.clone(),
            message: format!("{err}: {line}"),
        })?;
        if e.event == "start" {
            out.push(Invocation {
                id: e.id,
                host: e.host,
                argv: e.argv,
                started_ms: e.at_ms,
                ended_ms: None,
                exit_code: None,
            });
        } else if let Some(inv) = out.iter_mut().rev().find(|i| i.id == e.id) {
            inv.ended_ms = Some(e.at_ms);
            inv.exit_code = e.exit_code;
        }
    }
    Ok(out)
}
