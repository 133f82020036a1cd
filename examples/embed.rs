//! Running a plan from Rust: load and validate it, give parameters, pick a store, and
//! watch the run through its events.
//!
//! `cargo run --example embed` runs a small plan on an in-memory store and prints each
//! event as it comes; swap `MemoryStore` for `SledStore::open(dir, false)` to keep state.

use std::sync::Arc;

use rok_plan::engine::exec::{ExecutorBuilder, RunEvent, RunEventKind};
use rok_plan::engine::params::{ParamInputs, resolve_params};
use rok_plan::engine::state::{MemoryStore, RunOutcome};
use rok_plan::engine::{PlanSource, load_plan};

const PLAN: &str = r#"
[plan]
name = "embedded"

[params.nodes]
type = "list"

[[step]]
id = "inventory"
type = "shell"
run = "echo 'nodes: {{ params.nodes | join(\",\") }}'"
capture = { nodes = 'nodes: (\S+)' }

[[group]]
id = "rolling"
for_each = "params.nodes"
max_parallel = 1
needs = ["inventory"]

[[step]]
id = "upgrade"
group = "rolling"
type = "shell"
run = "echo upgrading {{ item }}"
"#;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let registry = rok_plan::steps::builtin();
    let plan = load_plan(&PlanSource::new("embedded.toml", PLAN), &registry)?;
    let params = resolve_params(&plan, &ParamInputs::new().set("nodes=n1,n2,n3"))?;
    let store = Arc::new(MemoryStore::new());

    let mut finished = Vec::new();
    let mut on_event = |event: &RunEvent| match &event.kind {
        RunEventKind::StepStarted {
            instance, action, ..
        } => println!("started  {instance}: {action}"),
        RunEventKind::StepFinished {
            instance, state, ..
        } => {
            println!("finished {instance}: {}", state.as_str());
            finished.push(instance.clone());
        }
        _ => {}
    };
    let report = ExecutorBuilder::new(registry, store)
        .parallel(4)
        .build()
        .execute(&plan, &params, "embedded.toml", &mut on_event)
        .await?;

    println!("run {}: {:?}", report.run_id, report.outcome);
    if report.outcome != RunOutcome::Succeeded || finished.len() != 4 {
        return Err(format!("expected 4 finished steps and success, got {finished:?}").into());
    }
    Ok(())
}
