//! `rok-plan graph`: the instance DAG as Graphviz dot and as Mermaid, groups as clusters.

use std::collections::{BTreeMap, BTreeSet};

use crate::support::Test;

const PLAN: &str = r#"[plan]
name = "graph-test"

[params.nodes]
type = "list"
default = ["a", "b"]

[[step]]
id = "probe"
type = "noop"

[[group]]
id = "g"
for_each = "params.nodes"
needs = ["probe"]

[[step]]
id = "x"
group = "g"
type = "noop"

[[step]]
id = "y"
group = "g"
type = "shell"
needs = ["x"]
run = "echo {{ item }}"

[[step]]
id = "done"
type = "noop"
needs = ["g"]
"#;

fn graph(args: &[&str]) -> String {
    let run = Test::new()
        .file("plan.toml", PLAN)
        .args(["graph", "plan.toml"])
        .args(args)
        .run();
    run.code(0);
    assert_eq!(run.stderr, "");
    run.stdout
}

/// The edges every test expects, as instance ids: the group's `needs` hold for each of its
/// steps, and needing the group means needing every instance of it.
fn expected_edges() -> BTreeSet<(String, String)> {
    let mut edges = BTreeSet::new();
    for e in ["a", "b"] {
        edges.insert(("probe".to_string(), format!("g/{e}/x")));
        edges.insert(("probe".to_string(), format!("g/{e}/y")));
        edges.insert((format!("g/{e}/x"), format!("g/{e}/y")));
        edges.insert((format!("g/{e}/x"), "done".to_string()));
        edges.insert((format!("g/{e}/y"), "done".to_string()));
    }
    edges
}

/// Node names to instance ids, and edges between instance ids, read from `graph` output.
fn parse(text: &str, node: &regex::Regex, edge: &regex::Regex) -> BTreeSet<(String, String)> {
    let names: BTreeMap<String, String> = node
        .captures_iter(text)
        .map(|c| (c[1].to_string(), c[2].to_string()))
        .collect();
    edge.captures_iter(text)
        .map(|c| {
            let id = |n: &str| {
                names
                    .get(n)
                    .unwrap_or_else(|| panic!("edge to undeclared node {n}"))
                    .clone()
            };
            (id(&c[1]), id(&c[2]))
        })
        .collect()
}

#[test]
fn dot_has_clusters_per_group_and_element_and_the_right_edges() {
    let dot = graph(&["--format", "dot"]);
    assert!(dot.starts_with("digraph \"graph-test\" {"), "{dot}");
    assert!(dot.trim_end().ends_with('}'), "{dot}");
    assert!(dot.contains("subgraph cluster_"), "{dot}");
    assert!(
        dot.contains("label=\"g\";"),
        "the group is a labelled cluster:\n{dot}"
    );
    assert!(
        dot.contains("label=\"a\";") && dot.contains("label=\"b\";"),
        "each element is a cluster:\n{dot}"
    );
    let node = regex::Regex::new(r#"(?m)^\s*(n\d+) \[label="([^"\\]+)\\n"#).unwrap();
    let edge = regex::Regex::new(r"(?m)^\s*(n\d+) -> (n\d+);").unwrap();
    assert_eq!(parse(&dot, &node, &edge), expected_edges());
    insta::assert_snapshot!(dot);
}

#[test]
fn mermaid_has_subgraphs_and_the_same_edges() {
    let mermaid = graph(&["--format", "mermaid"]);
    assert!(mermaid.starts_with("flowchart"), "{mermaid}");
    let subgraphs = mermaid
        .lines()
        .filter(|l| l.trim_start().starts_with("subgraph "))
        .count();
    let ends = mermaid.lines().filter(|l| l.trim() == "end").count();
    assert_eq!(
        (subgraphs, ends),
        (3, 3),
        "one subgraph for the group, one per element:\n{mermaid}"
    );
    let node = regex::Regex::new(r#"(?m)^\s*(n\d+)\["([^"<]+)<br/>"#).unwrap();
    let edge = regex::Regex::new(r"(?m)^\s*(n\d+) --> (n\d+)$").unwrap();
    assert_eq!(parse(&mermaid, &node, &edge), expected_edges());
    insta::assert_snapshot!(mermaid);
}

#[test]
fn dot_is_the_default_format() {
    assert_eq!(graph(&[]), graph(&["--format", "dot"]));
}

#[test]
fn graph_follows_parameter_values() {
    let dot = graph(&["--set", "nodes=a,b,c"]);
    assert!(dot.contains("g/c/y"), "{dot}");
    let run = Test::new()
        .file("plan.toml", PLAN)
        .args(["graph", "plan.toml", "--set", "nodez=a"])
        .run();
    run.code(2);
    assert!(
        run.stderr.contains("rok_plan::unknown_set"),
        "{}",
        run.stderr
    );
    assert_eq!(run.stdout, "");
}

#[test]
fn graph_of_an_invalid_plan_is_refused() {
    let run = Test::new()
        .file(
            "plan.toml",
            &PLAN.replace("needs = [\"x\"]", "needs = [\"z\"]"),
        )
        .args(["graph", "plan.toml", "--format", "mermaid"])
        .run();
    run.code(2);
    assert!(
        run.stderr.contains("rok_plan::unknown_need"),
        "{}",
        run.stderr
    );
    assert_eq!(run.stdout, "");
}
