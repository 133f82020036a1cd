//! `rok-composer-tool map-upgrade --all|NAME... | verify` and `rok-cluster-gc
//! --delete-backups` (seed 002 "Upgrade maps").

use super::super::initial::MAP_VERSION;
use super::super::state::MapState;
use super::super::version::V0_12;
use super::{Refusal, Tool, ToolResult};

const USAGE: &str =
    "usage: rok-composer-tool map-upgrade (--all | MAP...) | rok-composer-tool verify";

pub(super) fn run(tool: &mut Tool, args: &[&str]) -> ToolResult {
    match args {
        ["map-upgrade", which @ ..] if !which.is_empty() => {
            let state = tool.read()?;
            if tool.boot_image(&state)? < V0_12 {
                return Err(Refusal::usage("unknown command map-upgrade (new in v0.12)"));
            }
            map_upgrade(tool, which)
        }
        ["verify"] => verify(tool),
        _ => Err(Refusal::usage(USAGE)),
    }
}

fn applied_map_version(config: &std::collections::BTreeMap<String, String>) -> u32 {
    config
        .get(MAP_VERSION)
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
}

fn map_upgrade(tool: &mut Tool, which: &[&str]) -> ToolResult {
    let all = which == ["--all"];
    let upgraded = tool.update(|state| {
        if let Some(old) = state.nodes.iter().find(|n| n.version < V0_12) {
            return Err(Refusal::new(format!(
                "map-upgrade needs every node at v0.12.0: {} runs v{}",
                old.name, old.version
            )));
        }
        if applied_map_version(&state.cluster.applied_config) < 4 {
            return Err(Refusal::new(format!(
                "{MAP_VERSION}=4 is not applied: run `rok-config set {MAP_VERSION}=4` and `rok-config apply` first"
            )));
        }
        if !all
            && let Some(missing) = which
                .iter()
                .find(|w| !state.cluster.maps.iter().any(|m| m.name == **w))
        {
            return Err(Refusal::new(format!("no map named {missing}")));
        }
        let mut upgraded = Vec::new();
        let c = &mut state.cluster;
        for m in c
            .maps
            .iter_mut()
            .filter(|m| m.format < 4 && (all || which.contains(&m.name.as_str())))
        {
            let backup = format!("{}~v{}.bak", m.name, m.format);
            upgraded.push((m.name.clone(), m.format, backup.clone()));
            c.map_backups.push(backup);
            m.format = 4;
        }
        Ok(upgraded)
    })?;
    if upgraded.is_empty() {
        tool.say("All maps are already in the v4 format.");
    }
    for (name, from, backup) in upgraded {
        tool.say(format!(
            "Upgraded map {name} from v{from} to v4 (backup: {backup})"
        ));
    }
    Ok(())
}

fn verify(tool: &mut Tool) -> ToolResult {
    let state = tool.read()?;
    let want = applied_map_version(&state.cluster.applied_config);
    let behind: Vec<&MapState> = state
        .cluster
        .maps
        .iter()
        .filter(|m| m.format < want)
        .collect();
    for m in &state.cluster.maps {
        let ok = if m.format < want {
            "NOT UPGRADED"
        } else {
            "ok"
        };
        tool.say(format!("map {}: v{} {ok}", m.name, m.format));
    }
    if !behind.is_empty() {
        let names: Vec<&str> = behind.iter().map(|m| m.name.as_str()).collect();
        return Err(Refusal::new(format!(
            "maps not in the v{want} format: {}",
            names.join(", ")
        )));
    }
    tool.say("Everything is working as expected.");
    Ok(())
}

pub(super) fn gc(tool: &mut Tool, args: &[&str]) -> ToolResult {
    if args != ["--delete-backups"] {
        return Err(Refusal::usage("usage: rok-cluster-gc --delete-backups"));
    }
    let deleted = tool.update(|state| Ok(std::mem::take(&mut state.cluster.map_backups)))?;
    if deleted.is_empty() {
        tool.say("No map backups to delete.");
    }
    for b in deleted {
        tool.say(format!("Deleted map backup {b}"));
    }
    Ok(())
}
