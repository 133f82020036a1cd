//! Reading plans and parameters from files, the one way every command does it.

use std::path::Path;

use rok_plan_engine::graph::{ExecutionGraph, expand};
use rok_plan_engine::params::{ParamInputs, Params, resolve_params};
use rok_plan_engine::{Plan, PlanSource, StepRegistry, load_plan};

use crate::cli::args::ParamArgs;
use crate::exit::CliError;

/// The text of `path`, named as the user wrote it.
pub(crate) fn read_source(path: &Path) -> Result<PlanSource, CliError> {
    let text = std::fs::read_to_string(path).map_err(|source| CliError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(PlanSource::new(path.display().to_string(), text))
}

/// A plan, its parameter values and its instances.
pub(crate) struct Loaded {
    pub(crate) plan: Plan,
    pub(crate) params: Params,
    pub(crate) graph: ExecutionGraph,
    pub(crate) registry: StepRegistry,
}

/// The parameter inputs of the command line (and the process environment).
pub(crate) fn param_inputs(args: &ParamArgs) -> Result<ParamInputs, CliError> {
    let mut inputs = ParamInputs::new().process_env();
    for s in &args.sets {
        inputs = inputs.set(s.clone());
    }
    if let Some(path) = &args.params {
        inputs = inputs.file(read_source(path)?);
    }
    Ok(inputs)
}

/// Loads, validates, resolves parameters and expands.
pub(crate) fn load(path: &Path, args: &ParamArgs) -> Result<Loaded, CliError> {
    let registry = rok_plan_steps::builtin();
    let source = read_source(path)?;
    let plan = load_plan(&source, &registry)?;
    let params = resolve_params(&plan, &param_inputs(args)?)?;
    let graph = expand(&plan, &params)?;
    Ok(Loaded {
        plan,
        params,
        graph,
        registry,
    })
}
