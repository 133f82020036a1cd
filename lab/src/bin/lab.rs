//! `lab`: run parts of the lab by hand, e.g. `lab kube serve --nodes 3 --kubeconfig kc.yaml`
//! or `lab appliances up --nodes 4 --dir /tmp/rok-lab`. Started under the name of a
//! simulated Rok tool (a symlink in an appliance), it is that tool.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use rok_plan_lab::kube::control::{self, ControlClient, ControlError};
use rok_plan_lab::kube::{Cluster, ClusterOptions, Delays};
use serde_json::{Value, json};

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
    /// The Kubernetes API double: `serve` starts one; the other commands script a running one,
    /// found through the `server:` of its kubeconfig (`--kubeconfig`, else $KUBECONFIG).
    Kube {
        #[command(subcommand)]
        command: KubeCommand,
    },
}

#[derive(Subcommand)]
enum KubeCommand {
    /// Start a simulated cluster, create the workloads, write a kubeconfig, and serve until
    /// killed. The kubeconfig appears only once the workloads exist, so a script can wait for it.
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
        /// A YAML (or JSON) manifest file, multi-document, whose objects are created at start in
        /// order (namespaced ones in their `metadata.namespace`, else `default`). Repeatable.
        #[arg(long = "workloads", value_name = "FILE")]
        workloads: Vec<PathBuf>,
        /// How pods whose name starts with PREFIX behave from the start, as
        /// PREFIX=normal|never-ready|fail|slow-ready:MS (see `pod-behaviour`). Repeatable.
        #[arg(long = "behaviour", value_name = "PREFIX=BEHAVIOUR")]
        behaviours: Vec<String>,
    },
    /// Append lines to a container's log (what `kubectl logs` then shows).
    Log {
        #[command(flatten)]
        target: Target,
        /// The pod.
        pod: String,
        /// Its namespace.
        #[arg(long, short = 'n', default_value = "default")]
        namespace: String,
        /// The container (default: the pod's only one).
        #[arg(long, short = 'c')]
        container: Option<String>,
        /// The lines, one argument each.
        #[arg(required = true)]
        lines: Vec<String>,
    },
    /// Set how pods whose name starts with PREFIX behave: normal, never-ready (Running, never
    /// Ready), slow-ready (Ready after --ms more), fail (the container exits 1). Pods created
    /// afterwards start so; running ones change when the kubelet next looks at them.
    PodBehaviour {
        #[command(flatten)]
        target: Target,
        /// Pod name prefix (a Deployment's name covers its pods; the longest prefix wins).
        prefix: String,
        /// The behaviour.
        behaviour: Behaviour,
        /// Extra milliseconds before Ready, for slow-ready.
        #[arg(long)]
        ms: Option<u64>,
    },
    /// Set the controllers' delays (those not given stay as they are).
    Delays {
        #[command(flatten)]
        target: Target,
        /// Milliseconds from a pod's binding to Running and Ready.
        #[arg(long)]
        pod_start_ms: Option<u64>,
        /// Milliseconds from a pod's graceful deletion to its removal.
        #[arg(long)]
        pod_stop_ms: Option<u64>,
        /// Milliseconds a Job's pod runs before it exits.
        #[arg(long)]
        job_run_ms: Option<u64>,
    },
    /// Answer the next COUNT matching API requests with an error status (a Kubernetes `Status`
    /// body), then answer normally again.
    Fail {
        #[command(flatten)]
        target: Target,
        /// The status code, 400-599.
        #[arg(long)]
        status: u16,
        /// How many requests to fail.
        #[arg(long, default_value_t = 1)]
        count: u32,
        #[command(flatten)]
        matching: Matching,
    },
    /// Add latency: to every API request, or with --count/--verb/--path-contains only to the
    /// matching ones (the next COUNT of them, or all). `--ms 0` removes the global latency.
    Latency {
        #[command(flatten)]
        target: Target,
        /// Milliseconds to hold each request before answering it.
        #[arg(long)]
        ms: u64,
        /// Delay only the next COUNT matching requests.
        #[arg(long)]
        count: Option<u32>,
        #[command(flatten)]
        matching: Matching,
    },
    /// End every open watch (clients see the stream close and must re-watch).
    DropWatches {
        #[command(flatten)]
        target: Target,
    },
    /// Remove every injected error, delay and latency.
    ClearFaults {
        #[command(flatten)]
        target: Target,
    },
    /// Add a Ready node.
    AddNode {
        #[command(flatten)]
        target: Target,
        /// The node's name.
        name: String,
    },
    /// Print the double's objects: a JSON `List` (or one line per object with `-o names`).
    State {
        #[command(flatten)]
        target: Target,
        /// Only this resource (pods, nodes, deployments, deploy, deployments.apps, ...).
        #[arg(long)]
        resource: Option<String>,
        /// Only this namespace (cluster-scoped objects are always shown).
        #[arg(long, short = 'n')]
        namespace: Option<String>,
        /// Output format.
        #[arg(long, short = 'o', value_enum, default_value_t = Output::Json)]
        output: Output,
    },
}

