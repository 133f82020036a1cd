//! Groups and `for_each` expanded into step instances, with instance ids as the spec
//! names them: `g/node-2/s` for a step of a group, `s/node-2` for a `for_each` step.

use std::collections::HashMap;

use crate::diagnostic::{Code, Diagnostics, PlanDiagnostic};
use crate::params::Params;
use crate::plan::check::{is_finally, step_deps};
use crate::plan::Plan;
use crate::source::Spanned;
use crate::template::Templates;

/// One step instance: a step of the plan for one element of its `for_each`(s).
#[derive(Clone, Debug)]
pub struct Instance {
    /// The instance id (`g/node-2/s`).
    pub id: String,
    /// Index of the step in [`Plan::steps`].
    pub step: usize,
    /// The `for_each` element (`item`) this instance runs for, innermost first.
    pub item: Option<serde_json::Value>,
    /// Position of `item` in its list (`index`).
    pub index: Option<usize>,
    /// Instances (indices into [`ExecutionGraph::instances`]) that must end first.
    pub deps: Vec<usize>,
    /// Runs after every other instance has ended.
    pub finally: bool,
    /// The rolling units this instance belongs to: `(unit, element)`.
    pub units: Vec<(usize, usize)>,
    /// Index of the group in [`Plan::groups`], if the step is in one.
    pub group: Option<usize>,
    /// Group element key and index, if the group has `for_each`.
    pub group_element: Option<(String, usize)>,
}

/// A `for_each` whose elements are scheduled together: a group's, or a step's.
#[derive(Clone, Debug)]
pub struct Unit {
    /// The group or step id.
    pub id: String,
    /// Elements in progress at once (`None`: unlimited).
    pub max_parallel: Option<u32>,
    /// Elements that may fail before the unit stops starting new ones.
    pub max_failures: u32,
    /// The element keys, in order.
    pub elements: Vec<String>,
}

/// Every instance of a plan for one set of parameter values.
#[derive(Clone, Debug, Default)]
pub struct ExecutionGraph {
    /// The instances, dependencies before dependents within each step's order.
    pub instances: Vec<Instance>,
    /// The `for_each` units, for `max_parallel` and `max_failures`.
    pub units: Vec<Unit>,
    by_id: HashMap<String, usize>,
}

impl ExecutionGraph {
    /// The instance with id `id`.
    pub fn find(&self, id: &str) -> Option<usize> {
        self.by_id.get(id).copied()
    }

    /// Instances that directly depend on each instance.
    pub fn dependents(&self) -> Vec<Vec<usize>> {
        let mut out = vec![Vec::new(); self.instances.len()];
        for (i, inst) in self.instances.iter().enumerate() {
            for d in &inst.deps {
                out[*d].push(i);
            }
        }
        out
    }
}

/// An element key as it appears in instance ids: the element itself when it is a plain
/// word, else its index.
fn element_keys(items: &[serde_json::Value]) -> Vec<String> {
    let plain = |v: &serde_json::Value| match v {
        serde_json::Value::String(s)
            if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "_.:-".contains(c)) =>
        {
            Some(s.clone())
        }
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    let keys: Vec<Option<String>> = items.iter().map(plain).collect();
    let mut seen = std::collections::HashSet::new();
    let unique = keys.iter().flatten().all(|k| seen.insert(k.clone()));
    keys.into_iter()
        .enumerate()
        .map(|(i, k)| match k {
            Some(k) if unique => k,
            _ => i.to_string(),
        })
        .collect()
}

/// Evaluates a `for_each` expression against the parameters.
fn for_each_items(
    plan: &Plan,
    templates: &Templates,
    params: &Params,
    expr: &Spanned<String>,
    diags: &mut Diagnostics,
) -> Vec<serde_json::Value> {
    let ctx = minijinja::context! { params => params.to_template_value(false) };
    let fail = |message: String| {
        PlanDiagnostic::new(Code::ForEachNotList, &plan.source, message)
            .at(expr.span.clone(), "not a list")
            .help("`for_each` takes an expression giving a list, e.g. for_each = \"params.nodes\"")
    };
    match templates.eval(&expr.value, &ctx) {
        Ok(v) if v.kind() == minijinja::value::ValueKind::Seq => match serde_json::to_value(&v) {
            Ok(serde_json::Value::Array(items)) => items,
            _ => {
                diags.push(fail(format!("`for_each = \"{}\"` gives a list that cannot be used", expr.value)));
                Vec::new()
            }
        },
        Ok(v) => {
            diags.push(fail(format!("`for_each = \"{}\"` gives {}, not a list", expr.value, v.kind())));
            Vec::new()
        }
        Err(e) => {
            diags.push(fail(format!("`for_each = \"{}\"` cannot be evaluated: {e}", expr.value)));
            Vec::new()
        }
    }
}

