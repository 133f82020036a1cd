//! `lab appliances up|down|state|fail`: the appliance lab from a shell.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Subcommand;

use super::ganeti::{GanetiOptions, ScriptStep, run_step};
use super::{ApplianceError, ApplianceLab, ApplianceOptions, Fault, LabDir, Version, down};

/// The `lab appliances` subcommands.
#[derive(Debug, Subcommand)]
pub enum AppliancesCommand {
    /// Start appliances `rok-node-1..N`; print the ssh_config and plan parameters to use.
    /// Runs until Ctrl-C (or SIGTERM) unless --detach.
    Up {
        /// Number of appliances.
        #[arg(long, default_value_t = 3)]
        nodes: usize,
        /// The lab directory (kept afterwards).
        #[arg(long)]
        dir: PathBuf,
        /// The appliance image the hosts boot (its upgrade tool is installed).
        #[arg(long, default_value = "0.12.0")]
        boot_image: Version,
        /// The version the cluster and nodes start at (default: the one before the image).
        #[arg(long)]
        initial_version: Option<Version>,
        /// Rok's cluster name.
        #[arg(long, default_value = "rok-prod")]
        cluster_name: String,
        /// Run the appliances on a Ganeti cluster of this many physical hosts
        /// (`ganeti-1..N`, at least 2); 0: no Ganeti.
        #[arg(long, default_value_t = 0)]
        ganeti_pnodes: usize,
        /// Leave the appliances running and return (stop them with `down`).
        #[arg(long)]
        detach: bool,
    },
    /// One step of the simulated `rok-cluster-upgrade-ganeti` (the script calls this).
    #[command(hide = true)]
    GanetiScript {
        /// The lab directory.
        #[arg(long)]
        dir: PathBuf,
        /// The step.
        #[command(subcommand)]
        step: ScriptStep,
    },
    /// Stop the appliances of a detached lab.
    Down {
        /// The lab directory.
        #[arg(long)]
        dir: PathBuf,
    },
    /// Print the simulated cluster's state (JSON).
    State {
        /// The lab directory.
        #[arg(long)]
        dir: PathBuf,
        /// Print the journal of tool invocations instead.
        #[arg(long)]
        journal: bool,
    },
    /// Make a command fail on a host (or take longer).
    Fail {
        /// The lab directory.
        #[arg(long)]
        dir: PathBuf,
        /// The appliance (omit: every host).
        #[arg(long)]
        host: Option<String>,
        /// The command, e.g. "rok-cluster-upgrade-v0.12.0 upgrade-node" (prefix of argv).
        #[arg(long)]
        command: String,
        /// How many invocations fail (with --delay: how many are delayed; default all).
        #[arg(long)]
        times: Option<u32>,
        /// Delay the command this long before it runs, instead of failing it (e.g. 30s).
        #[arg(long, value_parser = humantime_like)]
        delay: Option<Duration>,
        /// Clear every fault first.
        #[arg(long)]
        clear: bool,
    },
}

