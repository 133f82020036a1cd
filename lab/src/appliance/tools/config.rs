//! `rok-config get [KEY]`, `rok-config set KEY=VALUE...`, `rok-config apply`: the
//! cluster-wide configuration. Keys are checked the way the real tool would: only known
//! keys, values of the right form, and keys of the cluster's version (master eligibility
//! is `cluster.master_candidates` before v0.11 and `cluster.members.HOST.master_capable`
//! from v0.11 on).

use super::super::initial::{MAP_VERSION, MASTER_CANDIDATES, master_capable_key};
use super::super::rules::uses_master_capable;
use super::super::state::{ClusterState, LabState};
use super::super::version::V0_12;
use super::{Refusal, Tool, ToolResult};

const USAGE: &str = "usage: rok-config get [KEY] | rok-config set KEY=VALUE... | rok-config apply";
const MAPTREE_DEGREE: &str = "composerd.maptree_degree";

pub(super) fn run(tool: &mut Tool, args: &[&str]) -> ToolResult {
    match args {
        ["get"] => get(tool, None),
        ["get", key] => get(tool, Some(key)),
        ["set", pairs @ ..] if !pairs.is_empty() => set(tool, pairs),
        ["apply"] => apply(tool),
        _ => Err(Refusal::usage(USAGE)),
    }
}

/// The `host.KEY` lines: the local node's own view of its settings.
fn host_lines(c: &ClusterState, host: &str) -> Vec<(String, String)> {
    if !c.config_get_host_lines || !uses_master_capable(c) {
        return Vec::new();
    }
    c.config
        .get(&master_capable_key(host))
        .map(|v| vec![("host.master_capable".to_string(), v.clone())])
        .unwrap_or_default()
}

fn get(tool: &mut Tool, key: Option<&str>) -> ToolResult {
    let state = tool.read()?;
    let c = &state.cluster;
    let mut lines: Vec<(String, String)> = c
        .config
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    lines.extend(host_lines(c, &tool.host));
    match key {
        None => {
            for (k, v) in lines {
                tool.say(format!("{k}={v}"));
            }
            Ok(())
        }
        Some(key) => match lines.into_iter().find(|(k, _)| k == key) {
            Some((k, v)) => {
                tool.say(format!("{k}={v}"));
                Ok(())
            }
            None => Err(Refusal::new(format!("unknown configuration key {key}"))),
        },
    }
}

fn set(tool: &mut Tool, pairs: &[&str]) -> ToolResult {
    let host = tool.host.clone();
    let changes = tool.update(|state| {
        let mut changes = Vec::new();
        for pair in pairs {
            let (key, value) = pair
                .split_once('=')
                .ok_or_else(|| Refusal::usage(format!("{pair:?} is not KEY=VALUE")))?;
            let key = checked_key(state, &host, key, value)?;
            let old = state.cluster.config.insert(key.clone(), value.to_string());
            changes.push((key, old, value.to_string()));
        }
        Ok(changes)
    })?;
    for (key, old, new) in changes {
        match old {
            Some(old) if old == new => tool.say(format!("{key}={new} (unchanged)")),
            Some(old) => tool.say(format!("{key}: {old} -> {new}")),
            None => tool.say(format!("{key}={new}")),
        }
    }
    Ok(())
}

/// The key a `set` changes (`host.X` is this node's `cluster.members.HOST.X`), if the
/// key and value are acceptable at the cluster's version.
fn checked_key(state: &LabState, host: &str, key: &str, value: &str) -> Result<String, Refusal> {
    let c = &state.cluster;
    let bool_value = || {
        if value == "True" || value == "False" {
            Ok(())
        } else {
            Err(Refusal::new(format!(
                "{key}: {value:?} is not True or False"
            )))
        }
    };
    if key == "host.master_capable" {
        return checked_key(state, host, &master_capable_key(host), value);
    }
    if let Some(member) = key
        .strip_prefix("cluster.members.")
        .and_then(|rest| rest.strip_suffix(".master_capable"))
    {
        if !uses_master_capable(c) {
            return Err(Refusal::new(format!(
                "unknown configuration key {key}: a v{} cluster has no per-member master_capable (new in v0.11); master eligibility is {MASTER_CANDIDATES}",
                c.version
            )));
        }
        if !c.members.iter().any(|m| m == member) {
            return Err(Refusal::new(format!(
                "{key}: no cluster member named {member} (members: {})",
                c.members.join(", ")
            )));
        }
        bool_value()?;
        return Ok(key.to_string());
    }
    match key {
        MASTER_CANDIDATES => {
            if uses_master_capable(c) {
                return Err(Refusal::new(format!(
                    "unknown configuration key {key}: since v0.11 each member has cluster.members.HOST.master_capable"
                )));
            }
            for entry in value.split(',') {
                let member = entry.strip_suffix(&format!(".{}", c.name));
                if !member.is_some_and(|m| c.members.iter().any(|x| x == m)) {
                    return Err(Refusal::new(format!(
                        "{key}: {entry:?} is not a member as HOST.{} (members: {})",
                        c.name,
                        c.members.join(", ")
                    )));
                }
            }
            Ok(key.to_string())
        }
        MAP_VERSION => {
            match value {
                "3" => {}
                "4" if c.version >= V0_12 => {}
                "4" => {
                    return Err(Refusal::new(format!(
                        "{key}=4: the v4 map format needs the cluster's shared state at v0.12.0 (it is at v{})",
                        c.version
                    )));
                }
                _ => return Err(Refusal::new(format!("{key}: {value:?} is not 3 or 4"))),
            }
            Ok(key.to_string())
        }
        MAPTREE_DEGREE => {
            if c.version < V0_12 {
                return Err(Refusal::new(format!(
                    "unknown configuration key {key} (hierarchical maps are new in v0.12)"
                )));
            }
            if value.parse::<u32>().map_or(true, |d| d < 2) {
                return Err(Refusal::new(format!(
                    "{key}: {value:?} is not an integer >= 2"
                )));
            }
            Ok(key.to_string())
        }
        "cluster.name" => Err(Refusal::new("cluster.name is read-only")),
        _ if c.config.contains_key(key) => Ok(key.to_string()),
        _ => Err(Refusal::new(format!("unknown configuration key {key}"))),
    }
}

fn apply(tool: &mut Tool) -> ToolResult {
    let generation = tool.update(|state| {
        if state
            .cluster
            .config
            .get(MAP_VERSION)
            .is_some_and(|v| v == "4")
            && let Some(old) = state.nodes.iter().find(|n| n.version < V0_12)
        {
            return Err(Refusal::new(format!(
                "{MAP_VERSION}=4 needs every node at v0.12.0: {} runs v{}",
                old.name, old.version
            )));
        }
        let c = &mut state.cluster;
        if c.applied_config != c.config {
            c.applied_config = c.config.clone();
            c.config_generation += 1;
        }
        Ok(c.config_generation)
    })?;
    tool.say(format!("Configuration applied (generation {generation})."));
    Ok(())
}
