//! `rok-plan schema`: the JSON Schema of plan files on stdout.

use crate::exit::{CliError, ExitCode};

pub(crate) fn run() -> Result<ExitCode, CliError> {
    let schema = rok_plan_engine::schema::plan_schema(&rok_plan_steps::builtin());
    let text = serde_json::to_string_pretty(&schema).map_err(std::io::Error::other)?;
    crate::report::stdout::print_line(&text)?;
    Ok(ExitCode::Success)
}
