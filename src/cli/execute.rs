//! `rok-plan execute PLAN`: a new run, driven to its end, a failure, or a pause.

use std::sync::Arc;

use rok_plan_engine::Plan;
use rok_plan_engine::duration::parse_duration;
use rok_plan_engine::exec::{ExecutorBuilder, ResumeOptions, RunEvent};
use rok_plan_engine::params::Params;
use rok_plan_engine::state::{RunOutcome, RunStore};
use tokio::sync::mpsc;

use crate::cli::approve::{CliApprovals, check_approve_ids};
use crate::cli::args::{ExecuteArgs, RunArgs};
use crate::cli::load::load;
use crate::cli::{Flags, OutputFormat, store};
use crate::exit::{CliError, ExitCode};
use crate::report::progress::HumanReporter;

pub(crate) fn run(args: &ExecuteArgs, flags: &Flags) -> Result<ExitCode, CliError> {
    let loaded = load(&args.plan, &args.params)?;
    check_approve_ids(&args.run, &loaded.plan, &loaded.graph)?;
    let store = store::open(&flags.state, flags.force_unlock)?;
    if !args.new {
        let unfinished = store
            .list_runs()?
            .into_iter()
            .rev()
            .find(|r| r.plan_name == loaded.plan.name && !r.outcome.is_final());
        if let Some(r) = unfinished {
            return Err(CliError::Unfinished {
                run: r.id,
                plan: r.plan_name,
                state_flag: flags.state_flag(),
            });
        }
    }
    let action = Action::Execute {
        plan_path: args.plan.display().to_string(),
    };
    drive(
        flags,
        &args.run,
        store,
        &loaded.plan,
        &loaded.params,
        action,
    )
}

/// What to drive.
pub(crate) enum Action {
    /// A new run.
    Execute { plan_path: String },
    /// An existing run.
    Resume {
        run_id: String,
        options: ResumeOptions,
    },
}

/// Drives `action` on a runtime with signal handling, progress and approvals, and maps
/// the outcome to the exit code.
pub(crate) fn drive(
    flags: &Flags,
    run: &RunArgs,
    store: Arc<dyn RunStore>,
    plan: &Plan,
    params: &Params,
    action: Action,
) -> Result<ExitCode, CliError> {
    let grace = parse_duration(&run.grace).map_err(|e| CliError::Usage(format!("--grace: {e}")))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .worker_threads(2)
        .build()
        .map_err(|e| CliError::Usage(format!("cannot start the runtime: {e}")))?;
    let human = flags.output == OutputFormat::Human;
    let reporter = std::sync::Mutex::new(HumanReporter::new(
        flags.verbose,
        flags.quiet,
        flags.state_flag(),
    ));
    let progress = reporter.lock().ok().and_then(|mut r| {
        r.set_prompting(CliApprovals::interactive(run));
        r.multi()
    });
    let approvals = CliApprovals::new(run, progress);
    let fault = std::env::var("ROK_PLAN_TEST_KILL_AFTER_COMMITS")
        .ok()
        .and_then(|v| v.parse().ok());
    let report = runtime.block_on(async {
        let (tx, rx) = mpsc::unbounded_channel();
        install_signal_handlers(tx);
        let mut builder =
            ExecutorBuilder::new(rok_plan_steps::builtin_with(&step_options(run)), store)
                .parallel(run.parallel)
                .approvals(approvals)
                .grace(grace)
                .interrupts(rx)
                .kill_after_commits(fault);
        if run.ssh_accept_new_host_keys {
            builder = builder.setting("ssh.host_key_checking", "accept-new");
        }
        if let Some(cfg) = &run.ssh_config {
            builder = builder.setting("ssh.config", cfg.display().to_string());
        }
        let mut on_event = |e: &RunEvent| {
            if human {
                if let Ok(mut r) = reporter.lock() {
                    r.event(e);
                }
            } else if let Ok(line) = serde_json::to_string(e) {
                let _ = crate::report::stdout::print_line(&line);
            }
        };
        let executor = builder.build();
        match action {
            Action::Execute { plan_path } => {
                executor
                    .execute(plan, params, &plan_path, &mut on_event)
                    .await
            }
            Action::Resume { run_id, options } => {
                executor
                    .resume(&run_id, plan, params, &options, &mut on_event)
                    .await
            }
        }
    })?;
    Ok(match report.outcome {
        RunOutcome::Succeeded => ExitCode::Success,
        RunOutcome::Failed => ExitCode::StepFailed,
        RunOutcome::Paused => ExitCode::Paused,
        RunOutcome::Interrupted => ExitCode::Interrupted,
        RunOutcome::Running => ExitCode::StepFailed,
    })
}

/// The operator's settings for the step types, from the command line.
fn step_options(run: &RunArgs) -> rok_plan_steps::StepOptions {
    let mut options = rok_plan_steps::StepOptions::default();
    options.ssh.config_file = run.ssh_config.clone();
    if run.ssh_accept_new_host_keys {
        options.ssh.host_key_checking = rok_plan_steps::HostKeyChecking::AcceptNew;
    }
    options.ssh.max_sessions_per_host = run.ssh_max_sessions.max(1);
    options.kube = kube_options(&run.kube);
    options
}

/// The Kubernetes part of the step options (an unreadable `--eviction-retry` keeps the
/// default: clap has already shown the flag's form in `--help`).
pub(crate) fn kube_options(args: &crate::cli::args::KubeArgs) -> rok_plan_steps::KubeOptions {
    let mut kube = rok_plan_steps::KubeOptions {
        kubeconfig: args.kubeconfig.clone(),
        ..rok_plan_steps::KubeOptions::default()
    };
    if let Ok(d) = rok_plan_engine::duration::parse_duration(&args.eviction_retry) {
        kube.eviction_retry_interval = d;
    }
    kube
}

fn install_signal_handlers(tx: mpsc::UnboundedSender<()>) {
    use tokio::signal::unix::{SignalKind, signal};
    for kind in [SignalKind::interrupt(), SignalKind::terminate()] {
        let tx = tx.clone();
        if let Ok(mut s) = signal(kind) {
            tokio::spawn(async move {
                while s.recv().await.is_some() {
                    if tx.send(()).is_err() {
                        break;
                    }
                }
            });
        }
    }
}
