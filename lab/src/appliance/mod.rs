//! The Rok appliance lab: simulated Rok appliances (seeds 002 and 003) that the product
//! reaches over real ssh, so that plans/rok-v0.11.toml and plans/rok-v0.12.toml can be
//! rehearsed end to end.
//!
//! Each appliance is a real `/usr/sbin/sshd` on 127.0.0.1 (its own port and ed25519 host
//! key) running in its own mount, UTS and PID namespaces: `hostname` prints the
//! appliance's name, `/etc/rok` and `/usr/local/sbin` are the appliance's own, and the
//! simulated Rok tools (`rok-cluster-ctl`, `rok-config`, `rok-cluster-upgrade-vX`,
//! `rok-composer-tool`, `rok-cluster-gc`, `rok-gw-manage`) are the `lab` binary under
//! their names, sharing one cluster state in the lab directory. Needs root.
//!
//! ```no_run
//! use rok_plan_lab::appliance::{ApplianceLab, ApplianceOptions};
//! let lab = ApplianceLab::start(ApplianceOptions::nodes(3))?;
//! let out = lab.ssh("rok-node-1").arg("hostname").output()?;
//! assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "rok-node-1");
//! // rok-plan execute plans/rok-v0.12.toml --params lab.plan_params("0.12")
//! //     --ssh-config lab.ssh_config()
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! With [`ApplianceOptions::ganeti`], the appliances are instances of a simulated Ganeti
//! cluster whose physical hosts are sshd hosts too (see [`ganeti`]).
//!
//! # Simplifications
//! - A BOOT disk swap is not visible: a host runs the image of
//!   [`ApplianceOptions::boot_image`] from the start (its upgrade tool is installed), or
//!   the one [`ApplianceLab::set_boot_image`] puts there. Powering off is
//!   [`ApplianceLab::stop_host`] (every process of the host dies), on is `start_host`.
//! - Daemons are not simulated, except the Gateway's gunicorn (a sleeping process).
//! - On Ganeti, re-installing the RokE master is, like a BOOT swap, a change of its tools
//!   without a power cycle; evacuating and migrating instances only moves them in the
//!   state ([`ganeti::GanetiState::instances`]): the appliances keep running.

mod binary;
mod control;
mod error;
mod faults;
mod host;
mod initial;
mod install;
mod journal;
mod keys;
mod lab;
mod manifest;
mod options;
mod params;
mod paths;
mod rules;
mod spawner;
mod ssh_files;
mod state;
mod user;
mod version;

pub mod cli;
pub mod ganeti;
pub mod tools;

pub use binary::{LAB_BIN_ENV, lab_binary};
pub use control::LabDir;
pub use error::ApplianceError;
pub use faults::{Fault, FaultAction};
pub use ganeti::GanetiOptions;
pub use install::{COMMON_TOOLS, PNODE_TOOLS, ToolContext};
pub use journal::{Invocation, read_journal};
pub use lab::{ApplianceLab, down};
pub use manifest::{Manifest, ManifestHost};
pub use options::{ApplianceOptions, KnownHostEntry};
pub use paths::{LabPaths, TOOL_CONTEXT_FILE, TOOL_CONTEXT_IN_APPLIANCE};
pub use state::{ClusterState, LabState, MapState, NodeState, StateStore};
pub use version::{V0_10, V0_11, V0_12, Version};
