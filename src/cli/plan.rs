//! `rok-plan plan PLAN`: what a run would do, rendered, in parallel waves. Runs nothing.

use rok_plan_engine::preview::preview;

use crate::cli::args::PlanArgs;
use crate::cli::load::load;
use crate::cli::{Flags, OutputFormat};
use crate::exit::{CliError, ExitCode};
use crate::report;

pub(crate) fn run(args: &PlanArgs, flags: &Flags) -> Result<ExitCode, CliError> {
    let loaded = load(&args.plan, &args.params)?;
    let preview = preview(
        &loaded.plan,
        &loaded.registry,
        &loaded.params,
        &loaded.graph,
    )?;
    match flags.output {
        OutputFormat::Json => {
            let text = serde_json::to_string(&preview).map_err(std::io::Error::other)?;
            crate::report::stdout::print_line(&text)?;
        }
        OutputFormat::Human => report::stdout::print_data(&report::preview::render(&preview))?,
    }
    Ok(ExitCode::Success)
}
