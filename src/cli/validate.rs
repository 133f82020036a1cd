//! `rok-plan validate PLAN...`: every problem of every file, with its location.

use rok_plan_engine::params::resolve_params;
use rok_plan_engine::{Diagnostics, load_plan};

use crate::cli::args::ValidateArgs;
use crate::cli::load::{param_inputs, read_source};
use crate::cli::{Flags, OutputFormat};
use crate::exit::{CliError, ExitCode};
use crate::report::{diagnostics, plural};

pub(crate) fn run(args: &ValidateArgs, flags: &Flags) -> Result<ExitCode, CliError> {
    let registry = rok_plan_steps::builtin();
    let mut files = Vec::new();
    let mut all_valid = true;
    for path in &args.plans {
        let (diags, summary) = match read_source(path) {
            Ok(source) => match load_plan(&source, &registry) {
                Ok(plan) => {
                    let mut diags = Diagnostics::new();
                    if args.params.given()
                        && let Err(d) = resolve_params(&plan, &param_inputs(&args.params)?)
                    {
                        diags = d;
                    }
                    let summary = format!(
                        "{} step{}, {} group{}, {} parameter{}",
                        plan.steps.len(),
                        plural(plan.steps.len()),
                        plan.groups.len(),
                        plural(plan.groups.len()),
                        plan.params.len(),
                        plural(plan.params.len())
                    );
                    (diags, Some(summary))
                }
                Err(d) => (d, None),
            },
            Err(e) => {
                all_valid = false;
                if flags.output == OutputFormat::Human {
                    eprintln!("error: {e}");
                }
                files.push(serde_json::json!({ "file": path.display().to_string(), "valid": false, "error": e.to_string(), "diagnostics": [] }));
                continue;
            }
        };
        let valid = diags.is_empty();
        all_valid &= valid;
        match flags.output {
            OutputFormat::Human if valid => {
                if !flags.quiet {
                    eprintln!(
                        "{}: valid ({})",
                        path.display(),
                        summary.unwrap_or_default()
                    );
                }
            }
            OutputFormat::Human => diagnostics::print_human(&diags),
            OutputFormat::Json => {}
        }
        files.push(serde_json::json!({
            "file": path.display().to_string(),
            "valid": valid,
            "diagnostics": diagnostics::to_json(&diags),
        }));
    }
    if flags.output == OutputFormat::Json {
        crate::report::stdout::print_line(
            &serde_json::json!({ "version": 1, "valid": all_valid, "files": files }).to_string(),
        )?;
    }
    Ok(if all_valid {
        ExitCode::Success
    } else {
        ExitCode::Invalid
    })
}
