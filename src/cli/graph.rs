//! `rok-plan graph PLAN --format dot|mermaid`: the instance DAG on stdout.

use rok_plan_engine::graph::{GraphFormat, export};

use crate::cli::args::{GraphArgs, GraphFormatArg};
use crate::cli::load::load;
use crate::exit::{CliError, ExitCode};

pub(crate) fn run(args: &GraphArgs) -> Result<ExitCode, CliError> {
    let loaded = load(&args.plan, &args.params)?;
    let format = match args.format {
        GraphFormatArg::Dot => GraphFormat::Dot,
        GraphFormatArg::Mermaid => GraphFormat::Mermaid,
    };
    crate::report::stdout::print_data(&export(&loaded.plan, &loaded.graph, format))?;
    Ok(ExitCode::Success)
}
