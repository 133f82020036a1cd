//! RokE on a Ganeti cluster (seed 003, "This section describes the additional upgrade
//! steps that you need to perform if RokE is running on a Ganeti cluster").
//!
//! - Physical Ganeti hosts ("pnodes", `ganeti-1..N`): sshd hosts like the appliances, in
//!   their own mount, UTS and PID namespaces, playing a Debian Ganeti node. Their own
//!   `/usr/local/sbin` (first on root's PATH) holds an `apt-get` that installs the Rok
//!   packages into the lab state; overlays over `/usr/bin` and `/etc` (upper layers in the
//!   lab directory) give them `/usr/bin/kvm`, `/usr/bin/kvm-ifup-rok`,
//!   `/etc/ganeti/rok/rok.conf` and `/etc/default/snf-image` with `tcp:` endpoints,
//!   without touching the machine's `/usr/bin` or `/etc`.
//! - The appliances are the cluster's instances; the RokE master's runs on the first
//!   physical host, and boots the old image: the upgrade script re-installs it.
//! - `scripts/rok-cluster-upgrade-ganeti` is a Python 3 script the lab writes into
//!   [`LabPaths::ganeti_scripts_dir`](super::LabPaths::ganeti_scripts_dir): it checks
//!   its arguments and ROKE_PASSWORD / RAPI_PASSWORD, evacuates the master's physical
//!   host, re-installs the master, then waits for a confirmation on stdin before it
//!   migrates the instances back.

mod files;
mod options;
mod script;
mod setup;
mod state;

pub use files::{KVM_SCRIPTS, ROK_CONF, SNF_IMAGE, edited_paths};
pub use options::GanetiOptions;
pub use script::{ScriptStep, run_step};
pub use state::{GanetiState, InstanceState, PnodeState, ROK_PACKAGES, UpgradeScriptState};

pub(crate) use files::{host_file, tcp_endpoints};
pub(crate) use setup::{initial_ganeti_state, write_ganeti_files};
