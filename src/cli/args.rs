//! The command line, as clap sees it. Commands turn these into engine calls.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Turn written cluster upgrade procedures into typed, resumable plans, show exactly what
/// they will do, and run them.
#[derive(Debug, Parser)]
#[command(name = "rok-plan", version, about, long_about = None, propagate_version = true)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,

    /// Output for people, or JSON on stdout (one event per line for execute/resume).
    #[arg(long, global = true, value_enum, default_value_t = OutputFormat::Human)]
    pub(crate) output: OutputFormat,

    /// More detail.
    #[arg(short, long, global = true, conflicts_with = "quiet")]
    pub(crate) verbose: bool,

    /// Only errors.
    #[arg(short, long, global = true)]
    pub(crate) quiet: bool,

    /// The state store directory.
    #[arg(
        long,
        global = true,
        env = "ROK_PLAN_STATE",
        default_value = ".rok-plan",
        value_name = "DIR"
    )]
    pub(crate) state: PathBuf,

    /// Take over a store lock that was taken on another host and cannot be checked.
    #[arg(long, global = true)]
    pub(crate) force_unlock: bool,
}

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum OutputFormat {
    /// For people: progress and problems on stderr; previews, graphs, schemas, status and logs on stdout.
    Human,
    /// JSON on stdout.
    Json,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Parse and check plans; report every problem with its location.
    Validate(ValidateArgs),
    /// Show what a run would do: parallel waves, every step rendered. Runs nothing.
    Plan(PlanArgs),
    /// Draw the DAG of step instances.
    Graph(GraphArgs),
    /// Print the JSON Schema of plan files (for editors).
    Schema,
    /// Start a new run and drive it to the end, a failure, or a pause.
    Execute(ExecuteArgs),
    /// Continue a run (without RUN: the latest unfinished one).
    Resume(ResumeArgs),
    /// Every step instance of a run: state, attempts, duration, last error.
    Status(StatusArgs),
    /// The runs in the state store.
    Runs,
    /// The recorded output of a step instance's attempts.
    Logs(LogsArgs),
}

/// How manual steps get approved, and how many steps run at once.
#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// How many steps may run at once.
    #[arg(long, default_value_t = 8, value_name = "N")]
    pub(crate) parallel: usize,

    /// Approve this manual step instance in advance (repeatable).
    #[arg(long = "approve", value_name = "ID")]
    pub(crate) approve: Vec<String>,

    /// Approve every manual step (for tests and labs).
    #[arg(long)]
    pub(crate) yes: bool,

    /// Who approves (default: the login name).
    #[arg(long, value_name = "NAME")]
    pub(crate) approver: Option<String>,

    /// After Ctrl-C or SIGTERM, how long running steps get before they are killed.
    #[arg(long, default_value = "10s", value_name = "DURATION")]
    pub(crate) grace: String,

    /// An ssh_config file for `ssh` and remote `file.edit` steps, used instead of
    /// ~/.ssh/config (`ssh -F`).
    #[arg(long, value_name = "FILE", env = "ROK_PLAN_SSH_CONFIG")]
    pub(crate) ssh_config: Option<PathBuf>,

    /// Record unknown ssh host keys in known_hosts instead of refusing to connect
    /// (StrictHostKeyChecking=accept-new; recorded in the run). A changed key is always refused.
    #[arg(long)]
    pub(crate) ssh_accept_new_host_keys: bool,

    /// How many commands may run at once on one ssh host (keep it below the host's
    /// sshd MaxSessions, 10 by default).
    #[arg(long, default_value_t = 8, value_name = "N")]
    pub(crate) ssh_max_sessions: usize,

    #[command(flatten)]
    pub(crate) kube: KubeArgs,
}

/// Where Kubernetes steps find their clusters, and how drains pace themselves.
#[derive(Debug, Args)]
pub(crate) struct KubeArgs {
    /// The kubeconfig of Kubernetes steps (default: $KUBECONFIG, else ~/.kube/config);
    /// a step's `context` picks a context in it.
    #[arg(long, value_name = "FILE")]
    pub(crate) kubeconfig: Option<PathBuf>,

