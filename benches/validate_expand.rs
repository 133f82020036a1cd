//! Validating and expanding a generated plan of 10,000 step instances: a 1,000-element
//! `for_each` group of 10 steps (issue 3's target: under 100 ms on a 2-core machine).

use criterion::{Criterion, criterion_group, criterion_main};
use rok_plan::engine::graph::expand;
use rok_plan::engine::params::{ParamInputs, resolve_params};
use rok_plan::engine::{PlanSource, load_plan};

/// A plan with `elements` nodes in a rolling group of 10 chained steps.
fn generated_plan(elements: usize) -> (PlanSource, String) {
    let mut text = String::from(
        "[plan]\nname = \"bench\"\n\n[params.nodes]\ntype = \"list\"\n\n[params.image]\ndefault = \"v2\"\n\n\
         [[step]]\nid = \"start\"\ntype = \"noop\"\n\n\
         [[group]]\nid = \"nodes\"\nfor_each = \"params.nodes\"\nmax_parallel = 1\nneeds = [\"start\"]\n",
    );
    for s in 0..10 {
        let needs = if s == 0 {
            String::new()
        } else {
            format!("needs = [\"s{}\"]\n", s - 1)
        };
        text.push_str(&format!(
            "\n[[step]]\nid = \"s{s}\"\ngroup = \"nodes\"\ntype = \"shell\"\n{needs}\
             run = \"upgrade --node {{{{ item }}}} --image {{{{ params.image }}}} --step {s}\"\n"
        ));
    }
    let nodes: Vec<String> = (0..elements).map(|i| format!("node-{i}")).collect();
    (PlanSource::new("bench.toml", text), nodes.join(","))
}

fn bench(c: &mut Criterion) {
    let registry = rok_plan::steps::builtin();
    let (source, nodes) = generated_plan(1_000);
    c.bench_function("validate+expand 10k instances", |b| {
        b.iter(|| {
            let plan = load_plan(&source, &registry).expect("the generated plan is valid");
            let params = resolve_params(&plan, &ParamInputs::new().set(format!("nodes={nodes}")))
                .expect("params resolve");
            let graph = expand(&plan, &params).expect("the plan expands");
            assert_eq!(graph.instances.len(), 10_001);
            graph
        });
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = bench
}
criterion_main!(benches);
