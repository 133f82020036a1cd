//! The simulated Rok state: cluster-wide (shared state, configuration, maps, Gateway
//! store) in `cluster.json`, per node (BOOT image, node version) in `hosts/H/node.json`,
//! the Ganeti cluster under the appliances, if any, in `ganeti.json`.
//! Every change happens under one file lock, so tools on several hosts at once see a
//! consistent cluster.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::Path;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::error::ApplianceError;
use super::ganeti::GanetiState;
use super::paths::LabPaths;
use super::version::Version;

/// One composer map.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MapState {
    /// The map's name.
    pub name: String,
    /// Its format version (3 before `map-upgrade`, 4 after).
    pub format: u32,
}

/// The cluster-wide state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterState {
    /// Rok's cluster name (`${ROK_CLUSTERNAME}`).
    pub name: String,
    /// The version of the shared state (`upgrade-cluster` moves it).
    pub version: Version,
    /// The current master node.
    pub master: String,
    /// Every member, in order.
    pub members: Vec<String>,
    /// The configuration as `rok-config get` shows it (after `set`, before `apply`).
    pub config: BTreeMap<String, String>,
    /// The configuration the daemons run with (the last `rok-config apply`).
    pub applied_config: BTreeMap<String, String>,
    /// How many times `rok-config apply` ran.
    pub config_generation: u64,
    /// etcd SSL authentication and RBAC are enabled (`enable-etcd-auth`).
    pub etcd_auth: bool,
    /// The composer's maps.
    pub maps: Vec<MapState>,
    /// Map backups made by `map-upgrade` (`NAME~v3.bak`), until `rok-cluster-gc --delete-backups`.
    pub map_backups: Vec<String>,
    /// The Gateway store's applied migrations.
    pub gateway_migrations: Vec<String>,
    /// Lab setting, not Rok state: `rok-config get` also prints `host.KEY=VALUE` lines
    /// (see [`ApplianceOptions::config_get_host_lines`](super::ApplianceOptions::config_get_host_lines)).
    pub config_get_host_lines: bool,
}

/// One node's own state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeState {
    /// The node's name (hostname, member name, ssh alias).
    pub name: String,
    /// The appliance image on its BOOT disk: which upgrade tool is installed.
    pub boot_image: Version,
    /// The version `upgrade-node` brought the node to.
    pub version: Version,
    /// This node runs the Rok Gateway (gunicorn is started when it boots).
    pub gateway: bool,
    /// Its sshd runs (the lab keeps this up to date when it stops and starts hosts).
    pub up: bool,
}

/// Everything: the cluster and every node, as one snapshot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabState {
    /// Cluster-wide state.
    pub cluster: ClusterState,
    /// Every node, in member order.
    pub nodes: Vec<NodeState>,
    /// The Ganeti cluster under the appliances (empty without one).
    #[serde(default)]
    pub ganeti: GanetiState,
}

impl LabState {
    /// The node called `name`.
    pub fn node(&self, name: &str) -> Option<&NodeState> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// The node called `name`, to change.
    pub fn node_mut(&mut self, name: &str) -> Option<&mut NodeState> {
        self.nodes.iter_mut().find(|n| n.name == name)
    }
}

/// Reads and changes the state of one lab directory under its lock.
#[derive(Clone, Debug)]
pub struct StateStore {
    paths: LabPaths,
}

impl StateStore {
    /// The store of the lab at `paths`.
    pub fn new(paths: LabPaths) -> Self {
        Self { paths }
    }

    /// Takes the lab's lock (blocking) for as long as the returned file lives.
    fn lock(&self) -> Result<File, ApplianceError> {
        let path = self.paths.state_lock();
        let f = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| ApplianceError::io(&path, e))?;
        f.lock().map_err(|e| ApplianceError::io(&path, e))?;
        Ok(f)
    }

    /// A consistent snapshot of everything.
    pub fn read(&self) -> Result<LabState, ApplianceError> {
        let _lock = self.lock()?;
        self.load()
    }

    /// Changes the state with `change`; written only when it returns `Ok` (a failing
    /// tool leaves the state as it was).
    pub fn update<T, E>(
        &self,
        change: impl FnOnce(&mut LabState) -> Result<T, E>,
    ) -> Result<Result<T, E>, ApplianceError> {
        let _lock = self.lock()?;
        let mut state = self.load()?;
        let before = state.clone();
        let out = change(&mut state);
        if out.is_ok() && state != before {
            self.save(&state)?;
        }
        Ok(out)
    }

    /// Writes a whole new state (the lab's initial one).
    pub fn replace(&self, state: &LabState) -> Result<(), ApplianceError> {
        let _lock = self.lock()?;
        self.save(state)
    }

    fn load(&self) -> Result<LabState, ApplianceError> {
        let cluster: ClusterState = read_json(&self.paths.cluster_state())?;
        let nodes = cluster
            .members
            .iter()
            .map(|m| read_json(&self.paths.node_state(m)))
            .collect::<Result<_, _>>()?;
        let ganeti_path = self.paths.ganeti_state();
        let ganeti = if ganeti_path.exists() {
            read_json(&ganeti_path)?
        } else {
            GanetiState::default()
        };
        Ok(LabState {
            cluster,
            nodes,
            ganeti,
        })
    }

    fn save(&self, state: &LabState) -> Result<(), ApplianceError> {
        write_json_atomic(&self.paths.cluster_state(), &state.cluster)?;
        for node in &state.nodes {
            write_json_atomic(&self.paths.node_state(&node.name), node)?;
        }
        let ganeti_path = self.paths.ganeti_state();
        if state.ganeti != GanetiState::default() || ganeti_path.exists() {
            write_json_atomic(&ganeti_path, &state.ganeti)?;
        }
        Ok(())
    }
}

/// Reads a JSON file.
pub(crate) fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T, ApplianceError> {
    let text = std::fs::read_to_string(path).map_err(|e| ApplianceError::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| ApplianceError::Corrupt {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// Writes a JSON file through a temporary file and a rename, so that a tool killed while
/// writing (crash tests SIGKILL tools) leaves the old or the new file, never half of one.
pub(crate) fn write_json_atomic<T: Serialize>(
    path: &Path,
    value: &T,
) -> Result<(), ApplianceError> {
    let mut text = serde_json::to_string_pretty(value).map_err(|e| ApplianceError::Corrupt {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    text.push('\n');
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    let mut f = File::create(&tmp).map_err(|e| ApplianceError::io(&tmp, e))?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| ApplianceError::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| ApplianceError::io(path, e))
}
