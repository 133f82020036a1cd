//! `lab`: run parts of the lab by hand, e.g. `lab kube serve --nodes 3 --kubeconfig kc.yaml`
//! or `lab appliances up --nodes 4 --dir /tmp/rok-lab`. Started under the name of a
//! simulated Rok tool (a symlink in an appliance), it is that tool.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use rok_plan_lab::kube::{Cluster, ClusterOptions, Delays};

#[derive(Parser)]
#[command(
    name = "lab",
    about = "The rok-plan lab: simulated infrastructure for rehearsals"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Simulated Rok appliances behind real sshds (needs root).
    Appliances {
        #[command(subcommand)]
        command: rok_plan_lab::appliance::cli::AppliancesCommand,
    },
    /// The Kubernetes API double.
    Kube {
        #[command(subcommand)]
        command: KubeCommand,
    },
}

#[derive(Subcommand)]
enum KubeCommand {
    /// Start a simulated cluster, write a kubeconfig, and serve until killed.
    Serve {
        /// Number of nodes.
        #[arg(long, default_value_t = 3)]
        nodes: usize,
        /// Where to write the kubeconfig.
        #[arg(long)]
        kubeconfig: PathBuf,
        /// Port on 127.0.0.1 (0 picks a free one).
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// Install a Rok deployment at this version (RokCluster CRD and CR, operator, CSI).
        #[arg(long)]
        rok: Option<String>,
        /// Milliseconds from a pod's binding to Running and Ready (0: at once). A few hundred
        /// make a rehearsal show drains waiting on PodDisruptionBudgets.
        #[arg(long, default_value_t = 0)]
        pod_start_ms: u64,
        /// Milliseconds from a pod's graceful deletion to its removal.
        #[arg(long, default_value_t = 0)]
        pod_stop_ms: u64,
    },
}

fn main() -> ExitCode {
    if let Some(code) = rok_plan_lab::appliance::tools::dispatch() {
        return code;
    }
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async_main(cli))
}

async fn async_main(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Appliances { command } => rok_plan_lab::appliance::cli::run(command).await,
        Command::Kube {
            command:
                KubeCommand::Serve {
                    nodes,
                    kubeconfig,
                    port,
                    rok,
                    pod_start_ms,
                    pod_stop_ms,
                },
        } => {
            let delays = Delays {
                pod_start: Duration::from_millis(pod_start_ms),
                pod_stop: Duration::from_millis(pod_stop_ms),
                ..Delays::default()
            };
            serve(nodes, kubeconfig, port, rok, delays).await
        }
    }
}

async fn serve(
    nodes: usize,
    kubeconfig: PathBuf,
    port: u16,
    rok: Option<String>,
    delays: Delays,
) -> ExitCode {
    let opts = ClusterOptions {
        nodes,
        kubeconfig: Some(kubeconfig.clone()),
        port,
        delays,
    };
    let cluster = match Cluster::start(opts).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(version) = rok
        && let Err(e) = cluster.install_rok(&version, 1)
    {
        eprintln!("error: {e}");
        return ExitCode::FAILURE;
    }
    println!(
        "serving {} (kubeconfig {})",
        cluster.url(),
        kubeconfig.display()
    );
    let _ = tokio::signal::ctrl_c().await;
    cluster.shutdown();
    ExitCode::SUCCESS
}