/// Which double a control command talks to.
#[derive(clap::Args)]
struct Target {
    /// The kubeconfig `lab kube serve` wrote (its `server:` is the double).
    #[arg(long, env = "KUBECONFIG")]
    kubeconfig: PathBuf,
}

/// Which requests a fault matches.
#[derive(clap::Args)]
struct Matching {
    /// Only requests with this HTTP method (GET, POST, PUT, PATCH, DELETE; lists and watches
    /// are GETs).
    #[arg(long)]
    verb: Option<String>,
    /// Only requests whose path contains this (e.g. /pods, /namespaces/rok/).
    #[arg(long, default_value = "")]
    path_contains: String,
}

#[derive(Clone, Copy, ValueEnum)]
enum Behaviour {
    /// Ready after the start delay.
    Normal,
    /// Running, never Ready.
    NeverReady,
    /// Ready after --ms more.
    #[value(alias = "slow-start")]
    SlowReady,
    /// The container exits 1.
    Fail,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Output {
    /// The JSON `List`.
    Json,
    /// `kind/namespace/name` (or `kind/name`) per line.
    Names,
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
                    workloads,
                    behaviours,
                },
        } => {
            let delays = Delays {
                pod_start: Duration::from_millis(pod_start_ms),
                pod_stop: Duration::from_millis(pod_stop_ms),
                ..Delays::default()
            };
            let opts = ServeOptions {
                nodes,
                kubeconfig,
                port,
                rok,
                delays,
                workloads,
                behaviours,
            };
            match serve(opts).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Kube { command } => match control_command(command).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
    }
}

struct ServeOptions {
    nodes: usize,
    kubeconfig: PathBuf,
    port: u16,
    rok: Option<String>,
    delays: Delays,
    workloads: Vec<PathBuf>,
    behaviours: Vec<String>,
}

/// `PREFIX=BEHAVIOUR[:MS]`.
fn parse_behaviour_arg(arg: &str) -> Result<(String, rok_plan_lab::kube::PodBehaviour), String> {
    let (prefix, rest) = arg
        .split_once('=')
        .ok_or_else(|| format!("--behaviour {arg:?}: expected PREFIX=BEHAVIOUR"))?;
    let (name, ms) = match rest.split_once(':') {
        Some((n, ms)) => (
            n,
            Some(
                ms.parse::<u64>()
                    .map_err(|e| format!("--behaviour {arg:?}: bad milliseconds {ms:?}: {e}"))?,
            ),
        ),
        None => (rest, None),
    };
    let b = control::parse_behaviour(name, ms).map_err(|e| format!("--behaviour {arg:?}: {e}"))?;
    Ok((prefix.to_string(), b))
}

