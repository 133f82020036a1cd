//! `rok-plan`'s commands. Each module turns its arguments into engine calls and reports.

mod args;
mod graph;
mod load;
mod plan;
mod schema;
mod validate;

pub(crate) use validate::plural as validate_plural;

use std::ffi::OsString;

use clap::Parser;

use crate::exit::{CliError, ExitCode};
use crate::report::diagnostics;
pub(crate) use args::{Cli, Command, OutputFormat};

/// Runs the command line `args` (program name first) and returns the exit code.
pub fn run(args: impl IntoIterator<Item = OsString>) -> std::process::ExitCode {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            let code = if e.use_stderr() {
                ExitCode::Invalid
            } else {
                ExitCode::Success
            };
            return code.into();
        }
    };
    let output = cli.output;
    let result = match cli.command {
        Command::Validate(a) => validate::run(&a, &cli_flags(output, cli.quiet)),
        Command::Plan(a) => plan::run(&a, &cli_flags(output, cli.quiet)),
        Command::Graph(a) => graph::run(&a),
        Command::Schema => schema::run(),
    };
    match result {
        Ok(code) => code.into(),
        Err(e) => {
            report_error(&e, output);
            e.exit_code().into()
        }
    }
}

/// What every command needs to know about output.
pub(crate) struct Flags {
    pub(crate) output: OutputFormat,
    pub(crate) quiet: bool,
}

fn cli_flags(output: OutputFormat, quiet: bool) -> Flags {
    Flags { output, quiet }
}

fn report_error(e: &CliError, output: OutputFormat) {
    match (e, output) {
        (CliError::Plan(d), OutputFormat::Json) => {
            let doc = serde_json::json!({ "version": 1, "error": "invalid", "diagnostics": diagnostics::to_json(d) });
            let _ = crate::report::stdout::print_line(&doc.to_string());
        }
        (CliError::Plan(d), OutputFormat::Human) => diagnostics::print_human(d),
        (other, OutputFormat::Json) => {
            let _ = crate::report::stdout::print_line(
                &serde_json::json!({ "version": 1, "error": other.to_string() }).to_string(),
            );
        }
        (other, OutputFormat::Human) => eprintln!("error: {other}"),
    }
}
