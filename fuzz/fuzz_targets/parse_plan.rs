//! Any bytes as a plan file: reading, parameter resolution, expansion and preview must end
//! in a value or in diagnostics, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rok_plan_engine::graph::expand;
use rok_plan_engine::params::{resolve_params, ParamInputs};
use rok_plan_engine::preview::preview;
use rok_plan_engine::{load_plan, PlanSource};

fuzz_target!(|data: &[u8]| {
    let registry = rok_plan_steps::builtin();
    let source = PlanSource::new("fuzz.toml", String::from_utf8_lossy(data).into_owned());
    let Ok(plan) = load_plan(&source, &registry) else { return };
    let Ok(params) = resolve_params(&plan, &ParamInputs::new()) else { return };
    let Ok(graph) = expand(&plan, &params) else { return };
    let _ = preview(&plan, &registry, &params, &graph);
});
