//! The executor's own cost, with and without durable checkpoints:
//! - 10,000 independent `noop` steps (the target: under 2 s with durability on, by sharing
//!   one flush among the transitions of concurrent steps);
//! - a chain of 1,000 `noop` steps (every transition waits for its own flush);
//! - a 1,000-element rolling group of 3 steps.
//!
//! On the in-memory store there is no flush: time / steps is the per-step overhead of
//! rok-plan itself (the target: under 50 µs).

use std::sync::Arc;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rok_plan::engine::exec::{ExecutorBuilder, RunEvent};
use rok_plan::engine::params::{ParamInputs, resolve_params};
use rok_plan::engine::state::{MemoryStore, RunOutcome, RunStore, SledStore};
use rok_plan::engine::{Plan, PlanSource, load_plan};

fn wide(n: usize) -> String {
    let mut t = String::from("[plan]\nname = \"wide\"\n");
    for i in 0..n {
        t.push_str(&format!("[[step]]\nid = \"s{i}\"\ntype = \"noop\"\n"));
    }
    t
}

fn chain(n: usize) -> String {
    let mut t = String::from("[plan]\nname = \"chain\"\n[[step]]\nid = \"s0\"\ntype = \"noop\"\n");
    for i in 1..n {
        t.push_str(&format!(
            "[[step]]\nid = \"s{i}\"\ntype = \"noop\"\nneeds = [\"s{}\"]\n",
            i - 1
        ));
    }
    t
}

fn rolling(n: usize) -> String {
    let nodes: Vec<String> = (0..n).map(|i| format!("\"n{i}\"")).collect();
    format!(
        "[plan]\nname = \"rolling\"\n[params.nodes]\ntype = \"list\"\ndefault = [{}]\n\
         [[group]]\nid = \"g\"\nfor_each = \"params.nodes\"\nmax_parallel = 1\n\
         [[step]]\nid = \"a\"\ngroup = \"g\"\ntype = \"noop\"\n\
         [[step]]\nid = \"b\"\ngroup = \"g\"\ntype = \"noop\"\nneeds = [\"a\"]\n\
         [[step]]\nid = \"c\"\ngroup = \"g\"\ntype = \"noop\"\nneeds = [\"b\"]\n",
        nodes.join(", ")
    )
}

fn load(text: &str) -> Plan {
    load_plan(
        &PlanSource::new("bench.toml", text.to_string()),
        &rok_plan::steps::builtin(),
    )
    .expect("a valid plan")
}

fn run(rt: &tokio::runtime::Runtime, plan: &Plan, store: Arc<dyn RunStore>) {
    let params = resolve_params(plan, &ParamInputs::new()).expect("params");
    let report = rt
        .block_on(
            ExecutorBuilder::new(rok_plan::steps::builtin(), store)
                .parallel(64)
                .build()
                .execute(plan, &params, "bench.toml", &mut |_: &RunEvent| {}),
        )
        .expect("the run is driven");
    assert_eq!(report.outcome, RunOutcome::Succeeded);
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let cases = [
        ("10k-wide", wide(10_000), 10_000u64),
        ("1k-chain", chain(1_000), 1_000),
        ("1k-rolling-x3", rolling(1_000), 3_000),
    ];
    let mut group = c.benchmark_group("executor");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20));
    for (name, text, steps) in &cases {
        let plan = load(text);
        group.throughput(Throughput::Elements(*steps));
        group.bench_with_input(BenchmarkId::new("memory", name), &plan, |b, plan| {
            b.iter(|| run(&rt, plan, Arc::new(MemoryStore::new())));
        });
        group.bench_with_input(BenchmarkId::new("sled-durable", name), &plan, |b, plan| {
            b.iter_with_setup(
                || tempfile::tempdir().expect("a temp dir"),
                |dir| {
                    let store = SledStore::open(dir.path(), false).expect("a store");
                    run(&rt, plan, Arc::new(store));
                    dir
                },
            );
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
