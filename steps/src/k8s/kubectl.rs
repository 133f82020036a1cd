//! `kubectl`: the escape hatch. Runs kubectl with the step's `args` (plus the run's
//! kubeconfig and the step's context), its output captured like any command's.

use rok_plan_engine::process::{ProcessEnd, ProcessSpec, run_process};
use rok_plan_engine::step::{Fields, StepContext, StepOutcome};
use serde_json::Value;

use super::client::{Kube, say};
use super::error::KubeError;
use super::opt_text;

pub(crate) async fn run(
    kube: &Kube,
    ctx: &StepContext,
    f: &Fields,
) -> Result<StepOutcome, KubeError> {
    let args: Vec<String> = f
        .get("args")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|v| v.as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default();
    if args.is_empty() {
        return Err(KubeError::field("args", "is empty"));
    }
    if kube.options().server_dry_run {
        say(
            ctx,
            "not sent: a server dry run does not run the kubectl escape hatch",
        );
        return Ok(StepOutcome::done());
    }
    let mut argv = vec!["kubectl".to_string()];
    argv.extend(global_flags(kube, opt_text(f, "context")));
    argv.extend(args);
    let end = run_process(ctx, &ProcessSpec::argv(argv))
        .await
        .map_err(|e| KubeError::Manifest(e.to_string()))?;
    Ok(match end {
        ProcessEnd::Exited(0) => StepOutcome::Succeeded {
            outputs: Default::default(),
            exit_status: Some(0),
        },
        ProcessEnd::Exited(code) => StepOutcome::Failed {
            reason: format!("kubectl exited with status {code}"),
            exit_status: Some(code),
        },
        ProcessEnd::Signaled(sig) => {
            StepOutcome::failed(format!("kubectl was killed by signal {sig}"))
        }
        ProcessEnd::Cancelled => StepOutcome::failed("kubectl was stopped (cancelled)"),
    })
}

/// `--kubeconfig` and `--context` as the run and the step give them.
pub(crate) fn global_flags(kube: &Kube, context: Option<&str>) -> Vec<String> {
    let mut flags = Vec::new();
    if let Some(k) = &kube.options().kubeconfig {
        flags.push("--kubeconfig".to_string());
        flags.push(k.display().to_string());
    }
    if let Some(c) = context {
        flags.push("--context".to_string());
        flags.push(c.to_string());
    }
    flags
}
