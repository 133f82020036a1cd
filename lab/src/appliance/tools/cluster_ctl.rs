//! `rok-cluster-ctl member-list`: the members, their role (master/slave), whether they
//! are up, and the version each node runs.

use super::{Refusal, Tool, ToolResult};

const USAGE: &str = "usage: rok-cluster-ctl member-list";

pub(super) fn run(tool: &mut Tool, args: &[&str]) -> ToolResult {
    match args {
        ["member-list"] => member_list(tool),
        _ => Err(Refusal::usage(USAGE)),
    }
}

fn member_list(tool: &mut Tool) -> ToolResult {
    let state = tool.read()?;
    let mut rows = vec![[
        "NAME".to_string(),
        "ROLE".to_string(),
        "STATUS".to_string(),
        "VERSION".to_string(),
    ]];
    for node in &state.nodes {
        let role = if node.name == state.cluster.master {
            "master"
        } else {
            "slave"
        };
        rows.push([
            node.name.clone(),
            role.to_string(),
            if node.up { "up" } else { "down" }.to_string(),
            node.version.to_string(),
        ]);
    }
    let widths: Vec<usize> = (0..4)
        .map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0))
        .collect();
    for r in rows {
        let line = format!(
            "{:w0$}  {:w1$}  {:w2$}  {}",
            r[0],
            r[1],
            r[2],
            r[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2]
        );
        tool.say(line.trim_end());
    }
    Ok(())
}
