//! `rok-plan plan PLAN`: what a run would do, rendered, in parallel waves. Runs nothing.
//!
//! With `--server-dry-run` it then rehearses every Kubernetes step against its cluster:
//! writes go with `dryRun=All`, drains run only their pre-flight, waits only check that
//! what they watch can be read. Nothing changes; each step's result is reported.

use rok_plan_engine::preview::{PlanPreview, WhenDecision, preview};
use rok_plan_engine::step::{OutputSink, StepContext, StepOutcome, StepRegistry};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::cli::args::PlanArgs;
use crate::cli::load::load;
use crate::cli::{Flags, OutputFormat};
use crate::exit::{CliError, ExitCode};
use crate::report;

/// How long one step's rehearsal may take.
const REHEARSAL_LIMIT: std::time::Duration = std::time::Duration::from_secs(120);

pub(crate) fn run(args: &PlanArgs, flags: &Flags) -> Result<ExitCode, CliError> {
    let loaded = load(&args.plan, &args.params)?;
    let preview = preview(
        &loaded.plan,
        &loaded.registry,
        &loaded.params,
        &loaded.graph,
    )?;
    let rehearsal = if args.server_dry_run {
        let mut kube = crate::cli::execute::kube_options(&args.kube);
        kube.server_dry_run = true;
        let options = rok_plan_steps::StepOptions {
            kube,
            ..rok_plan_steps::StepOptions::default()
        };
        Some(rehearse(&preview, &rok_plan_steps::builtin_with(&options))?)
    } else {
        None
    };
    match flags.output {
        OutputFormat::Json => {
            let mut doc = serde_json::to_value(&preview).map_err(std::io::Error::other)?;
            if let (Some(r), Some(m)) = (&rehearsal, doc.as_object_mut()) {
                m.insert(
                    "server_dry_run".into(),
                    serde_json::to_value(r).map_err(std::io::Error::other)?,
                );
            }
            crate::report::stdout::print_line(&doc.to_string())?;
        }
        OutputFormat::Human => {
            report::stdout::print_data(&report::preview::render(&preview))?;
            if let Some(r) = &rehearsal {
                report::stdout::print_data(&render(r))?;
            }
        }
    }
    let failed = rehearsal
        .iter()
        .flatten()
        .any(|r| r.result == Rehearsed::Problem);
    Ok(if failed {
        ExitCode::StepFailed
    } else {
        ExitCode::Success
    })
}

/// One step's rehearsal.
#[derive(Debug, Serialize)]
struct Rehearsal {
    id: String,
    step_type: String,
    result: Rehearsed,
    /// What the step said (objects dry-run applied, the drain's pre-flight).
    lines: Vec<String>,
    /// Why it failed, or why it was not rehearsed.
    reason: Option<String>,
}

#[derive(Debug, Serialize, PartialEq, Eq, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum Rehearsed {
    Ok,
    Problem,
    NotChecked,
}

fn is_kube(step_type: &str) -> bool {
    step_type.starts_with("kube.") || step_type == "kubectl"
}

fn rehearse(preview: &PlanPreview, registry: &StepRegistry) -> Result<Vec<Rehearsal>, CliError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .worker_threads(2)
        .build()
        .map_err(|e| CliError::Usage(format!("cannot start the runtime: {e}")))?;
    let mut out = Vec::new();
    for instance in preview.waves.iter().flat_map(|w| w.instances.iter()) {
        if !is_kube(&instance.step_type) {
            continue;
        }
        let mut r = Rehearsal {
            id: instance.id.clone(),
            step_type: instance.step_type.clone(),
            result: Rehearsed::NotChecked,
            lines: Vec::new(),
            reason: None,
        };
        let rendered = serde_json::Value::Object(instance.fields.clone()).to_string();
        if instance.decision == WhenDecision::Skip {
            r.reason = Some("skipped by `when`".into());
        } else if instance.decision == WhenDecision::AtRunTime {
            r.reason = Some("`when` is only known during a run".into());
        } else if rendered.contains("<steps.") {
            r.reason = Some("its fields use outputs of earlier steps".into());
        } else if let Some(step) = registry.get(&instance.step_type) {
            let sink = OutputSink::buffer();
            let cancel = CancellationToken::new();
            let ctx = StepContext::new(
                "server-dry-run",
                instance.id.clone(),
                1,
                cancel.clone(),
                sink.clone(),
            );
            let outcome = runtime.block_on(async {
                match tokio::time::timeout(REHEARSAL_LIMIT, step.run(&ctx, &instance.fields)).await
                {
                    Ok(Ok(o)) => o,
                    Ok(Err(e)) => StepOutcome::failed(e.to_string()),
                    Err(_) => {
                        cancel.cancel();
                        StepOutcome::failed("no answer in time")
                    }
                }
            });
            r.lines = sink.stdout_text().lines().map(str::to_string).collect();
            match outcome {
                StepOutcome::Failed { reason, .. } => {
                    r.result = Rehearsed::Problem;
                    r.reason = Some(reason);
                }
                _ => r.result = Rehearsed::Ok,
            }
        }
        out.push(r);
    }
    Ok(out)
}

fn render(rehearsals: &[Rehearsal]) -> String {
    let mut s = String::from("\nServer dry run (dryRun=All; drains: pre-flight only):\n");
    if rehearsals.is_empty() {
        s.push_str("  no Kubernetes steps\n");
    }
    for r in rehearsals {
        let mark = match r.result {
            Rehearsed::Ok => "ok",
            Rehearsed::Problem => "PROBLEM",
            Rehearsed::NotChecked => "not checked",
        };
        s.push_str(&format!("  {mark:<11} {} ({})\n", r.id, r.step_type));
        for line in &r.lines {
            s.push_str(&format!("              {line}\n"));
        }
        if let Some(reason) = &r.reason {
            s.push_str(&format!("              {reason}\n"));
        }
    }
    let problems = rehearsals
        .iter()
        .filter(|r| r.result == Rehearsed::Problem)
        .count();
    s.push_str(&format!(
        "{problems} problem(s) in {} Kubernetes step(s)\n",
        rehearsals.len()
    ));
    s
}
