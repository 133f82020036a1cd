//! `lab.json`: what a lab directory holds and which processes run it, so that another
//! process (`lab appliances down|state|fail`) can find and stop a detached lab.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::error::ApplianceError;
use super::paths::LabPaths;
use super::state::{read_json, write_json_atomic};

/// One appliance of the manifest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestHost {
    /// Its name.
    pub name: String,
    /// Its sshd's port on 127.0.0.1.
    pub port: u16,
    /// The `unshare` process that holds its namespaces, while it runs.
    pub unshare_pid: Option<u32>,
    /// That process's start time (/proc/PID/stat field 22), to tell it from a reused PID.
    pub unshare_start_time: Option<u64>,
}

/// The manifest of a lab directory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Every appliance, the initial master first, then the physical Ganeti hosts.
    pub hosts: Vec<ManifestHost>,
    /// The `lab` binary the tools link to.
    pub lab_bin: PathBuf,
    /// The user ssh logs in as.
    pub user: String,
    /// Whether the appliances outlive the process that started them.
    pub detached: bool,
}

impl Manifest {
    /// Reads the manifest of the lab at `paths`.
    pub fn read(paths: &LabPaths) -> Result<Self, ApplianceError> {
        read_json(&paths.manifest())
    }

    /// Writes it.
    pub(crate) fn write(&self, paths: &LabPaths) -> Result<(), ApplianceError> {
        write_json_atomic(&paths.manifest(), self)
    }
}
