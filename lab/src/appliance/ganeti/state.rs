//! The simulated Ganeti cluster's state (`ganeti.json`, under the lab's state lock): the
//! physical hosts' Rok packages, where each instance runs, and how far
//! `rok-cluster-upgrade-ganeti` got.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::super::version::Version;

/// The Rok Debian packages of a physical host, `apt-get install`ed by the procedure.
pub const ROK_PACKAGES: &[&str] = &["rok-common", "rok-base"];

/// One physical Ganeti host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PnodeState {
    /// Its name (hostname, ssh alias).
    pub name: String,
    /// Installed Rok packages and their versions.
    pub packages: BTreeMap<String, Version>,
    /// Its sshd runs.
    pub up: bool,
}

/// One Ganeti instance: an appliance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceState {
    /// The appliance's name.
    pub name: String,
    /// The physical host it belongs on (its primary node before any evacuation).
    pub home: String,
    /// The physical host it runs on now.
    pub node: String,
}

/// How far `rok-cluster-upgrade-ganeti` got.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpgradeScriptState {
    /// How many times it started (passed its credential checks).
    pub runs: u32,
    /// It evacuated the RokE master's physical host.
    pub evacuated: bool,
    /// The image it re-installed the RokE master with.
    pub master_reinstalled: Option<Version>,
    /// It migrated the instances back after the operator's confirmation.
    pub migrated_back: bool,
    /// When it migrated back: whether the master's physical host had the new packages and
    /// no `tcp:` endpoint left (the seed says not to confirm before that).
    pub master_pnode_ready_at_migration: Option<bool>,
}

/// The Ganeti cluster (empty when the lab has none).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GanetiState {
    /// The cluster name (the RAPI host).
    pub cluster_name: String,
    /// The RAPI user.
    pub rapi_user: String,
    /// The physical host of the RokE master instance.
    pub master_pnode: String,
    /// The version the packages and the re-installed master image upgrade to.
    pub target: Option<Version>,
    /// Every physical host, the master's first.
    pub pnodes: Vec<PnodeState>,
    /// Every instance (appliance).
    pub instances: Vec<InstanceState>,
    /// The upgrade script's progress.
    pub upgrade_script: UpgradeScriptState,
}

impl GanetiState {
    /// The physical host called `name`.
    pub fn pnode(&self, name: &str) -> Option<&PnodeState> {
        self.pnodes.iter().find(|p| p.name == name)
    }

    /// The physical host called `name`, to change.
    pub fn pnode_mut(&mut self, name: &str) -> Option<&mut PnodeState> {
        self.pnodes.iter_mut().find(|p| p.name == name)
    }

    /// The instances running on `pnode` now.
    pub fn instances_on(&self, pnode: &str) -> Vec<String> {
        self.instances
            .iter()
            .filter(|i| i.node == pnode)
            .map(|i| i.name.clone())
            .collect()
    }

    /// Whether every instance runs on its home physical host.
    pub fn all_instances_home(&self) -> bool {
        self.instances.iter().all(|i| i.node == i.home)
    }
}
