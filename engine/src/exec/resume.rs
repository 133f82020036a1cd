//! Preparing a resume: which instances run again, which stay done, which are in doubt,
//! and what changed in the plan.

use std::collections::BTreeSet;

use serde::Serialize;

use crate::diagnostic::closest_name;
use crate::exec::ExecError;
use crate::graph::ExecutionGraph;
use crate::plan::Plan;
use crate::state::{RunSnapshot, StepRecord, StepState};
use crate::step::StepRegistry;

/// An operator's decisions for a resume.
#[derive(Clone, Debug, Default)]
pub struct ResumeOptions {
    /// Instances (or steps, groups, group elements) to count as done (`--assume-done`).
    pub assume_done: Vec<String>,
    /// Instances (or steps, groups, group elements) to run again, with everything that
    /// depends on them (`--rerun`).
    pub rerun: Vec<String>,
    /// Go on although the plan changed (`--allow-plan-change`).
    pub allow_plan_change: bool,
}

/// A step left `running` by a crash that cannot be decided automatically.
#[derive(Clone, Debug, Serialize)]
pub struct InDoubt {
    /// The instance.
    pub instance: String,
    /// Why no automatic decision is possible.
    pub reason: String,
}

/// What changed in a plan since its run began.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct PlanDiff {
    /// Instances the new plan has and the run did not.
    pub added: Vec<String>,
    /// Instances the run had and the new plan does not.
    pub removed: Vec<String>,
    /// Instances whose step definition changed.
    pub changed: Vec<String>,
}

impl PlanDiff {
    /// No step changed.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }
}

/// Instances that a name stands for: an instance id, or everything under a step, group
/// or element id (`slaves`, `slaves/rok-2`, `unpin`).
pub(crate) fn select(graph: &ExecutionGraph, plan: &Plan, name: &str) -> Vec<usize> {
    graph
        .instances
        .iter()
        .enumerate()
        .filter(|(_, inst)| {
            inst.id == name
                || inst.id.starts_with(&format!("{name}/"))
                || (plan.steps[inst.step].group.is_none() && plan.steps[inst.step].id.value == name)
        })
        .map(|(i, _)| i)
        .collect()
}

fn unknown(run: &str, graph: &ExecutionGraph, name: &str) -> ExecError {
    ExecError::UnknownInstance {
        run: run.to_string(),
        id: name.to_string(),
        suggestion: closest_name(name, graph.instances.iter().map(|i| i.id.as_str()))
            .map(str::to_string),
    }
}

/// Everything an instance transitively needed by, i.e. its dependents, closed.
fn dependents_closure(graph: &ExecutionGraph, roots: &[usize]) -> BTreeSet<usize> {
    let dependents = graph.dependents();
    let mut out = BTreeSet::new();
    let mut stack = roots.to_vec();
    while let Some(i) = stack.pop() {
        if out.insert(i) {
            stack.extend(dependents[i].iter().copied());
        }
    }
    out
}

/// The instances' records to resume with, and the `--rerun` list (for the operator to see
/// before anything starts).
pub(crate) struct Prepared {
    pub(crate) records: Vec<StepRecord>,
    pub(crate) rerun: Vec<String>,
    pub(crate) diff: PlanDiff,
}

