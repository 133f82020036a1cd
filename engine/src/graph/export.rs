//! The instance DAG as Graphviz dot or Mermaid, groups (and their elements) as clusters.

use std::fmt::Write;

use crate::graph::expand::ExecutionGraph;
use crate::plan::Plan;

/// Which drawing language.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GraphFormat {
    /// Graphviz.
    Dot,
    /// Mermaid flowchart.
    Mermaid,
}

/// The instances of one group element (`None`: a group without `for_each`).
type ElementCluster = (Option<String>, Vec<usize>);

// Instances of each group, then per element: (group id, [(element key, [instances])]).
fn clusters(plan: &Plan, graph: &ExecutionGraph) -> Vec<(String, Vec<ElementCluster>)> {
    let mut out: Vec<(String, Vec<ElementCluster>)> = plan
        .groups
        .iter()
        .map(|g| (g.id.value.clone(), Vec::new()))
        .collect();
    for (i, inst) in graph.instances.iter().enumerate() {
        let Some(g) = inst.group else { continue };
        let key = inst.group_element.as_ref().map(|(k, _)| k.clone());
        let elements = &mut out[g].1;
        match elements.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => v.push(i),
            None => elements.push((key, vec![i])),
        }
    }
    out
}

fn label(plan: &Plan, graph: &ExecutionGraph, i: usize) -> String {
    let inst = &graph.instances[i];
    let step = &plan.steps[inst.step];
    let mut l = format!("{}\\n({})", inst.id, step.type_name.value);
    if inst.finally {
        l.push_str("\\nfinally");
    }
    l
}

/// Draws `graph` in `format`.
pub fn export(plan: &Plan, graph: &ExecutionGraph, format: GraphFormat) -> String {
    match format {
        GraphFormat::Dot => dot(plan, graph),
        GraphFormat::Mermaid => mermaid(plan, graph),
    }
}

fn dot(plan: &Plan, graph: &ExecutionGraph) -> String {
    let q = |s: &str| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""));
    let mut out = String::new();
    let _ = writeln!(out, "digraph {} {{", q(&plan.name));
    let _ = writeln!(
        out,
        "  rankdir=LR;\n  node [shape=box, fontname=\"monospace\"];"
    );
    for (i, inst) in graph.instances.iter().enumerate() {
        if inst.group.is_none() {
            let _ = writeln!(
                out,
                "  n{i} [label=\"{}\"];",
                label(plan, graph, i).replace('"', "\\\"")
            );
        }
    }
    for (c, (group, elements)) in clusters(plan, graph).into_iter().enumerate() {
        let _ = writeln!(out, "  subgraph cluster_{c} {{\n    label={};", q(&group));
        for (e, (key, members)) in elements.into_iter().enumerate() {
            let indent = if key.is_some() { "      " } else { "    " };
            if let Some(key) = &key {
                let _ = writeln!(
                    out,
                    "    subgraph cluster_{c}_{e} {{\n      label={};",
                    q(key)
                );
            }
            for i in members {
                let _ = writeln!(
                    out,
                    "{indent}n{i} [label=\"{}\"];",
                    label(plan, graph, i).replace('"', "\\\"")
                );
            }
            if key.is_some() {
                let _ = writeln!(out, "    }}");
            }
        }
        let _ = writeln!(out, "  }}");
    }
    for (i, inst) in graph.instances.iter().enumerate() {
        for d in &inst.deps {
            let _ = writeln!(out, "  n{d} -> n{i};");
        }
    }
    out.push_str("}\n");
    out
}

fn mermaid(plan: &Plan, graph: &ExecutionGraph) -> String {
    let text = |s: String| s.replace("\\n", "<br/>").replace('"', "#quot;");
    let mut out = String::from("flowchart LR\n");
    for (i, inst) in graph.instances.iter().enumerate() {
        if inst.group.is_none() {
            let _ = writeln!(out, "  n{i}[\"{}\"]", text(label(plan, graph, i)));
        }
    }
    for (c, (group, elements)) in clusters(plan, graph).into_iter().enumerate() {
        let _ = writeln!(out, "  subgraph g{c}[\"{}\"]", text(group));
        for (e, (key, members)) in elements.into_iter().enumerate() {
            if let Some(key) = &key {
                let _ = writeln!(out, "    subgraph g{c}_{e}[\"{}\"]", text(key.clone()));
            }
            for i in members {
                let _ = writeln!(out, "      n{i}[\"{}\"]", text(label(plan, graph, i)));
            }
            if key.is_some() {
                out.push_str("    end\n");
            }
        }
        out.push_str("  end\n");
    }
    for (i, inst) in graph.instances.iter().enumerate() {
        for d in &inst.deps {
            let _ = writeln!(out, "  n{d} --> n{i}");
        }
    }
    out
}