async fn serve(opts: ServeOptions) -> Result<(), String> {
    // Everything the user handed in is checked before anything starts.
    let mut manifests = Vec::new();
    for path in &opts.workloads {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the workloads {}: {e}", path.display()))?;
        manifests.push((path.display().to_string(), text));
    }
    let behaviours = opts
        .behaviours
        .iter()
        .map(|a| parse_behaviour_arg(a))
        .collect::<Result<Vec<_>, _>>()?;
    // The cluster writes its kubeconfig beside the final one, renamed into place once the
    // workloads exist: a script waiting for the file then sees them, and never a half-written file.
    let mut staging = opts.kubeconfig.clone().into_os_string();
    staging.push(".lab-starting");
    let staging = PathBuf::from(staging);
    let cluster = Cluster::start(ClusterOptions {
        nodes: opts.nodes,
        kubeconfig: Some(staging.clone()),
        port: opts.port,
        delays: opts.delays,
    })
    .await
    .map_err(|e| e.to_string())?;
    let result = populate(&cluster, opts.rok.as_deref(), &behaviours, &manifests).and_then(|()| {
        std::fs::rename(&staging, &opts.kubeconfig).map_err(|e| {
            format!(
                "cannot write the kubeconfig {}: {e}",
                opts.kubeconfig.display()
            )
        })
    });
    if let Err(e) = result {
        let _ = std::fs::remove_file(&staging);
        return Err(e);
    }
    println!(
        "serving {} (kubeconfig {})",
        cluster.url(),
        opts.kubeconfig.display()
    );
    let _ = tokio::signal::ctrl_c().await;
    cluster.shutdown();
    Ok(())
}

