//! Injected faults: a tool on a host fails (once, N times, always) or takes longer, so
//! that tests can exercise retries, aborts, and crashes in the middle of a command.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::error::ApplianceError;
use super::paths::LabPaths;
use super::state::{read_json, write_json_atomic};

/// What a fault does to a matching invocation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum FaultAction {
    /// Exit with this status before doing anything, printing an error on stderr.
    Fail {
        /// The exit status (non-zero).
        exit_code: i32,
    },
    /// Sleep this long before doing anything (a kill during it leaves no effect).
    DelayBefore {
        /// Milliseconds.
        millis: u64,
    },
    /// Sleep this long after the work, before exiting (a kill during it leaves the effect
    /// in place but no exit status: the "in doubt" case).
    DelayAfter {
        /// Milliseconds.
        millis: u64,
    },
}

/// A fault for one command on one host (or every host).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fault {
    /// The host; `None`: any host.
    pub host: Option<String>,
    /// The command as words, matched as a prefix of the invocation's argv (the tool's file
    /// name first), e.g. `rok-cluster-upgrade-v0.12.0 upgrade-node`.
    pub command: Vec<String>,
    /// What happens.
    pub action: FaultAction,
    /// How many more invocations it applies to; `None`: all of them.
    pub remaining: Option<u32>,
}

impl Fault {
    /// `command` (words separated by spaces) on `host` fails `times` times, exit status 1.
    pub fn fail(host: &str, command: &str, times: u32) -> Self {
        Self {
            host: Some(host.to_string()),
            command: words(command),
            action: FaultAction::Fail { exit_code: 1 },
            remaining: Some(times),
        }
    }

    /// `command` on `host` sleeps `delay` before it does anything, every time.
    pub fn delay_before(host: &str, command: &str, delay: Duration) -> Self {
        Self {
            host: Some(host.to_string()),
            command: words(command),
            action: FaultAction::DelayBefore {
                millis: millis(delay),
            },
            remaining: None,
        }
    }

    /// `command` on `host` sleeps `delay` after its work, before it exits, every time.
    pub fn delay_after(host: &str, command: &str, delay: Duration) -> Self {
        Self {
            host: Some(host.to_string()),
            command: words(command),
            action: FaultAction::DelayAfter {
                millis: millis(delay),
            },
            remaining: None,
        }
    }

    /// The same fault for a limited number of invocations.
    pub fn times(mut self, n: u32) -> Self {
        self.remaining = Some(n);
        self
    }

    /// The same fault on every host.
    pub fn on_any_host(mut self) -> Self {
        self.host = None;
        self
    }

    fn matches(&self, host: &str, argv: &[String]) -> bool {
        self.host.as_deref().is_none_or(|h| h == host)
            && self.remaining != Some(0)
            && self.command.len() <= argv.len()
            && self.command.iter().zip(argv).all(|(a, b)| a == b)
    }
}

fn words(command: &str) -> Vec<String> {
    command.split_whitespace().map(str::to_string).collect()
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// What the faults ask of one invocation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Injected {
    /// Sleep before the work.
    pub(crate) before: Duration,
    /// Fail with this status instead of the work.
    pub(crate) fail: Option<i32>,
    /// Sleep after the work.
    pub(crate) after: Duration,
}

/// The faults file of a lab.
#[derive(Clone, Debug)]
pub(crate) struct FaultsFile {
    paths: LabPaths,
}

impl FaultsFile {
    pub(crate) fn new(paths: LabPaths) -> Self {
        Self { paths }
    }

    fn lock(&self) -> Result<std::fs::File, ApplianceError> {
        let path = self.paths.faults().with_extension("lock");
        let f = std::fs::File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| ApplianceError::io(&path, e))?;
        f.lock().map_err(|e| ApplianceError::io(&path, e))?;
        Ok(f)
    }

    fn load(&self) -> Result<Vec<Fault>, ApplianceError> {
        let path = self.paths.faults();
        if !path.exists() {
            return Ok(Vec::new());
        }
        read_json(&path)
    }

    pub(crate) fn list(&self) -> Result<Vec<Fault>, ApplianceError> {
        let _l = self.lock()?;
        self.load()
    }

    pub(crate) fn add(&self, fault: Fault) -> Result<(), ApplianceError> {
        let _l = self.lock()?;
        let mut all = self.load()?;
        all.push(fault);
        write_json_atomic(&self.paths.faults(), &all)
    }

    pub(crate) fn clear(&self) -> Result<(), ApplianceError> {
        let _l = self.lock()?;
        write_json_atomic(&self.paths.faults(), &Vec::<Fault>::new())
    }

    /// The faults that apply to this invocation; counted faults are used up.
    pub(crate) fn take(&self, host: &str, argv: &[String]) -> Result<Injected, ApplianceError> {
        let _l = self.lock()?;
        let mut all = self.load()?;
        let mut injected = Injected::default();
        let mut changed = false;
        for f in all.iter_mut().filter(|f| f.matches(host, argv)) {
            match f.action {
                FaultAction::Fail { exit_code } => {
                    if injected.fail.is_some() {
                        continue;
                    }
                    injected.fail = Some(exit_code);
                }
                FaultAction::DelayBefore { millis } => {
                    injected.before += Duration::from_millis(millis);
                }
                FaultAction::DelayAfter { millis } => {
                    injected.after += Duration::from_millis(millis);
                }
            }
            if let Some(n) = &mut f.remaining {
                *n -= 1;
                changed = true;
            }
        }
        if changed {
            write_json_atomic(&self.paths.faults(), &all)?;
        }
        Ok(injected)
    }
}
