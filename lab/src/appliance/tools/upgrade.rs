//! `rok-cluster-upgrade-vX upgrade-cluster|upgrade-node|enable-etcd-auth` (seeds 002 and
//! 003): the master's shared-state upgrade first, then each node, master first; v0.11
//! ends with enabling etcd authentication once every node runs v0.11.

use super::super::initial::{MASTER_CANDIDATES, master_capable_key};
use super::super::rules::{check_master_pinned, master_candidates};
use super::super::state::LabState;
use super::super::version::{V0_11, V0_12, Version};
use super::{Refusal, Tool, ToolResult};

pub(super) fn run(tool: &mut Tool, target: Version, args: &[&str]) -> ToolResult {
    let usage = if target == V0_11 {
        format!(
            "usage: {} upgrade-cluster | upgrade-node | enable-etcd-auth",
            target.upgrade_tool()
        )
    } else {
        format!(
            "usage: {} upgrade-cluster | upgrade-node",
            target.upgrade_tool()
        )
    };
    match args {
        ["upgrade-cluster"] => upgrade_cluster(tool, target),
        ["upgrade-node"] => upgrade_node(tool, target),
        ["enable-etcd-auth"] if target == V0_11 => enable_etcd_auth(tool),
        _ => Err(Refusal::usage(usage)),
    }
}

fn on_master(state: &LabState, host: &str, what: &str) -> Result<(), Refusal> {
    if state.cluster.master == host {
        Ok(())
    } else {
        Err(Refusal::new(format!(
            "{what} must run on the master node ({}); this is {host}",
            state.cluster.master
        )))
    }
}

fn upgrade_cluster(tool: &mut Tool, target: Version) -> ToolResult {
    let host = tool.host.clone();
    let from = tool.update(|state| {
        on_master(state, &host, "upgrade-cluster")?;
        let c = &state.cluster;
        if c.version == target {
            return Err(Refusal::new(format!(
                "the shared state of cluster {} is already at v{target}",
                c.name
            )));
        }
        if c.version != target.previous() {
            return Err(Refusal::new(format!(
                "cannot upgrade the shared state from v{} to v{target}: upgrade to v{} first",
                c.version,
                target.previous()
            )));
        }
        if target >= V0_12 && !c.etcd_auth {
            return Err(Refusal::new(
                "the v0.11 upgrade is not complete: etcd SSL authentication and RBAC are not enabled (rok-cluster-upgrade-v0.11.0 enable-etcd-auth)",
            ));
        }
        check_master_pinned(c).map_err(Refusal::new)?;
        let from = c.version;
        let c = &mut state.cluster;
        if target == V0_11 {
            // v0.11 replaces the candidate list by a master_capable flag per member.
            let candidates = master_candidates(c);
            for m in c.members.clone() {
                let capable = if candidates.contains(&m) { "True" } else { "False" };
                c.config.insert(master_capable_key(&m), capable.to_string());
            }
            c.config.remove(MASTER_CANDIDATES);
            c.applied_config = c.config.clone();
        }
        c.version = target;
        Ok(from)
    })?;
    tool.say(format!(
        "Upgrading the shared state of the Rok cluster from v{from} to v{target}..."
    ));
    tool.say("The cluster's shared state is upgraded.");
    Ok(())
}

fn upgrade_node(tool: &mut Tool, target: Version) -> ToolResult {
    let host = tool.host.clone();
    let conf_path = tool.paths.etc_rok(&host).join("daemons.conf");
    let from = tool.update(|state| {
        let master = state.cluster.master.clone();
        let cluster_version = state.cluster.version;
        let node = state
            .node(&host)
            .ok_or_else(|| Refusal::new(format!("{host} is not a member of the cluster")))?;
        if node.version == target {
            return Err(Refusal::new(format!("node {host} is already at v{target}")));
        }
        if node.version != target.previous() {
            return Err(Refusal::new(format!(
                "node {host} runs v{}: it must be at v{} to upgrade to v{target}",
                node.version,
                target.previous()
            )));
        }
        if cluster_version != target {
            return Err(Refusal::new(format!(
                "the cluster's shared state is at v{cluster_version}: run `{} upgrade-cluster` on the master ({master}) first",
                target.upgrade_tool()
            )));
        }
        if host != master
            && let Some(m) = state.node(&master)
            && m.version != target
        {
            return Err(Refusal::new(format!(
                "the master ({master}) runs v{}: upgrade the master node first",
                m.version
            )));
        }
        if target == V0_11 {
            let conf = std::fs::read_to_string(&conf_path).unwrap_or_default();
            if conf.contains("tcp://") {
                return Err(Refusal::new(
                    "/etc/rok/daemons.conf still uses tcp:// OpenStore endpoints; the v0.11 daemons need http:// endpoints with roles (seed 'OpenStore Endpoints')",
                ));
            }
        }
        let from = node.version;
        if let Some(n) = state.node_mut(&host) {
            n.version = target;
        }
        Ok(from)
    })?;
    tool.say(format!(
        "Upgrading node {host} from v{from} to v{target}..."
    ));
    tool.say(format!("Node {host} is upgraded to v{target}."));
    Ok(())
}

fn enable_etcd_auth(tool: &mut Tool) -> ToolResult {
    let host = tool.host.clone();
    tool.update(|state| {
        on_master(state, &host, "enable-etcd-auth")?;
        if state.cluster.version < V0_11 {
            return Err(Refusal::new(format!(
                "the cluster's shared state is at v{}: run upgrade-cluster first",
                state.cluster.version
            )));
        }
        if let Some(old) = state.nodes.iter().find(|n| n.version < V0_11) {
            return Err(Refusal::new(format!(
                "every node must run v0.11.0 first: {} runs v{}",
                old.name, old.version
            )));
        }
        if state.cluster.etcd_auth {
            return Err(Refusal::new(
                "etcd SSL authentication and RBAC are already enabled",
            ));
        }
        state.cluster.etcd_auth = true;
        Ok(())
    })?;
    tool.say("Enabled SSL authentication and RBAC in the etcd instances.");
    Ok(())
}