/// Expands `plan` with `params` into its instances.
///
/// # Errors
/// A `for_each` that does not give a list.
pub fn expand(plan: &Plan, params: &Params) -> Result<ExecutionGraph, Diagnostics> {
    let templates = Templates::new();
    let mut diags = Diagnostics::new();
    let mut graph = ExecutionGraph::default();
    // Per step: its instances, with the group element each belongs to.
    let mut of_step: Vec<Vec<(usize, Option<usize>)>> = vec![Vec::new(); plan.steps.len()];

    let mut add_step = |graph: &mut ExecutionGraph,
                        diags: &mut Diagnostics,
                        step_idx: usize,
                        prefix: &str,
                        group: Option<(usize, &(String, usize), &serde_json::Value, Option<usize>)>| {
        let step = &plan.steps[step_idx];
        let finally = is_finally(plan, step_idx);
        let group_unit = group.and_then(|(_, (_, e), _, unit)| unit.map(|u| (u, *e)));
        let base_units: Vec<(usize, usize)> = group_unit.into_iter().collect();
        let (g_item, g_index) = match group {
            Some((_, (_, e), item, Some(_))) => (Some(item.clone()), Some(*e)),
            _ => (None, None),
        };
        let mut push = |graph: &mut ExecutionGraph, id: String, item, index, units: Vec<(usize, usize)>| {
            let idx = graph.instances.len();
            graph.by_id.insert(id.clone(), idx);
            graph.instances.push(Instance {
                id,
                step: step_idx,
                item,
                index,
                deps: Vec::new(),
                finally,
                units,
                group: group.map(|(g, ..)| g),
                group_element: group.and_then(|(_, ge, _, unit)| unit.map(|_| ge.clone())),
            });
            of_step[step_idx].push((idx, group.map(|(_, (_, e), _, _)| *e)));
        };
        match &step.for_each {
            None => push(graph, format!("{prefix}{}", step.id.value), g_item, g_index, base_units),
            Some(expr) => {
                let items = for_each_items(plan, &templates, params, expr, diags);
                let keys = element_keys(&items);
                let unit = graph.units.len();
                graph.units.push(Unit {
                    id: format!("{prefix}{}", step.id.value),
                    max_parallel: step.max_parallel,
                    max_failures: 0,
                    elements: keys.clone(),
                });
                for (i, (item, key)) in items.into_iter().zip(keys).enumerate() {
                    let mut units = base_units.clone();
                    units.push((unit, i));
                    push(graph, format!("{prefix}{}/{key}", step.id.value), Some(item), Some(i), units);
                }
            }
        }
    };

    for (step_idx, _) in plan.steps_in(None) {
        add_step(&mut graph, &mut diags, step_idx, "", None);
    }
    for (g_idx, g) in plan.groups.iter().enumerate() {
        let members: Vec<usize> = plan.steps_in(Some(&g.id.value)).map(|(i, _)| i).collect();
        match &g.for_each {
            None => {
                let none = (String::new(), 0);
                for &s in &members {
                    add_step(&mut graph, &mut diags, s, &format!("{}/", g.id.value), Some((g_idx, &none, &serde_json::Value::Null, None)));
                }
            }
            Some(expr) => {
                let items = for_each_items(plan, &templates, params, expr, &mut diags);
                let keys = element_keys(&items);
                let unit = graph.units.len();
                graph.units.push(Unit {
                    id: g.id.value.clone(),
                    max_parallel: g.max_parallel,
                    max_failures: g.max_failures,
                    elements: keys.clone(),
                });
                for (e, (item, key)) in items.iter().zip(keys).enumerate() {
                    let element = (key.clone(), e);
                    for &s in &members {
                        add_step(&mut graph, &mut diags, s, &format!("{}/{key}/", g.id.value), Some((g_idx, &element, item, Some(unit))));
                    }
                }
            }
        }
    }

    let deps = step_deps(plan);
    for i in 0..graph.instances.len() {
        let (step, element) = {
            let inst = &graph.instances[i];
            (inst.step, inst.group_element.as_ref().map(|(_, e)| *e))
        };
        let same_group = plan.steps[step].group.as_ref().map(|g| g.value.clone());
        let mut d = Vec::new();
        for &j in &deps[step] {
            let local = same_group.is_some() && plan.steps[j].group.as_ref().map(|g| &g.value) == same_group.as_ref();
            for &(inst, el) in &of_step[j] {
                if !local || el == element {
                    d.push(inst);
                }
            }
        }
        graph.instances[i].deps = d;
    }
    diags.into_result(graph)
}
