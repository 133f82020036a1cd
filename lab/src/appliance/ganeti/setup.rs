//! Setting up the Ganeti cluster of a new lab: its state, the physical hosts' disks, and
//! the upgrade script with the credentials it checks.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::super::error::ApplianceError;
use super::super::install::install_pnode_tools;
use super::super::options::ApplianceOptions;
use super::super::paths::LabPaths;
use super::super::state::write_json_atomic;
use super::files::write_initial_files;
use super::options::GanetiOptions;
use super::state::{GanetiState, InstanceState, PnodeState, ROK_PACKAGES, UpgradeScriptState};

/// The simulated script's text (a real Python 3 program).
const UPGRADE_SCRIPT: &str = include_str!("rok-cluster-upgrade-ganeti.py");

/// What the script reads next to itself (`scripts/.rok-lab.json`).
#[derive(Serialize, Deserialize)]
struct ScriptContext {
    lab_dir: std::path::PathBuf,
    lab_bin: std::path::PathBuf,
    credentials: std::path::PathBuf,
}

/// What the script checks its arguments and environment against.
#[derive(Serialize, Deserialize)]
struct Credentials {
    cluster_name: String,
    rapi_user: String,
    rapi_password: String,
    roke_password: String,
}

/// The Ganeti state a lab starts with: packages of the starting release; the RokE master
/// instance on the first physical host, the other appliances spread over all of them.
pub(crate) fn initial_ganeti_state(opts: &ApplianceOptions, g: &GanetiOptions) -> GanetiState {
    let version = opts.starting_version();
    let pnodes = g
        .pnodes
        .iter()
        .map(|name| PnodeState {
            name: name.clone(),
            packages: ROK_PACKAGES
                .iter()
                .map(|p| ((*p).to_string(), version))
                .collect(),
            up: false,
        })
        .collect();
    let instances = opts
        .hosts
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let home = g.pnodes[i % g.pnodes.len()].clone();
            InstanceState {
                name: name.clone(),
                node: home.clone(),
                home,
            }
        })
        .collect();
    GanetiState {
        cluster_name: g.cluster_name.clone(),
        rapi_user: g.rapi_user.clone(),
        master_pnode: g.master_pnode().to_string(),
        target: Some(opts.boot_image),
        pnodes,
        instances,
        upgrade_script: UpgradeScriptState::default(),
    }
}

/// Writes the physical hosts' disks (bin directory, edited files) and the upgrade script.
pub(crate) fn write_ganeti_files(
    paths: &LabPaths,
    opts: &ApplianceOptions,
    g: &GanetiOptions,
    lab_bin: &Path,
) -> Result<(), ApplianceError> {
    let roke = format!("{}.{}", opts.hosts[0], opts.cluster_name);
    for pnode in &g.pnodes {
        let dir = paths.host_dir(pnode);
        std::fs::create_dir_all(&dir).map_err(|e| ApplianceError::io(&dir, e))?;
        install_pnode_tools(paths, pnode, lab_bin)?;
        write_initial_files(paths, pnode, &roke)?;
    }
    write_json_atomic(
        &paths.ganeti_credentials(),
        &Credentials {
            cluster_name: g.cluster_name.clone(),
            rapi_user: g.rapi_user.clone(),
            rapi_password: g.rapi_password.clone(),
            roke_password: g.roke_password.clone(),
        },
    )?;
    let script = paths.ganeti_upgrade_script();
    let dir = script.parent().unwrap_or(paths.root());
    std::fs::create_dir_all(dir).map_err(|e| ApplianceError::io(dir, e))?;
    write_json_atomic(
        &dir.join(".rok-lab.json"),
        &ScriptContext {
            lab_dir: paths.root().to_path_buf(),
            lab_bin: lab_bin.to_path_buf(),
            credentials: paths.ganeti_credentials(),
        },
    )?;
    std::fs::write(&script, UPGRADE_SCRIPT).map_err(|e| ApplianceError::io(&script, e))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| ApplianceError::io(&script, e))
}
