//! Approving manual steps: in advance (`--approve`, `--yes`), or at a prompt on a terminal.

use std::io::{BufRead, IsTerminal, Write};
use std::sync::Arc;

use indicatif::MultiProgress;
use rok_plan_engine::exec::{ApprovalPolicy, PreApproved};

use crate::cli::args::RunArgs;
use crate::exit::CliError;

/// `--approve`/`--yes` first; then, on a terminal, ask.
pub(crate) struct CliApprovals {
    pre: PreApproved,
    prompt: Option<Option<MultiProgress>>,
    asking: tokio::sync::Mutex<()>,
}

/// The login name, for approvals without `--approver`.
pub(crate) fn login_name() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .ok()
        .filter(|n| !n.is_empty())
        .or_else(passwd_name)
        .unwrap_or_else(|| format!("uid {}", unsafe_uid()))
}

fn unsafe_uid() -> u32 {
    // SAFETY: getuid(2) cannot fail and touches no memory.
    unsafe { libc::getuid() }
}

/// The user name of the real uid, from the passwd database.
fn passwd_name() -> Option<String> {
    let mut buf = vec![0u8; 4096];
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: getpwuid_r writes into `pwd` and `buf` (whose length we pass) only.
    let rc = unsafe {
        libc::getpwuid_r(
            unsafe_uid(),
            &mut pwd,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut result,
        )
    };
    if rc != 0 || result.is_null() || pwd.pw_name.is_null() {
        return None;
    }
    // SAFETY: on success pw_name points to a NUL-terminated string inside `buf`.
    let name = unsafe { std::ffi::CStr::from_ptr(pwd.pw_name) };
    name.to_str().ok().map(str::to_string)
}

impl CliApprovals {
    /// Whether manual steps are asked about at a prompt.
    pub(crate) fn interactive(args: &RunArgs) -> bool {
        std::io::stdin().is_terminal() && std::io::stderr().is_terminal() && !args.yes
    }

    pub(crate) fn new(args: &RunArgs, progress: Option<MultiProgress>) -> Arc<Self> {
        let interactive = Self::interactive(args);
        Arc::new(Self {
            pre: PreApproved {
                approver: args.approver.clone().unwrap_or_else(login_name),
                instances: args.approve.clone(),
                all: args.yes,
            },
            prompt: interactive.then_some(progress),
            asking: tokio::sync::Mutex::new(()),
        })
    }
}

#[async_trait::async_trait]
impl ApprovalPolicy for CliApprovals {
    async fn decide(&self, instance: &str, instructions: &str) -> Option<String> {
        if let Some(who) = self.pre.decide(instance, instructions).await {
            return Some(who);
        }
        let progress = self.prompt.clone()?;
        // One question at a time, even when several manual steps wait at once.
        let _turn = self.asking.lock().await;
        // The instructions are part of the question: the operator must read them before
        // answering, and progress output is suspended while asking.
        let mut question = format!("⏸ {instance} needs an operator:\n");
        for line in instructions.lines() {
            question.push_str(&format!("    {line}\n"));
        }
        question.push_str(&format!("Approve `{instance}` (done as instructed)? Type yes to approve, anything else to pause: "));
        let answer = tokio::task::spawn_blocking(move || {
            let ask = || {
                eprint!("{question}");
                let _ = std::io::stderr().flush();
                let mut line = String::new();
                let _ = std::io::stdin().lock().read_line(&mut line);
                line
            };
            match progress {
                Some(mp) => mp.suspend(ask),
                None => ask(),
            }
        })
        .await
        .ok()?;
        matches!(answer.trim().to_ascii_lowercase().as_str(), "yes" | "y")
            .then(|| self.pre.approver.clone())
    }
}

/// Refuses `--approve ID` naming no manual step instance of the plan: a typo would
/// otherwise be ignored silently and the step would pause again.
pub(crate) fn check_approve_ids(
    args: &RunArgs,
    plan: &rok_plan_engine::Plan,
    graph: &rok_plan_engine::graph::ExecutionGraph,
) -> Result<(), CliError> {
    let manual: Vec<&str> = graph
        .instances
        .iter()
        .filter(|i| plan.steps[i.step].type_name.value == "manual")
        .map(|i| i.id.as_str())
        .collect();
    for id in &args.approve {
        if !manual.contains(&id.as_str()) {
            let hint = rok_plan_engine::diagnostic::did_you_mean(id, manual.iter().copied())
                .map(|h| format!("; {h}"))
                .unwrap_or_default();
            return Err(CliError::Usage(format!(
                "--approve {id}: the plan has no manual step instance `{id}`{hint}"
            )));
        }
    }
    Ok(())
}