/// Parses `500ms`, `30s`, `2m`.
fn humantime_like(s: &str) -> Result<Duration, String> {
    let (num, unit) = s
        .find(|c: char| !c.is_ascii_digit())
        .map_or((s, "s"), |i| s.split_at(i));
    let n: u64 = num.parse().map_err(|_| format!("not a duration: {s:?}"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        _ => Err(format!("not a duration (ms, s, m): {s:?}")),
    }
}

fn fail(e: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::FAILURE
}

/// Runs a `lab appliances` subcommand.
pub async fn run(cmd: AppliancesCommand) -> ExitCode {
    match cmd {
        AppliancesCommand::Up {
            nodes,
            dir,
            boot_image,
            initial_version,
            cluster_name,
            ganeti_pnodes,
            detach,
        } => {
            let options = ApplianceOptions {
                dir: Some(dir),
                boot_image,
                initial_version,
                cluster_name,
                ganeti: (ganeti_pnodes > 0).then(|| GanetiOptions::pnodes(ganeti_pnodes)),
                detach,
                ..ApplianceOptions::nodes(nodes)
            };
            up(options).await
        }
        AppliancesCommand::GanetiScript { dir, step } => {
            match LabDir::open(dir).and_then(|lab| run_step(&lab, &step)) {
                Ok(lines) => {
                    for l in lines {
                        println!("{l}");
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            }
        }
        AppliancesCommand::Down { dir } => match down(&dir) {
            Ok(()) => {
                println!("stopped the appliances of {}", dir.display());
                ExitCode::SUCCESS
            }
            Err(e) => fail(e),
        },
        AppliancesCommand::State { dir, journal } => {
            let lab = match LabDir::open(dir) {
                Ok(l) => l,
                Err(e) => return fail(e),
            };
            let text = if journal {
                lab.journal().map(|j| serde_json::to_string_pretty(&j))
            } else {
                lab.state().map(|s| serde_json::to_string_pretty(&s))
            };
            match text {
                Ok(Ok(t)) => {
                    // A closed pipe (`| head`) is not an error of ours.
                    let _ = writeln!(std::io::stdout(), "{t}");
                    ExitCode::SUCCESS
                }
                Ok(Err(e)) => fail(e),
                Err(e) => fail(e),
            }
        }
        AppliancesCommand::Fail {
            dir,
            host,
            command,
            times,
            delay,
            clear,
        } => {
            let result = LabDir::open(dir).and_then(|lab| {
                if clear {
                    lab.clear_faults()?;
                }
                let host_name = host.as_deref().unwrap_or("*");
                let mut fault = match delay {
                    Some(d) => Fault::delay_before(host_name, &command, d),
                    None => Fault::fail(host_name, &command, 1),
                };
                fault.remaining = match (delay, times) {
                    (_, Some(n)) => Some(n),
                    (Some(_), None) => None,
                    (None, None) => Some(1),
                };
                if host.is_none() {
                    fault = fault.on_any_host();
                }
                lab.add_fault(fault)
            });
            match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail(e),
            }
        }
    }
}

fn print_summary(lab: &ApplianceLab) {
    println!("ssh_config: {}", lab.ssh_config().display());
    for h in lab.hosts() {
        println!(
            "  {h}: 127.0.0.1:{} (ssh -F {} {h})",
            lab.port(&h).unwrap_or(0),
            lab.ssh_config().display()
        );
    }
    println!("master: {}", lab.master());
    println!("slaves: {}", lab.slaves().join(", "));
    for p in lab.pnodes() {
        println!(
            "  Ganeti physical host {p}: 127.0.0.1:{} (ssh -F {} {p})",
            lab.port(&p).unwrap_or(0),
            lab.ssh_config().display()
        );
    }
    if let Some(g) = &lab.options().ganeti {
        println!(
            "Ganeti: rok-cluster-upgrade-ganeti in {}; export ROKE_PASSWORD={} RAPI_PASSWORD={}",
            lab.ganeti_scripts_dir().display(),
            g.roke_password,
            g.rapi_password
        );
    }
    for release in ["0.11", "0.12"] {
        println!(
            "plan parameters for plans/rok-v{release}.toml: {}",
            lab.plan_params(release).display()
        );
    }
    println!(
        "e.g. rok-plan execute plans/rok-v0.12.toml --params {} --ssh-config {}",
        lab.plan_params("0.12").display(),
        lab.ssh_config().display()
    );
}

async fn up(options: ApplianceOptions) -> ExitCode {
    let detach = options.detach;
    let lab = match ApplianceLab::start(options) {
        Ok(l) => l,
        Err(e @ ApplianceError::NotRoot) => return fail(e),
        Err(e) => return fail(e),
    };
    print_summary(&lab);
    if detach {
        let dir = lab.detach();
        println!(
            "detached: stop with `lab appliances down --dir {}`",
            dir.display()
        );
        return ExitCode::SUCCESS;
    }
    println!("running until Ctrl-C");
    wait_for_stop_signal().await;
    drop(lab);
    ExitCode::SUCCESS
}

async fn wait_for_stop_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