/// Decides every instance's state for the resume.
///
/// # Errors
/// [`ExecError::PlanChanged`] without `allow_plan_change`; [`ExecError::UnknownInstance`];
/// [`ExecError::InDoubt`] listing steps that need the operator's decision.
pub(crate) fn prepare(
    snapshot: &RunSnapshot,
    plan: &Plan,
    registry: &StepRegistry,
    graph: &ExecutionGraph,
    fingerprints: &[String],
    plan_changed: bool,
    options: &ResumeOptions,
) -> Result<Prepared, ExecError> {
    let run = &snapshot.run.id;
    let mut diff = PlanDiff::default();
    if plan_changed {
        let new_ids: BTreeSet<&str> = graph.instances.iter().map(|i| i.id.as_str()).collect();
        diff.removed = snapshot
            .steps
            .keys()
            .filter(|k| !new_ids.contains(k.as_str()))
            .cloned()
            .collect();
        for (i, inst) in graph.instances.iter().enumerate() {
            match snapshot.steps.get(&inst.id) {
                None => diff.added.push(inst.id.clone()),
                Some(r) if r.spec_hash != fingerprints[i] => diff.changed.push(inst.id.clone()),
                Some(_) => {}
            }
        }
        if !diff.is_empty() && !options.allow_plan_change {
            return Err(ExecError::PlanChanged {
                run: run.clone(),
                diff,
            });
        }
    }

    let mut assume: BTreeSet<usize> = BTreeSet::new();
    for name in &options.assume_done {
        let found = select(graph, plan, name);
        if found.is_empty() {
            return Err(unknown(run, graph, name));
        }
        assume.extend(found);
    }
    let mut roots = Vec::new();
    for name in &options.rerun {
        let found = select(graph, plan, name);
        if found.is_empty() {
            return Err(unknown(run, graph, name));
        }
        roots.extend(found);
    }
    let rerun = dependents_closure(graph, &roots);

    let mut records = Vec::with_capacity(graph.instances.len());
    let mut in_doubt = Vec::new();
    for (i, inst) in graph.instances.iter().enumerate() {
        let fresh = StepRecord::pending(run, &inst.id, fingerprints[i].clone());
        let mut r = snapshot.steps.get(&inst.id).cloned().unwrap_or(fresh);
        let changed = diff.changed.contains(&inst.id);
        r.spec_hash.clone_from(&fingerprints[i]);
        if assume.contains(&i) && !r.state.is_success() {
            let missing: Vec<String> = crate::step::step_outputs(&plan.steps[inst.step], registry)
                .into_iter()
                .filter(|o| !r.outputs.contains_key(o))
                .collect();
            if !missing.is_empty() {
                return Err(ExecError::OutputsUnknown {
                    run: run.clone(),
                    instance: inst.id.clone(),
                    outputs: missing,
                });
            }
            r.state = StepState::Succeeded;
            r.last_error = Some("assumed done by the operator (--assume-done)".into());
        } else if rerun.contains(&i) || changed {
            r.state = StepState::Pending;
            r.failure_ignored = false;
        } else {
            match r.state {
                StepState::Failed if r.failure_ignored => {}
                StepState::Failed | StepState::Blocked | StepState::AwaitingApproval => {
                    r.state = StepState::Pending
                }
                StepState::Running => {
                    let step = &plan.steps[inst.step];
                    let idempotent = step
                        .idempotent
                        .or_else(|| {
                            registry
                                .get(&step.type_name.value)
                                .map(|t| t.schema().idempotent)
                        })
                        .unwrap_or(false);
                    if step.check.is_some() || idempotent {
                        // Its `check` decides before the next attempt, or it is safe to repeat.
                        r.state = StepState::Pending;
                    } else {
                        in_doubt.push(InDoubt {
                            instance: inst.id.clone(),
                            reason: format!(
                                "`{}` was running when the run stopped; it is not idempotent and has no `check` to tell whether it took effect",
                                inst.id
                            ),
                        });
                    }
                }
                _ => {}
            }
        }
        records.push(r);
    }
    // A resume that has work to do ends the run anew: its finally steps run again at that
    // end, after the work they clean up after (a node uncordoned when the run failed is
    // cordoned again by the rerun work, and must be uncordoned once more).
    let done = |r: &StepRecord| {
        r.state.is_success() || (r.state == StepState::Failed && r.failure_ignored)
    };
    let reopened = graph
        .instances
        .iter()
        .zip(&records)
        .any(|(inst, r)| !inst.finally && !done(r));
    if reopened {
        for (i, (inst, r)) in graph.instances.iter().zip(records.iter_mut()).enumerate() {
            if inst.finally && r.state != StepState::Running && !assume.contains(&i) {
                r.state = StepState::Pending;
                r.failure_ignored = false;
            }
        }
    }
    if !in_doubt.is_empty() {
        return Err(ExecError::InDoubt {
            run: run.clone(),
            instances: in_doubt,
        });
    }
    let rerun = rerun
        .into_iter()
        .map(|i| graph.instances[i].id.clone())
        .collect();
    Ok(Prepared {
        records,
        rerun,
        diff,
    })
}
