//! What the simulated `rok-cluster-upgrade-ganeti` does to the lab, one step at a time:
//! the Python script calls `lab appliances ganeti-script --dir DIR STEP` for each (it keeps
//! the arguments, the password checks, the messages and the confirmation prompt itself).

use clap::Subcommand;

use super::super::control::LabDir;
use super::super::error::ApplianceError;
use super::super::install::install_tools;
use super::super::state::LabState;
use super::files::tcp_endpoints;
use super::state::ROK_PACKAGES;

/// The steps of the upgrade script, in the order it takes them.
#[derive(Clone, Debug, Subcommand)]
pub enum ScriptStep {
    /// Check that INSTANCE is the RokE master instance and count a run of the script.
    Start {
        /// The RokE master instance (the script's `--instance`).
        #[arg(long)]
        instance: String,
    },
    /// Move every instance off the RokE master's physical host.
    Evacuate,
    /// Re-install the RokE master instance with the new appliance image.
    ReinstallMaster {
        /// The RokE master instance.
        #[arg(long)]
        instance: String,
    },
    /// Move the evacuated instances back to the RokE master's physical host.
    MigrateBack,
}

fn refused(message: impl Into<String>) -> ApplianceError {
    ApplianceError::GanetiRefused(message.into())
}

/// Changes the state under the lab's lock; `change` may refuse (nothing is written then).
fn update<T>(
    lab: &LabDir,
    change: impl FnOnce(&mut LabState) -> Result<T, ApplianceError>,
) -> Result<T, ApplianceError> {
    super::super::state::StateStore::new(lab.paths().clone()).update(change)?
}

/// Runs `step` against the lab at `lab`; returns the lines the script prints.
pub fn run_step(lab: &LabDir, step: &ScriptStep) -> Result<Vec<String>, ApplianceError> {
    match step {
        ScriptStep::Start { instance } => start(lab, instance),
        ScriptStep::Evacuate => evacuate(lab),
        ScriptStep::ReinstallMaster { instance } => reinstall_master(lab, instance),
        ScriptStep::MigrateBack => migrate_back(lab),
    }
}

fn start(lab: &LabDir, instance: &str) -> Result<Vec<String>, ApplianceError> {
    update(lab, |s| {
        let g = &s.ganeti;
        let inst = g
            .instances
            .iter()
            .find(|i| i.name == instance)
            .ok_or_else(|| refused(format!("no Ganeti instance named {instance}")))?;
        if s.cluster.master != instance {
            return Err(refused(format!(
                "{instance} is not the RokE master (the master is {})",
                s.cluster.master
            )));
        }
        let line = format!("RokE master {instance} runs on {}", inst.node);
        s.ganeti.upgrade_script.runs += 1;
        Ok(vec![line])
    })
}

fn evacuate(lab: &LabDir) -> Result<Vec<String>, ApplianceError> {
    update(lab, |s| {
        let g = &mut s.ganeti;
        let from = g.master_pnode.clone();
        let targets: Vec<String> = g
            .pnodes
            .iter()
            .filter(|p| p.name != from)
            .map(|p| p.name.clone())
            .collect();
        if targets.is_empty() {
            return Err(refused(format!("cannot evacuate {from}: no other node")));
        }
        if let Some(down) = g.pnodes.iter().find(|p| p.name != from && !p.up) {
            return Err(refused(format!(
                "cannot evacuate {from}: node {} is offline",
                down.name
            )));
        }
        let mut lines = Vec::new();
        let mut next = targets.iter().cycle();
        for inst in g.instances.iter_mut().filter(|i| i.node == from) {
            if let Some(to) = next.next() {
                lines.push(format!("migrating {} from {from} to {to}", inst.name));
                inst.node = to.clone();
            }
        }
        lines.push(format!("{from} is evacuated"));
        g.upgrade_script.evacuated = true;
        Ok(lines)
    })
}

fn reinstall_master(lab: &LabDir, instance: &str) -> Result<Vec<String>, ApplianceError> {
    let state = lab.state()?;
    let target = state
        .ganeti
        .target
        .ok_or_else(|| refused("the lab has no Ganeti cluster"))?;
    if state.node(instance).is_none() {
        return Err(refused(format!("no Ganeti instance named {instance}")));
    }
    let lab_bin = lab.manifest()?.lab_bin;
    // The new image's tools first, then the state that says so (as set_boot_image does).
    install_tools(lab.paths(), instance, target, &lab_bin)?;
    update(lab, |s| {
        if let Some(n) = s.node_mut(instance) {
            n.boot_image = target;
        }
        s.ganeti.upgrade_script.master_reinstalled = Some(target);
        Ok(vec![format!(
            "re-installed {instance} with the Rok {target} appliance image"
        )])
    })
}

fn migrate_back(lab: &LabDir) -> Result<Vec<String>, ApplianceError> {
    let ready_files = |pnode: &str| tcp_endpoints(lab.paths(), pnode).is_empty();
    let master_pnode = lab.state()?.ganeti.master_pnode;
    let files_ready = ready_files(&master_pnode);
    update(lab, |s| {
        let g = &mut s.ganeti;
        if !g.upgrade_script.evacuated {
            return Err(refused(format!("{master_pnode} was not evacuated")));
        }
        let packages_ready = match (g.pnode(&master_pnode), g.target) {
            (Some(p), Some(t)) => ROK_PACKAGES
                .iter()
                .all(|name| p.packages.get(*name).is_some_and(|v| *v >= t)),
            _ => false,
        };
        if g.pnode(&master_pnode).is_some_and(|p| !p.up) {
            return Err(refused(format!("node {master_pnode} is offline")));
        }
        let mut lines = Vec::new();
        for inst in g.instances.iter_mut().filter(|i| i.home == master_pnode) {
            if inst.node != inst.home {
                lines.push(format!(
                    "migrating {} from {} back to {master_pnode}",
                    inst.name, inst.node
                ));
                inst.node = inst.home.clone();
            }
        }
        g.upgrade_script.migrated_back = true;
        g.upgrade_script.master_pnode_ready_at_migration = Some(packages_ready && files_ready);
        lines.push("every instance is back".to_string());
        Ok(lines)
    })
}
