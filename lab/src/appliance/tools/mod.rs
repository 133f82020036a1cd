//! The simulated Rok tools. The `lab` binary is all of them: each appliance's
//! `/usr/local/sbin` holds symlinks to it named after the tools, and [`dispatch`] picks
//! the tool by the file name it was started as.
//!
//! Every invocation is journalled, may meet an injected fault (fail, delay), and changes
//! the lab's state under its lock. A refused command prints `TOOL: error: ...` on stderr
//! and exits 1; a usage error exits 2.

mod apt;
mod cluster_ctl;
mod composer;
mod config;
mod gateway;
mod upgrade;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::error::ApplianceError;
use super::faults::FaultsFile;
use super::install::{COMMON_TOOLS, PNODE_TOOLS, ToolContext};
use super::journal::JournalWriter;
use super::paths::{LabPaths, TOOL_CONTEXT_IN_APPLIANCE};
use super::state::{LabState, StateStore, read_json};
use super::version::Version;

/// The environment variable that points a tool at a context file instead of the one in
/// the appliance's `/usr/local/sbin` (to run tools outside an appliance).
pub const TOOL_CONTEXT_ENV: &str = "ROK_LAB_TOOL_CONTEXT";

/// Why a tool refuses.
#[derive(Debug)]
pub(crate) struct Refusal {
    code: u8,
    message: String,
}

impl Refusal {
    /// The command cannot run in this state (exit 1).
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self {
            code: 1,
            message: message.into(),
        }
    }

    /// The command cannot run, with the program's own exit status (apt-get's 100).
    pub(crate) fn with_code(code: u8, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// The command line is wrong (exit 2).
    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Self {
            code: 2,
            message: message.into(),
        }
    }
}

impl From<ApplianceError> for Refusal {
    fn from(e: ApplianceError) -> Self {
        Self::new(format!("the simulated appliance is broken: {e}"))
    }
}

/// Result of a tool.
pub(crate) type ToolResult = Result<(), Refusal>;

/// What a tool knows about where it runs.
pub(crate) struct Tool {
    pub(crate) host: String,
    pub(crate) paths: LabPaths,
    /// What the tool prints on stdout.
    pub(crate) out: Vec<u8>,
}

impl Tool {
    pub(crate) fn store(&self) -> StateStore {
        StateStore::new(self.paths.clone())
    }

    /// Changes the state with `change` (written only on `Ok`).
    pub(crate) fn update<T>(
        &self,
        change: impl FnOnce(&mut LabState) -> Result<T, Refusal>,
    ) -> Result<T, Refusal> {
        self.store().update(change)?
    }

    pub(crate) fn read(&self) -> Result<LabState, Refusal> {
        Ok(self.store().read()?)
    }

    /// Prints a line on stdout.
    pub(crate) fn say(&mut self, line: impl AsRef<str>) {
        self.out.extend_from_slice(line.as_ref().as_bytes());
        self.out.push(b'\n');
    }

    /// The version of the image this host booted.
    pub(crate) fn boot_image(&self, state: &LabState) -> Result<Version, Refusal> {
        state
            .node(&self.host)
            .map(|n| n.boot_image)
            .ok_or_else(|| Refusal::new(format!("{} is not a member of the cluster", self.host)))
    }
}

/// Whether `name` is one of the simulated tools.
pub fn is_tool(name: &str) -> bool {
    COMMON_TOOLS.contains(&name)
        || PNODE_TOOLS.contains(&name)
        || Version::of_upgrade_tool(name).is_some()
}

/// If this process was started as a simulated tool (argv[0]'s file name), runs it and
/// returns its exit status; `None` when it is the `lab` command itself.
pub fn dispatch() -> Option<ExitCode> {
    let mut args = std::env::args();
    let argv0 = args.next()?;
    let name = Path::new(&argv0).file_name()?.to_str()?.to_string();
    if !is_tool(&name) {
        return None;
    }
    let rest: Vec<String> = args.collect();
    Some(run(&name, &rest))
}

fn context_file() -> PathBuf {
    std::env::var_os(TOOL_CONTEXT_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(TOOL_CONTEXT_IN_APPLIANCE))
}

/// Runs tool `name` with `args`.
pub fn run(name: &str, args: &[String]) -> ExitCode {
    if name == "gunicorn" {
        gateway::gunicorn();
    }
    let ctx: ToolContext = match read_json(&context_file()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{name}: error: not on a rok-plan lab appliance ({e})");
            return ExitCode::from(127);
        }
    };
    let paths = LabPaths::new(&ctx.lab_dir);
    let mut argv = vec![name.to_string()];
    argv.extend(args.iter().cloned());
    let journal = match JournalWriter::start(paths.clone(), &ctx.host, &argv) {
        Ok(j) => j,
        Err(e) => {
            eprintln!("{name}: error: {e}");
            return ExitCode::from(1);
        }
    };
    let injected = match FaultsFile::new(paths.clone()).take(&ctx.host, &argv) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("{name}: error: {e}");
            let _ = journal.end(1);
            return ExitCode::from(1);
        }
    };
    std::thread::sleep(injected.before);
    let code = if let Some(code) = injected.fail {
        eprintln!(
            "{name}: error: injected failure (rok-plan lab fault on {})",
            ctx.host
        );
        code
    } else {
        let mut tool = Tool {
            host: ctx.host.clone(),
            paths,
            out: Vec::new(),
        };
        let result = run_tool(&mut tool, name, args);
        let mut stdout = std::io::stdout().lock();
        let _ = stdout.write_all(&tool.out);
        let _ = stdout.flush();
        match result {
            Ok(()) => 0,
            Err(r) => {
                eprintln!("{name}: error: {}", r.message);
                i32::from(r.code)
            }
        }
    };
    std::thread::sleep(injected.after);
    let _ = journal.end(code);
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

fn run_tool(tool: &mut Tool, name: &str, args: &[String]) -> ToolResult {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match name {
        "rok-cluster-ctl" => cluster_ctl::run(tool, &args),
        "rok-config" => config::run(tool, &args),
        "rok-composer-tool" => composer::run(tool, &args),
        "rok-cluster-gc" => composer::gc(tool, &args),
        "rok-gw-manage" => gateway::manage(tool, &args),
        "rok-gw-service" => gateway::service(tool, &args),
        "apt-get" => apt::run(tool, &args),
        other => match Version::of_upgrade_tool(other) {
            Some(target) => upgrade::run(tool, target, &args),
            None => Err(Refusal::usage(format!("unknown tool {other}"))),
        },
    }
}
