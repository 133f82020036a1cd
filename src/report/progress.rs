//! Run events for people, on stderr: which steps run and for how long, what finished, and
//! at the end a summary with what to do next.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use rok_plan_engine::exec::{RunEvent, RunEventKind};
use rok_plan_engine::state::{RunOutcome, StepState};

/// Turns events into lines and spinners.
pub(crate) struct HumanReporter {
    bars: Option<MultiProgress>,
    running: HashMap<String, ProgressBar>,
    verbose: bool,
    /// Manual steps are asked about at a prompt that shows their instructions.
    prompting: bool,
    quiet: bool,
    state_flag: String,
}

/// A duration as people read it: `850ms`, `12.3s`, `4m05s`, `1h02m`.
pub(crate) fn human_duration(ms: u64) -> String {
    match ms {
        0..=999 => format!("{ms}ms"),
        1_000..=59_999 => format!("{:.1}s", ms as f64 / 1000.0),
        60_000..=3_599_999 => format!("{}m{:02}s", ms / 60_000, (ms / 1000) % 60),
        _ => format!("{}h{:02}m", ms / 3_600_000, (ms / 60_000) % 60),
    }
}

impl HumanReporter {
    /// Spinners only on a terminal; `state_flag` is repeated in suggested commands.
    pub(crate) fn new(verbose: bool, quiet: bool, state_flag: String) -> Self {
        let bars = (std::io::stderr().is_terminal() && !quiet)
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(4)));
        Self {
            bars,
            running: HashMap::new(),
            verbose,
            prompting: false,
            quiet,
            state_flag,
        }
    }

    /// Instructions of manual steps are shown by the approval prompt, not here.
    pub(crate) fn set_prompting(&mut self, yes: bool) {
        self.prompting = yes;
    }

    /// The progress display, for prompts that must not be drawn over.
    pub(crate) fn multi(&self) -> Option<MultiProgress> {
        self.bars.clone()
    }

    fn line(&self, text: &str) {
        match &self.bars {
            Some(mp) => {
                let _ = mp.println(text);
            }
            None => eprintln!("{text}"),
        }
    }

    fn say(&self, text: &str) {
        if !self.quiet {
            self.line(text);
        }
    }

    /// Shows one event.
    pub(crate) fn event(&mut self, e: &RunEvent) {
        match &e.kind {
            RunEventKind::RunStarted {
                plan,
                instances,
                already_done,
                resumed,
            } => {
                let verb = if *resumed { "Resuming" } else { "Starting" };
                let done = if *already_done > 0 {
                    format!(", {already_done} already done")
                } else {
                    String::new()
                };
                self.say(&format!(
                    "{verb} run {} of plan {plan}: {instances} steps{done}",
                    e.run_id
                ));
            }
            RunEventKind::PlanChanged {
                added,
                removed,
                changed,
            } => {
                self.say(&format!(
                    "The plan changed (--allow-plan-change): {} added, {} removed, {} changed (they run again)",
                    added.len(),
                    removed.len(),
                    changed.len()
                ));
            }
            RunEventKind::Rerunning { instances } => {
                self.say(&format!(
                    "Running again (--rerun): {}",
                    instances.join(", ")
                ));
            }
            RunEventKind::StepStarted {
                instance,
                attempt,
                action,
            } => {
                let attempt = if *attempt > 1 {
                    format!(" (attempt {attempt})")
                } else {
                    String::new()
                };
                if let Some(mp) = &self.bars {
                    let bar = mp.add(ProgressBar::new_spinner());
                    bar.set_style(
                        ProgressStyle::with_template("{spinner} {prefix} [{elapsed}] {wide_msg}")
                            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                    );
                    bar.set_prefix(format!("{instance}{attempt}"));
                    bar.set_message(headline(action));
                    bar.enable_steady_tick(Duration::from_millis(250));
                    self.running.insert(instance.clone(), bar);
                } else if !self.quiet {
                    eprintln!("▶ {instance}{attempt}: {}", headline(action));
                }
            }
            RunEventKind::StepOutput { instance, text, .. } => {
                if self.verbose {
                    for l in text.lines() {
                        self.line(&format!("  {instance} | {l}"));
                    }
                }
            }
            RunEventKind::StepRetrying {
                instance,
                attempt,
                error,
                delay_ms,
            } => {
                self.finish_bar(instance);
                self.say(&format!(
                    "↻ {instance}: attempt {attempt} failed: {error}; retrying in {}",
                    human_duration(*delay_ms)
                ));
            }
            RunEventKind::ApprovalNeeded {
                instance,
                instructions,
            } => {
                self.finish_bar(instance);
                if self.prompting {
                    return;
                }
                self.say(&format!("⏸ {instance} needs an operator:"));
                for l in instructions.lines() {
                    self.say(&format!("    {l}"));
                }
            }
            RunEventKind::Approved { instance, approver } => {
                self.say(&format!("✔ {instance} approved by {approver}"));
            }
            RunEventKind::StepFinished {
                instance,
                state,
                duration_ms,
                error,
                ..
            } => {
                self.finish_bar(instance);
                let took = duration_ms
                    .map(|d| format!(" ({})", human_duration(d)))
                    .unwrap_or_default();
                let line = match state {
                    StepState::Succeeded => format!("✓ {instance}{took}"),
                    StepState::Satisfied => format!("✓ {instance}: already in place (check){took}"),
                    StepState::Skipped => format!("- {instance}: skipped (`when` is false)"),
                    StepState::Failed => format!(
                        "✗ {instance} failed{took}: {}",
                        error.as_deref().unwrap_or("")
                    ),
                    StepState::Blocked => {
                        format!("⊘ {instance} blocked: {}", error.as_deref().unwrap_or(""))
                    }
                    StepState::AwaitingApproval => format!("⏸ {instance}: awaiting approval"),
                    StepState::Pending | StepState::Running => return,
                };
                if matches!(
                    state,
                    StepState::Failed | StepState::Blocked | StepState::AwaitingApproval
                ) {
                    self.line(&line);
                } else {
                    self.say(&line);
                }
            }
            RunEventKind::Interrupting { grace_ms } => {
                self.line(&format!(
                    "Interrupted: no new steps start; running steps get {} to finish (interrupt again to kill them now)",
                    human_duration(*grace_ms)
                ));
            }
            RunEventKind::RunFinished {
                outcome,
                counts,
                awaiting_approval,
                in_doubt,
                failed,
            } => {
                for (_, bar) in self.running.drain() {
                    bar.finish_and_clear();
                }
                self.summary(
                    &e.run_id,
                    *outcome,
                    counts,
                    awaiting_approval,
                    in_doubt,
                    failed,
                );
            }
        }
    }

    fn finish_bar(&mut self, instance: &str) {
        if let Some(bar) = self.running.remove(instance) {
            bar.finish_and_clear();
        }
    }

    fn summary(
        &self,
        run: &str,
        outcome: RunOutcome,
        counts: &std::collections::BTreeMap<String, usize>,
        awaiting: &[String],
        in_doubt: &[String],
        failed: &[(String, String)],
    ) {
        if self.quiet && outcome == RunOutcome::Succeeded {
            // `-q`: only problems, and what to do about them.
            return;
        }
        let state = &self.state_flag;
        let mut out = String::new();
        out.push_str(&format!("\nRun {run}: {}\n", outcome.as_str()));
        let width = counts.keys().map(String::len).max().unwrap_or(0);
        for (k, v) in counts {
            out.push_str(&format!("  {k:width$}  {v}\n"));
        }
        for (id, err) in failed {
            out.push_str(&format!("  failed: {id}: {err}\n"));
        }
        if !awaiting.is_empty() {
            let approvals: String = awaiting.iter().map(|a| format!(" --approve {a}")).collect();
            out.push_str(&format!(
                "To continue once done: rok-plan{state} resume {run}{approvals}\n"
            ));
        }
        if !in_doubt.is_empty() {
            out.push_str(&format!(
                "Steps interrupted while running (in doubt): {}\n",
                in_doubt.join(", ")
            ));
        }
        match outcome {
            RunOutcome::Failed => out.push_str(&format!(
                "Fix the cause, then: rok-plan{state} resume {run}\n"
            )),
            RunOutcome::Interrupted => {
                out.push_str(&format!("To continue: rok-plan{state} resume {run}\n"))
            }
            _ => {}
        }
        self.line(out.trim_end());
    }
}

