//! How a lab is set up: how many appliances, their names, versions and host keys.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use super::ganeti::GanetiOptions;
use super::version::{V0_12, Version};

/// What `known_hosts` says about an appliance's host key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum KnownHostEntry {
    /// The appliance's real host key (strict checking passes).
    #[default]
    Correct,
    /// No entry: strict checking fails with an unknown host key.
    Missing,
    /// Another key: ssh reports a changed host key (possible man in the middle).
    Wrong,
}

/// Options of [`ApplianceLab::start`](super::ApplianceLab::start).
#[derive(Clone, Debug)]
pub struct ApplianceOptions {
    /// Names of the appliances, which are their hostnames, Rok member names and ssh
    /// aliases. The first one is the initial master. Default `rok-node-1..3`.
    pub hosts: Vec<String>,
    /// The lab directory; `None`: a new temporary directory, removed on drop. Keep it
    /// short: control sockets of ssh multiplexing live elsewhere, but logs name it.
    pub dir: Option<PathBuf>,
    /// The appliance image every host boots: the version whose upgrade tool
    /// (`rok-cluster-upgrade-vX`) is installed. The lab cannot see a manual BOOT disk swap,
    /// so the new image is in place from the start (or set per host with
    /// [`ApplianceLab::set_boot_image`](super::ApplianceLab::set_boot_image)). Default 0.12.0.
    pub boot_image: Version,
    /// The version the cluster's shared state and every node start at; `None`: the
    /// release before `boot_image` (what an upgrade to `boot_image` starts from).
    pub initial_version: Option<Version>,
    /// Rok's cluster name (`${ROK_CLUSTERNAME}`; master candidates are `HOST.NAME`).
    /// Default `rok-prod`, as in plans/params/rok-v0.11.toml.
    pub cluster_name: String,
    /// For clusters before v0.11: the initial `cluster.master_candidates` (member names
    /// without the cluster suffix); `None`: unset, every member may become master.
    pub initial_master_candidates: Option<Vec<String>>,
    /// `rok-config get` also prints the local node's settings as `host.KEY=VALUE` lines
    /// (`host.master_capable=True`), which seed 002's one-liner filters with
    /// `grep -v "^host"`. Default true (the seed shows the real tool does).
    pub config_get_host_lines: bool,
    /// Hosts that run the Rok S3 daemon: their `/etc/rok/daemons.conf` has an `[s3d.0]`
    /// section. Default: every host.
    pub s3d_hosts: Option<Vec<String>>,
    /// The master runs the Rok Gateway: a simulated `gunicorn` process is started when it
    /// boots (stop and start it with `rok-gw-service stop|start`). Default true.
    pub gateway: bool,
    /// The names of the maps the composer starts with (all in the v3 format).
    pub maps: Vec<String>,
    /// What `known_hosts` says about each host (absent: [`KnownHostEntry::Correct`]).
    pub known_hosts: BTreeMap<String, KnownHostEntry>,
    /// sshd's `MaxSessions` (sessions per connection). Default 10, sshd's own default.
    pub max_sessions: u32,
    /// sshd's `LogLevel`. Default `VERBOSE` (logins and disconnects).
    pub sshd_log_level: String,
    /// How long to wait for every sshd to accept connections.
    pub ready_timeout: Duration,
    /// The appliances run on a Ganeti cluster: its physical hosts are started too, and
    /// the RokE master (the first host) boots the starting version's image, which the
    /// simulated `rok-cluster-upgrade-ganeti` re-installs with `boot_image`. Default none.
    pub ganeti: Option<GanetiOptions>,
    /// Leave the appliances running when the lab is dropped or its process ends (what
    /// `lab appliances up --detach` does); stop them with [`down`](super::down).
    pub detach: bool,
}

impl Default for ApplianceOptions {
    fn default() -> Self {
        Self {
            hosts: Self::numbered_hosts(3),
            dir: None,
            boot_image: V0_12,
            initial_version: None,
            cluster_name: "rok-prod".into(),
            initial_master_candidates: None,
            config_get_host_lines: true,
            s3d_hosts: None,
            gateway: true,
            maps: vec!["map-1".into(), "map-2".into(), "map-3".into()],
            known_hosts: BTreeMap::new(),
            max_sessions: 10,
            sshd_log_level: "VERBOSE".into(),
            ready_timeout: Duration::from_secs(20),
            ganeti: None,
            detach: false,
        }
    }
}

impl ApplianceOptions {
    /// Options for `n` appliances `rok-node-1..n`, everything else default.
    pub fn nodes(n: usize) -> Self {
        Self {
            hosts: Self::numbered_hosts(n),
            ..Self::default()
        }
    }

    /// Adds a Ganeti cluster of `pnodes` physical hosts `ganeti-1..pnodes` (default
    /// names and credentials: [`GanetiOptions::pnodes`]).
    pub fn with_ganeti(mut self, pnodes: usize) -> Self {
        self.ganeti = Some(GanetiOptions::pnodes(pnodes));
        self
    }

    /// The image `host` boots first: [`boot_image`](Self::boot_image), except the RokE
    /// master on Ganeti, which the upgrade script re-installs.
    pub fn first_boot_image(&self, host: &str) -> Version {
        if self.ganeti.is_some() && self.hosts.first().is_some_and(|m| m == host) {
            self.starting_version()
        } else {
            self.boot_image
        }
    }

    /// The physical Ganeti hosts (none without Ganeti).
    pub fn pnode_list(&self) -> Vec<String> {
        self.ganeti
            .as_ref()
            .map(|g| g.pnodes.clone())
            .unwrap_or_default()
    }

    /// `rok-node-1..n`.
    pub fn numbered_hosts(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("rok-node-{i}")).collect()
    }

    /// The version the cluster and nodes start at.
    pub fn starting_version(&self) -> Version {
        self.initial_version
            .unwrap_or_else(|| self.boot_image.previous())
    }

    /// The hosts that run s3d.
    pub fn s3d_host_list(&self) -> Vec<String> {
        self.s3d_hosts.clone().unwrap_or_else(|| self.hosts.clone())
    }
}