fn populate(
    cluster: &Cluster,
    rok: Option<&str>,
    behaviours: &[(String, rok_plan_lab::kube::PodBehaviour)],
    manifests: &[(String, String)],
) -> Result<(), String> {
    if let Some(version) = rok {
        cluster.install_rok(version, 1).map_err(|e| e.to_string())?;
    }
    // Before the workloads, so that their pods start with the behaviour.
    for (prefix, b) in behaviours {
        cluster.set_behaviour(prefix, *b);
    }
    for (what, text) in manifests {
        control::create_manifests(cluster, what, text).map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn client(target: &Target) -> Result<ControlClient, ControlError> {
    ControlClient::from_kubeconfig(first_path(&target.kubeconfig))
}

/// $KUBECONFIG may list several files; the double's is the first.
fn first_path(p: &Path) -> &Path {
    p.to_str()
        .and_then(|s| s.split(':').next())
        .filter(|s| !s.is_empty())
        .map(Path::new)
        .unwrap_or(p)
}

fn print_json(v: &Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
    );
}

async fn control_command(command: KubeCommand) -> Result<(), String> {
    let e = |e: ControlError| e.to_string();
    match command {
        KubeCommand::Serve { .. } => Err("serve is not a control command".into()),
        KubeCommand::Log {
            target,
            pod,
            namespace,
            container,
            lines,
        } => {
            let body =
                json!({"namespace": namespace, "pod": pod, "container": container, "lines": lines});
            let v = client(&target)
                .map_err(e)?
                .call("POST", "/logs", Some(&body))
                .await
                .map_err(e)?;
            println!(
                "appended {} line(s) to {namespace}/{pod} container {}",
                v["appended"],
                v["container"].as_str().unwrap_or_default()
            );
            Ok(())
        }
        KubeCommand::PodBehaviour {
            target,
            prefix,
            behaviour,
            ms,
        } => {
            let name = match behaviour {
                Behaviour::Normal => "normal",
                Behaviour::NeverReady => "never-ready",
                Behaviour::SlowReady => "slow-ready",
                Behaviour::Fail => "fail",
            };
            // Checked here too, so that a missing --ms is a usage error before any request.
            control::parse_behaviour(name, ms)?;
            let body = json!({"prefix": prefix, "behaviour": name, "ms": ms});
            client(&target)
                .map_err(e)?
                .call("POST", "/behaviours", Some(&body))
                .await
                .map_err(e)?;
            println!("pods named {prefix}* are now {name}");
            Ok(())
        }
        KubeCommand::Delays {
            target,
            pod_start_ms,
            pod_stop_ms,
            job_run_ms,
        } => {
            let body = json!({"pod_start_ms": pod_start_ms, "pod_stop_ms": pod_stop_ms, "job_run_ms": job_run_ms});
            let v = client(&target)
                .map_err(e)?
                .call("POST", "/delays", Some(&body))
                .await
                .map_err(e)?;
            print_json(&v);
            Ok(())
        }
        KubeCommand::Fail {
            target,
            status,
            count,
            matching,
        } => {
            if !(400..=599).contains(&status) {
                return Err(format!(
                    "--status {status} is not an error status (400-599)"
                ));
            }
            let method = matching
                .verb
                .as_deref()
                .map(control::check_method)
                .transpose()?;
            let body = json!({"code": status, "count": count, "method": method, "path_contains": matching.path_contains});
            client(&target)
                .map_err(e)?
                .call("POST", "/faults/fail", Some(&body))
                .await
                .map_err(e)?;
            println!("the next {count} matching request(s) get {status}");
            Ok(())
        }
        KubeCommand::Latency {
            target,
            ms,
            count,
            matching,
        } => {
            let method = matching
                .verb
                .as_deref()
                .map(control::check_method)
                .transpose()?;
            let c = client(&target).map_err(e)?;
            if count.is_none() && method.is_none() && matching.path_contains.is_empty() {
                c.call("POST", "/faults/latency", Some(&json!({"ms": ms})))
                    .await
                    .map_err(e)?;
                println!("every request now waits {ms} ms");
            } else {
                let body = json!({"ms": ms, "count": count, "method": method, "path_contains": matching.path_contains});
                c.call("POST", "/faults/delay", Some(&body))
                    .await
                    .map_err(e)?;
                match count {
                    Some(n) => println!("the next {n} matching request(s) wait {ms} ms"),
                    None => println!("every matching request now waits {ms} ms"),
                }
            }
            Ok(())
        }
        KubeCommand::DropWatches { target } => {
            client(&target)
                .map_err(e)?
                .call("POST", "/faults/drop-watches", None)
                .await
                .map_err(e)?;
            println!("dropped every open watch");
            Ok(())
        }
        KubeCommand::ClearFaults { target } => {
            client(&target)
                .map_err(e)?
                .call("DELETE", "/faults", None)
                .await
                .map_err(e)?;
            println!("cleared the injected faults");
            Ok(())
        }
        KubeCommand::AddNode { target, name } => {
            client(&target)
                .map_err(e)?
                .call("POST", "/nodes", Some(&json!({"name": name})))
                .await
                .map_err(e)?;
            println!("node/{name} added");
            Ok(())
        }
        KubeCommand::State {
            target,
            resource,
            namespace,
            output,
        } => {
            let mut query = url::form_urlencoded::Serializer::new(String::new());
            if let Some(r) = &resource {
                query.append_pair("resource", r);
            }
            if let Some(n) = &namespace {
                query.append_pair("namespace", n);
            }
            let v = client(&target)
                .map_err(e)?
                .call("GET", &format!("/state?{}", query.finish()), None)
                .await
                .map_err(e)?;
            match output {
                Output::Json => print_json(&v),
                Output::Names => {
                    for item in v["items"].as_array().into_iter().flatten() {
                        let kind = item["kind"].as_str().unwrap_or_default().to_lowercase();
                        let name = item["metadata"]["name"].as_str().unwrap_or_default();
                        match item["metadata"]["namespace"].as_str() {
                            Some(ns) => println!("{kind}/{ns}/{name}"),
                            None => println!("{kind}/{name}"),
                        }
                    }
                }
            }
            Ok(())
        }
    }
}
