//! `rok-plan`'s commands. Each module turns its arguments into engine calls and reports.

mod approve;
mod args;
mod execute;
mod graph;
mod load;
mod plan;
mod resume;
mod schema;
mod status;
mod store;
mod validate;

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
    let flags = Flags {
        output,
        quiet: cli.quiet,
        verbose: cli.verbose,
        state: cli.state.clone(),
        force_unlock: cli.force_unlock,
    };
    let result = match cli.command {
        Command::Validate(a) => validate::run(&a, &flags),
        Command::Plan(a) => plan::run(&a, &flags),
        Command::Graph(a) => graph::run(&a),
        Command::Schema => schema::run(),
        Command::Execute(a) => execute::run(&a, &flags),
        Command::Resume(a) => resume::run(&a, &flags),
        Command::Status(a) => status::status(&a, &flags),
        Command::Runs => status::runs(&flags),
        Command::Logs(a) => status::logs(&a, &flags),
    };
    match result {
        Ok(code) => code.into(),
        Err(e) => {
            report_error(&e, output, &flags.state_flag());
            e.exit_code().into()
        }
    }
}

/// The global flags every command may use.
pub(crate) struct Flags {
    pub(crate) output: OutputFormat,
    pub(crate) quiet: bool,
    pub(crate) verbose: bool,
    pub(crate) state: std::path::PathBuf,
    pub(crate) force_unlock: bool,
}

impl Flags {
    /// ` --state DIR` when not the default, to repeat in suggested commands.
    pub(crate) fn state_flag(&self) -> String {
        if self.state == std::path::Path::new(".rok-plan") {
            String::new()
        } else {
            format!(" --state {}", self.state.display())
        }
    }
}

fn report_error(e: &CliError, output: OutputFormat, state_flag: &str) {
    // The commands a help suggests must reach the same store as this one did.
    let help = e
        .help()
        .map(|h| h.replace("rok-plan resume ", &format!("rok-plan{state_flag} resume ")));
    match (e, output) {
        (CliError::Plan(d), OutputFormat::Json) => {
            let doc = serde_json::json!({ "version": 1, "error": "invalid", "diagnostics": diagnostics::to_json(d) });
            let _ = crate::report::stdout::print_line(&doc.to_string());
        }
        (CliError::Plan(d), OutputFormat::Human) => diagnostics::print_human(d),
        (other, OutputFormat::Json) => {
            let doc = serde_json::json!({ "version": 1, "error": other.to_string(), "help": help });
            let _ = crate::report::stdout::print_line(&doc.to_string());
        }
        (other, OutputFormat::Human) => {
            eprintln!("error: {other}");
            if let Some(help) = help {
                for (n, line) in help.lines().enumerate() {
                    eprintln!("{}{line}", if n == 0 { "  help: " } else { "        " });
                }
            }
        }
    }
}
