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

    /// Output for people (stderr) or JSON (stdout).
    #[arg(long, global = true, value_enum, default_value_t = OutputFormat::Human)]
    pub(crate) output: OutputFormat,

    /// More detail.
    #[arg(short, long, global = true, conflicts_with = "quiet")]
    pub(crate) verbose: bool,

    /// Only errors.
    #[arg(short, long, global = true)]
    pub(crate) quiet: bool,
}

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum OutputFormat {
    /// For people, on stderr (data such as graphs and schemas still go to stdout).
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