/// One line for a step's action: its first line, where a leading shell option line
/// (`set -e`) gives way to the first command, and `…` says more lines follow.
pub(crate) fn headline(action: &str) -> String {
    let mut lines = action.lines().filter(|l| !l.trim().is_empty());
    let mut head = lines.next().unwrap_or_default().to_string();
    let mut rest: Vec<&str> = lines.collect();
    let is_option = |l: &str| {
        let l = l.trim();
        l.starts_with("set -") && l[5..].chars().all(|c| c.is_ascii_alphabetic())
    };
    if let Some((prefix, last)) = head.rsplit_once(": ")
        && is_option(last)
        && let Some(pos) = rest.iter().position(|l| !is_option(l))
    {
        head = format!("{prefix}: {}", rest[pos].trim());
        rest.drain(..=pos);
    }
    if rest.is_empty() {
        head
    } else {
        format!("{head} …")
    }
}

#[cfg(test)]
mod headline_tests {
    use super::headline;

    #[test]
    fn a_leading_set_e_gives_way_to_the_first_command() {
        assert_eq!(
            headline("ssh rok-1: set -e\nrok-cluster-ctl member-list\ngrep x"),
            "ssh rok-1: rok-cluster-ctl member-list …"
        );
        assert_eq!(headline("ssh rok-1: set -e\nuptime"), "ssh rok-1: uptime");
        assert_eq!(headline("$ echo hi"), "$ echo hi");
        assert_eq!(headline("$ a\nb"), "$ a …");
    }
}
