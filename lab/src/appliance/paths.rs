//! Where everything of a lab lives inside its directory.

use std::path::{Path, PathBuf};

/// The file layout of a lab directory (one per lab; hosts in `hosts/NAME/`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LabPaths {
    root: PathBuf,
}

impl LabPaths {
    /// The layout under `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The lab directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The ssh client configuration: one `Host NAME` block per appliance.
    pub fn ssh_config(&self) -> PathBuf {
        self.root.join("ssh_config")
    }

    /// The `known_hosts` the ssh_config points to (entries keyed by host alias).
    pub fn known_hosts(&self) -> PathBuf {
        self.root.join("known_hosts")
    }

    /// The private key the lab logs in with (its `.pub` is in `authorized_keys`).
    pub fn client_key(&self) -> PathBuf {
        self.root.join("client_key")
    }

    /// The `authorized_keys` every sshd of the lab reads.
    pub fn authorized_keys(&self) -> PathBuf {
        self.root.join("authorized_keys")
    }

    /// An empty file, bind-mounted over the login user's shell start-up files.
    pub fn empty_file(&self) -> PathBuf {
        self.root.join("empty")
    }

    /// The manifest: hosts, ports, and the processes to stop (`lab appliances down`).
    pub fn manifest(&self) -> PathBuf {
        self.root.join("lab.json")
    }

    /// The lock that serialises every change of the simulated state.
    pub fn state_lock(&self) -> PathBuf {
        self.root.join("state.lock")
    }

    /// The cluster-wide state (JSON).
    pub fn cluster_state(&self) -> PathBuf {
        self.root.join("cluster.json")
    }

    /// The injected faults (JSON).
    pub fn faults(&self) -> PathBuf {
        self.root.join("faults.json")
    }

    /// The journal of tool invocations (JSON lines).
    pub fn journal(&self) -> PathBuf {
        self.root.join("journal.jsonl")
    }

    /// Plan parameters for plans/rok-vX.toml that fit this lab (`X` = `0.11`, `0.12`).
    pub fn plan_params(&self, release: &str) -> PathBuf {
        self.root.join(format!("params-rok-v{release}.toml"))
    }

    /// The directory of one appliance.
    pub fn host_dir(&self, host: &str) -> PathBuf {
        self.root.join("hosts").join(host)
    }

    /// The appliance's `/etc/rok` (bind-mounted there inside its namespace).
    pub fn etc_rok(&self, host: &str) -> PathBuf {
        self.host_dir(host).join("etc-rok")
    }

    /// The appliance's `/usr/local/sbin`: the simulated Rok tools.
    pub fn bin_dir(&self, host: &str) -> PathBuf {
        self.host_dir(host).join("bin")
    }

    /// The node's own state (JSON).
    pub fn node_state(&self, host: &str) -> PathBuf {
        self.host_dir(host).join("node.json")
    }

    /// The appliance's ed25519 host key (private; `.pub` next to it).
    pub fn host_key(&self, host: &str) -> PathBuf {
        self.host_dir(host).join("ssh_host_ed25519_key")
    }

    /// A key that is not the appliance's, for [`KnownHostEntry::Wrong`](super::KnownHostEntry::Wrong).
    pub fn wrong_host_key(&self, host: &str) -> PathBuf {
        self.host_dir(host).join("wrong_host_key")
    }

    /// The appliance's sshd_config.
    pub fn sshd_config(&self, host: &str) -> PathBuf {
        self.host_dir(host).join("sshd_config")
    }

    /// sshd's log (its stderr, `-e`).
    pub fn sshd_log(&self, host: &str) -> PathBuf {
        self.host_dir(host).join("sshd.log")
    }

    /// sshd's PidFile (the pid inside the appliance's PID namespace: 1).
    pub fn sshd_pid(&self, host: &str) -> PathBuf {
        self.host_dir(host).join("sshd.pid")
    }

    /// A physical Ganeti host's changes to `/usr/bin` (the upper layer of the overlay
    /// mounted there inside its namespace): its `*kvm*` scripts.
    pub fn pnode_usr_bin(&self, host: &str) -> PathBuf {
        self.host_dir(host).join("usr-bin")
    }

    /// A physical Ganeti host's changes to `/etc` (the overlay's upper layer): its
    /// `ganeti/rok/rok.conf` and `default/snf-image`.
    pub fn pnode_etc(&self, host: &str) -> PathBuf {
        self.host_dir(host).join("etc")
    }

    /// The overlay work directories of a physical host (one per overlay, inside).
    pub fn pnode_overlay_work(&self, host: &str) -> PathBuf {
        self.host_dir(host).join("overlay-work")
    }

    /// The simulated Ganeti cluster's state (JSON).
    pub fn ganeti_state(&self) -> PathBuf {
        self.root.join("ganeti.json")
    }

    /// The passwords `rok-cluster-upgrade-ganeti` checks (JSON; kept out of the state,
    /// which `lab appliances state` prints).
    pub fn ganeti_credentials(&self) -> PathBuf {
        self.root.join("ganeti-credentials.json")
    }

    /// The plan's `ganeti_scripts_dir`: holds `scripts/rok-cluster-upgrade-ganeti`.
    pub fn ganeti_scripts_dir(&self) -> PathBuf {
        self.root.join("ganeti-upgrade")
    }

    /// The simulated `rok-cluster-upgrade-ganeti` (a Python script).
    pub fn ganeti_upgrade_script(&self) -> PathBuf {
        self.ganeti_scripts_dir()
            .join("scripts")
            .join("rok-cluster-upgrade-ganeti")
    }
}

/// The name of the file in an appliance's bin directory that tells the simulated tools
/// which lab and host they belong to. Hidden, so `ls /usr/local/sbin` shows only tools.
pub const TOOL_CONTEXT_FILE: &str = ".rok-lab.json";

/// Where the tools find [`TOOL_CONTEXT_FILE`] inside an appliance.
pub const TOOL_CONTEXT_IN_APPLIANCE: &str = "/usr/local/sbin/.rok-lab.json";
