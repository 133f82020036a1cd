//! The state store's costs on this machine: one durable commit of a step transition,
//! a batch of 100 transitions in one commit, and opening a store of 10,000 steps.

use std::collections::BTreeMap;

use criterion::{Criterion, criterion_group, criterion_main};
use rok_plan::engine::state::{
    Mutation, RunOutcome, RunRecord, RunStore, SledStore, StepRecord, StepState,
};

fn run(id: &str) -> RunRecord {
    RunRecord {
        v: 1,
        id: id.into(),
        plan_name: "bench".into(),
        plan_path: "bench.toml".into(),
        plan_text: "[plan]\nname = \"bench\"\n".into(),
        plan_hash: "0".into(),
        params: BTreeMap::new(),
        secret_params: Vec::new(),
        started_at_ms: 1,
        ended_at_ms: None,
        outcome: RunOutcome::Running,
        settings: BTreeMap::new(),
    }
}

fn step(run: &str, i: usize) -> StepRecord {
    StepRecord {
        v: 1,
        run_id: run.into(),
        instance_id: format!("nodes/n{i}/upgrade"),
        state: StepState::Succeeded,
        attempts: 1,
        started_at_ms: Some(1),
        ended_at_ms: Some(2),
        exit_status: Some(0),
        last_error: None,
        outputs: BTreeMap::new(),
        stdout: Some("upgraded".into()),
        spec_hash: "0".into(),
        failure_ignored: false,
    }
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("a temp dir");
    let store = SledStore::open(dir.path(), false).expect("a store");
    store.commit(&[Mutation::Run(run("r"))]).expect("a run");
    let mut i = 0;
    c.bench_function("store/commit one transition (durable)", |b| {
        b.iter(|| {
            i += 1;
            store
                .commit(&[Mutation::Step(step("r", i))])
                .expect("a commit");
        });
    });
    c.bench_function("store/commit 100 transitions at once (durable)", |b| {
        b.iter(|| {
            let batch: Vec<Mutation> = (0..100).map(|k| Mutation::Step(step("r", k))).collect();
            store.commit(&batch).expect("a commit");
        });
    });
    drop(store);

    let big = tempfile::tempdir().expect("a temp dir");
    {
        let store = SledStore::open(big.path(), false).expect("a store");
        store.commit(&[Mutation::Run(run("big"))]).expect("a run");
        let batch: Vec<Mutation> = (0..10_000)
            .map(|k| Mutation::Step(step("big", k)))
            .collect();
        store.commit(&batch).expect("10,000 steps");
    }
    let mut group = c.benchmark_group("store");
    group.sample_size(10);
    group.bench_function("open a store of 10,000 steps and load its run", |b| {
        b.iter(|| {
            let store = SledStore::open(big.path(), false).expect("it opens");
            store
                .load_run("big")
                .expect("it loads")
                .expect("the run is there")
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