    /// How long a drain waits before asking again for an eviction that a
    /// PodDisruptionBudget refused (it keeps asking until the step's timeout).
    #[arg(long, default_value = "5s", value_name = "DURATION")]
    pub(crate) eviction_retry: String,
}

#[derive(Debug, Args)]
pub(crate) struct ExecuteArgs {
    /// The plan file.
    #[arg(value_name = "PLAN")]
    pub(crate) plan: PathBuf,

    #[command(flatten)]
    pub(crate) params: ParamArgs,

    #[command(flatten)]
    pub(crate) run: RunArgs,

    /// Start a new run even though an unfinished run of this plan exists.
    #[arg(long)]
    pub(crate) new: bool,
}

#[derive(Debug, Args)]
pub(crate) struct ResumeArgs {
    /// The run (default: the latest unfinished one).
    #[arg(value_name = "RUN")]
    pub(crate) run_id: Option<String>,

    /// Give a secret parameter again (secrets are never stored).
    #[arg(long = "set", value_name = "NAME=VALUE")]
    pub(crate) sets: Vec<String>,

    #[command(flatten)]
    pub(crate) run: RunArgs,

    /// Count this step (instance, step, group or group element) as done (repeatable).
    #[arg(long = "assume-done", value_name = "ID")]
    pub(crate) assume_done: Vec<String>,

    /// Run this step again, and everything that depends on it (repeatable).
    #[arg(long = "rerun", value_name = "ID")]
    pub(crate) rerun: Vec<String>,

    /// Go on although the plan file changed since the run began.
    #[arg(long)]
    pub(crate) allow_plan_change: bool,
}

#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    /// The run (default: the latest).
    #[arg(value_name = "RUN")]
    pub(crate) run_id: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct LogsArgs {
    /// The run.
    #[arg(value_name = "RUN")]
    pub(crate) run_id: String,
    /// The step instance.
    #[arg(value_name = "STEP")]
    pub(crate) step: String,
}

/// Parameter values for a plan.
#[derive(Debug, Args, Default)]
pub(crate) struct ParamArgs {
    /// Set a parameter (repeatable); lists as a,b,c or ["a","b"].
    #[arg(long = "set", value_name = "NAME=VALUE")]
    pub(crate) sets: Vec<String>,

    /// A TOML file of parameter values (NAME = value).
    #[arg(long = "params", value_name = "FILE")]
    pub(crate) params: Option<PathBuf>,
}

impl ParamArgs {
    pub(crate) fn given(&self) -> bool {
        !self.sets.is_empty() || self.params.is_some()
    }
}

#[derive(Debug, Args)]
pub(crate) struct ValidateArgs {
    /// Plan files to check.
    #[arg(required = true, value_name = "PLAN")]
    pub(crate) plans: Vec<PathBuf>,

    /// With --set or --params, the parameter values are checked too (all required ones included).
    #[command(flatten)]
    pub(crate) params: ParamArgs,
}

#[derive(Debug, Args)]
pub(crate) struct PlanArgs {
    /// The plan file.
    #[arg(value_name = "PLAN")]
    pub(crate) plan: PathBuf,

    #[command(flatten)]
    pub(crate) params: ParamArgs,

    /// Also rehearse against the cluster: send every Kubernetes write with dryRun=All and
    /// run every drain's pre-flight, changing nothing; problems are reported per step.
    #[arg(long)]
    pub(crate) server_dry_run: bool,

    #[command(flatten)]
    pub(crate) kube: KubeArgs,
}

#[derive(Debug, Args)]
pub(crate) struct GraphArgs {
    /// The plan file.
    #[arg(value_name = "PLAN")]
    pub(crate) plan: PathBuf,

    /// The drawing language.
    #[arg(long, value_enum, default_value_t = GraphFormatArg::Dot)]
    pub(crate) format: GraphFormatArg,

    #[command(flatten)]
    pub(crate) params: ParamArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum GraphFormatArg {
    /// Graphviz dot.
    Dot,
    /// Mermaid flowchart.
    Mermaid,
}
