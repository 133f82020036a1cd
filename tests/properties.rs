//! Whatever bytes a plan file holds, reading it ends in a plan or in diagnostics, never a
//! panic; and so do parameter resolution, expansion and preview of whatever reads.

use proptest::prelude::*;
use rok_plan::engine::graph::expand;
use rok_plan::engine::params::{ParamInputs, resolve_params};
use rok_plan::engine::preview::preview;
use rok_plan::engine::{PlanSource, StepRegistry, load_plan};

const SHIPPED: &[(&str, &str)] = &[
    (
        include_str!("../plans/rok-kubernetes-upgrade.toml"),
        include_str!("../plans/params/rok-kubernetes-upgrade.toml"),
    ),
    (
        include_str!("../plans/rok-v0.11.toml"),
        include_str!("../plans/params/rok-v0.11.toml"),
    ),
    (
        include_str!("../plans/rok-v0.12.toml"),
        include_str!("../plans/params/rok-v0.12.toml"),
    ),
    (
        include_str!("../plans/pmk-cluster-upgrade.toml"),
        include_str!("../plans/params/pmk-cluster-upgrade.toml"),
    ),
];

/// The whole pipeline on `text`: every stage either succeeds or reports diagnostics.
fn exercise(registry: &StepRegistry, text: &str, params: &str, sets: &[String]) {
    let source = PlanSource::new("fuzz.toml", text.to_string());
    let plan = match load_plan(&source, registry) {
        Ok(plan) => plan,
        Err(diags) => {
            assert!(
                !diags.is_empty(),
                "an error must carry at least one diagnostic"
            );
            for d in diags.iter() {
                assert!(!d.message().is_empty());
                if let Some(span) = d.span() {
                    assert!(
                        span.end <= d.source().text().len(),
                        "span {span:?} outside its source"
                    );
                }
            }
            return;
        }
    };
    let mut inputs = ParamInputs::new().file(PlanSource::new("params.toml", params.to_string()));
    for s in sets {
        inputs = inputs.set(s.clone());
    }
    let Ok(params) = resolve_params(&plan, &inputs) else {
        return;
    };
    let Ok(graph) = expand(&plan, &params) else {
        return;
    };
    let _ = preview(&plan, registry, &params, &graph);
}

#[derive(Debug, Clone)]
enum Mutation {
    Delete(usize, usize),
    Insert(usize, String),
    DuplicateLine(usize),
    SwapLines(usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 0usize..40).prop_map(|(at, len)| Mutation::Delete(at, len)),
        (any::<usize>(), "[\\[\\]{}=\"'#\\n a-z0-9_.,|%-]{0,12}")
            .prop_map(|(at, s)| Mutation::Insert(at, s)),
        any::<usize>().prop_map(Mutation::DuplicateLine),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::SwapLines(a, b)),
    ]
}

fn apply(text: &str, m: &Mutation) -> String {
    let boundary = |at: usize| {
        let mut at = at % (text.len() + 1);
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        at
    };
    match m {
        Mutation::Delete(at, len) => {
            let start = boundary(*at);
            let end = boundary((start + len).min(text.len()));
            format!("{}{}", &text[..start], &text[end.max(start)..])
        }
        Mutation::Insert(at, s) => {
            let at = boundary(*at);
            format!("{}{s}{}", &text[..at], &text[at..])
        }
        Mutation::DuplicateLine(i) => {
            let mut lines: Vec<&str> = text.lines().collect();
            if !lines.is_empty() {
                let i = i % lines.len();
                lines.insert(i, lines[i]);
            }
            lines.join("\n")
        }
        Mutation::SwapLines(a, b) => {
            let mut lines: Vec<&str> = text.lines().collect();
            if !lines.is_empty() {
                let (a, b) = (a % lines.len(), b % lines.len());
                lines.swap(a, b);
            }
            lines.join("\n")
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let registry = rok_plan::steps::builtin();
        exercise(&registry, &String::from_utf8_lossy(&bytes), "", &[]);
    }

    #[test]
    fn mutated_shipped_plans_never_panic(
        which in 0..SHIPPED.len(),
        mutations in proptest::collection::vec(mutation(), 1..6),
        sets in proptest::collection::vec("[a-z_]{1,12}=[ -~]{0,16}", 0..3),
    ) {
        let registry = rok_plan::steps::builtin();
        let (plan, params) = SHIPPED[which];
        let text = mutations.iter().fold(plan.to_string(), |t, m| apply(&t, m));
        exercise(&registry, &text, params, &sets);
    }
}

#[test]
fn shipped_plans_go_through_the_whole_pipeline() {
    let registry = rok_plan::steps::builtin();
    for (plan, params) in SHIPPED {
        let source = PlanSource::new("shipped.toml", plan.to_string());
        let plan = load_plan(&source, &registry).expect("shipped plans are valid");
        let params = resolve_params(
            &plan,
            &ParamInputs::new().file(PlanSource::new("p.toml", params.to_string())),
        )
        .expect("example parameters resolve");
        let graph = expand(&plan, &params).expect("shipped plans expand");
        let preview = preview(&plan, &registry, &params, &graph).expect("shipped plans render");
        assert_eq!(
            preview
                .waves
                .iter()
                .map(|w| w.instances.len())
                .sum::<usize>(),
            graph.instances.len()
        );
    }
}
