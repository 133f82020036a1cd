//! Rules of a Rok cluster that several tools check: who may become master, and which
//! form master eligibility takes at a given version.

use super::initial::{MASTER_CANDIDATES, master_capable_key};
use super::state::ClusterState;
use super::version::V0_11;

/// From v0.11 on, each member has `cluster.members.HOST.master_capable`; before, the
/// cluster has one `cluster.master_candidates` list of `HOST.CLUSTERNAME`.
pub(crate) fn uses_master_capable(c: &ClusterState) -> bool {
    c.version >= V0_11
}

/// The members named in `cluster.master_candidates` (all of them when it is unset).
pub(crate) fn master_candidates(c: &ClusterState) -> Vec<String> {
    match c.config.get(MASTER_CANDIDATES) {
        None => c.members.clone(),
        Some(list) => list
            .split(',')
            .filter_map(|entry| {
                entry
                    .trim()
                    .strip_suffix(&format!(".{}", c.name))
                    .map(str::to_string)
            })
            .collect(),
    }
}

/// Whether `member` may become master.
pub(crate) fn is_master_capable(c: &ClusterState, member: &str) -> bool {
    if uses_master_capable(c) {
        c.config
            .get(&master_capable_key(member))
            .is_some_and(|v| v == "True")
    } else {
        master_candidates(c).iter().any(|m| m == member)
    }
}

/// Seeds 002/003: before the master is upgraded it must be the only node that can
/// become master, so that no failover moves the master to a node still on the old
/// version. `Err` says what is wrong.
pub(crate) fn check_master_pinned(c: &ClusterState) -> Result<(), String> {
    let capable: Vec<&String> = c
        .members
        .iter()
        .filter(|m| is_master_capable(c, m))
        .collect();
    if capable.len() == 1 && *capable[0] == c.master {
        return Ok(());
    }
    let how = if uses_master_capable(c) {
        format!(
            "rok-config set cluster.members.HOST.master_capable=False for every node but {}",
            c.master
        )
    } else {
        format!("rok-config set {MASTER_CANDIDATES}={}.{}", c.master, c.name)
    };
    let names: Vec<&str> = capable.iter().map(|s| s.as_str()).collect();
    Err(format!(
        "the master {} is not the only master-capable node (master capable: {}): a failover could move the master to a node on the old version; {how}",
        c.master,
        if names.is_empty() {
            "none".to_string()
        } else {
            names.join(", ")
        },
    ))
}
