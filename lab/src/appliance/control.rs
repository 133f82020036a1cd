//! [`LabDir`]: what a test (or `lab appliances state|fail`) can read and change through a
//! lab's files, whether this process started the lab or another one did.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::error::ApplianceError;
use super::faults::{Fault, FaultsFile};
use super::journal::{Invocation, read_journal};
use super::manifest::Manifest;
use super::paths::LabPaths;
use super::state::{LabState, StateStore};

/// A lab directory: state, faults and journal.
#[derive(Clone, Debug)]
pub struct LabDir {
    paths: LabPaths,
}

impl LabDir {
    /// The lab at `dir` (it must have been started: its manifest exists).
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, ApplianceError> {
        let paths = LabPaths::new(dir);
        let manifest = paths.manifest();
        if !manifest.exists() {
            return Err(ApplianceError::io(
                &manifest,
                std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "no appliance lab here (start one with `lab appliances up --dir DIR`)",
                ),
            ));
        }
        Ok(Self { paths })
    }

    pub(crate) fn from_paths(paths: LabPaths) -> Self {
        Self { paths }
    }

    /// The file layout.
    pub fn paths(&self) -> &LabPaths {
        &self.paths
    }

    /// The lab directory.
    pub fn dir(&self) -> &Path {
        self.paths.root()
    }

    /// The ssh_config that reaches every appliance by name (`ssh -F THIS HOST`).
    pub fn ssh_config(&self) -> PathBuf {
        self.paths.ssh_config()
    }

    /// The manifest (hosts, ports, processes).
    pub fn manifest(&self) -> Result<Manifest, ApplianceError> {
        Manifest::read(&self.paths)
    }

    /// A snapshot of the simulated cluster and nodes.
    pub fn state(&self) -> Result<LabState, ApplianceError> {
        StateStore::new(self.paths.clone()).read()
    }

    /// Changes the simulated state directly (set up a scenario: a node at another
    /// version, a different master...), under the same lock the tools take.
    pub fn update_state(&self, change: impl FnOnce(&mut LabState)) -> Result<(), ApplianceError> {
        StateStore::new(self.paths.clone()).update(|s| {
            change(s);
            Ok::<(), ApplianceError>(())
        })?
    }

    /// Every tool invocation so far, in start order.
    pub fn journal(&self) -> Result<Vec<Invocation>, ApplianceError> {
        read_journal(&self.paths)
    }

    /// The invocations on `host` whose argv starts with `command`'s words.
    pub fn invocations(
        &self,
        host: &str,
        command: &str,
    ) -> Result<Vec<Invocation>, ApplianceError> {
        Ok(self
            .journal()?
            .into_iter()
            .filter(|i| i.host == host && i.is(command))
            .collect())
    }

    /// Injects a fault.
    pub fn add_fault(&self, fault: Fault) -> Result<(), ApplianceError> {
        FaultsFile::new(self.paths.clone()).add(fault)
    }

    /// `command` on `host` fails the next `times` times (exit status 1).
    pub fn fail(&self, host: &str, command: &str, times: u32) -> Result<(), ApplianceError> {
        self.add_fault(Fault::fail(host, command, times))
    }

    /// `command` on `host` fails once.
    pub fn fail_once(&self, host: &str, command: &str) -> Result<(), ApplianceError> {
        self.fail(host, command, 1)
    }

    /// `command` on `host` sleeps `delay` before doing anything (every time).
    pub fn delay(&self, host: &str, command: &str, delay: Duration) -> Result<(), ApplianceError> {
        self.add_fault(Fault::delay_before(host, command, delay))
    }

    /// The faults still in force (counted ones show what is left).
    pub fn faults(&self) -> Result<Vec<Fault>, ApplianceError> {
        FaultsFile::new(self.paths.clone()).list()
    }

    /// Removes every fault.
    pub fn clear_faults(&self) -> Result<(), ApplianceError> {
        FaultsFile::new(self.paths.clone()).clear()
    }

    /// The host's `/etc/rok/daemons.conf` as it is now.
    pub fn daemons_conf(&self, host: &str) -> Result<String, ApplianceError> {
        let p = self.etc_rok(host).join("daemons.conf");
        std::fs::read_to_string(&p).map_err(|e| ApplianceError::io(&p, e))
    }

    /// The directory that is the host's `/etc/rok`.
    pub fn etc_rok(&self, host: &str) -> PathBuf {
        self.paths.etc_rok(host)
    }

    /// Where the file a physical Ganeti host sees at `path` (under `/usr/bin` or `/etc`)
    /// is kept when the host changed or the lab made it: its overlays' upper layers.
    /// `None` for paths elsewhere.
    pub fn pnode_file(&self, pnode: &str, path: &str) -> Option<PathBuf> {
        super::ganeti::host_file(&self.paths, pnode, path)
    }

    /// The `tcp:` endpoints left on a physical Ganeti host in the places the procedure
    /// edits (`/usr/bin/*kvm*`, `/etc/ganeti/rok/rok.conf`, `/etc/default/snf-image`), as
    /// `PATH: LINE`; empty once they are all `http:`.
    pub fn pnode_tcp_endpoints(&self, pnode: &str) -> Vec<String> {
        super::ganeti::tcp_endpoints(&self.paths, pnode)
    }

    /// The plan's `ganeti_scripts_dir`: `scripts/rok-cluster-upgrade-ganeti` is in it.
    pub fn ganeti_scripts_dir(&self) -> PathBuf {
        self.paths.ganeti_scripts_dir()
    }
}
