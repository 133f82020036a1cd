//! `rok-plan resume [RUN]`: continue a run where it stopped.

use std::path::Path;

use rok_plan_engine::exec::ResumeOptions;
use rok_plan_engine::graph::expand;
use rok_plan_engine::params::{ParamInputs, resolve_params};
use rok_plan_engine::{PlanSource, load_plan};

use crate::cli::approve::check_approve_ids;
use crate::cli::args::ResumeArgs;
use crate::cli::execute::{Action, drive};
use crate::cli::{Flags, store};
use crate::exit::{CliError, ExitCode};

pub(crate) fn run(args: &ResumeArgs, flags: &Flags) -> Result<ExitCode, CliError> {
    // A run to resume lives in an existing store: do not create one where there is none.
    let store = store::open_existing(&flags.state, flags.force_unlock)?;
    let record = store::find_run(
        &*store,
        args.run_id.as_deref(),
        |r| !r.outcome.is_final(),
        "unfinished",
    )?;
    // The plan as it is now: its changes are shown and refused unless allowed. A plan file
    // that is gone is resumed from the text the run recorded.
    let source = match std::fs::read_to_string(Path::new(&record.plan_path)) {
        Ok(text) => PlanSource::new(record.plan_path.clone(), text),
        Err(_) => {
            if !flags.quiet {
                eprintln!(
                    "note: `{}` cannot be read; resuming with the plan text the run recorded",
                    record.plan_path
                );
            }
            PlanSource::new(
                format!("{} (recorded)", record.plan_path),
                record.plan_text.clone(),
            )
        }
    };
    let registry = rok_plan_steps::builtin();
    let plan = load_plan(&source, &registry)?;
    for set in &args.sets {
        let name = set.split_once('=').map_or(set.as_str(), |(n, _)| n.trim());
        if plan.params.get(name).is_some_and(|p| !p.secret) {
            return Err(CliError::Usage(format!(
                "`--set {name}=...`: a run's parameters are fixed when it starts; only secret parameters are given again on resume"
            )));
        }
    }
    let mut inputs = ParamInputs::new()
        .process_env()
        .stored(record.params.clone().into_iter().collect());
    for s in &args.sets {
        inputs = inputs.set(s.clone());
    }
    let params = resolve_params(&plan, &inputs)?;
    check_approve_ids(&args.run, &plan, &expand(&plan, &params)?)?;
    let options = ResumeOptions {
        assume_done: args.assume_done.clone(),
        rerun: args.rerun.clone(),
        allow_plan_change: args.allow_plan_change,
    };
    drive(
        flags,
        &args.run,
        store,
        &plan,
        &params,
        Action::Resume {
            run_id: record.id,
            options,
        },
    )
}
