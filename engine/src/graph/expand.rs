//! Groups and `for_each` expanded into step instances, with instance ids as the spec
//! names them: `g/node-2/s` for a step of a group, `s/node-2` for a `for_each` step.

use std::collections::HashMap;

use crate::diagnostic::{Code, Diagnostics, PlanDiagnostic};
use crate::params::Params;
use crate::plan::Plan;
use crate::plan::check::{is_finally, step_deps};
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
            if !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_.:-".contains(c)) =>
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
                diags.push(fail(format!(
                    "`for_each = \"{}\"` gives a list that cannot be used",
                    expr.value
                )));
                Vec::new()
            }
        },
        Ok(v) => {
            diags.push(fail(format!(
                "`for_each = \"{}\"` gives {}, not a list",
                expr.value,
                v.kind()
            )));
            Vec::new()
        }
        Err(e) => {
            diags.push(fail(format!(
                "`for_each = \"{}\"` cannot be evaluated: {e}",
                expr.value
            )));
            Vec::new()
        }
    }
}

/// The group element an instance belongs to.
#[derive(Clone, Copy)]
struct Element<'a> {
    /// Index of the group in [`Plan::groups`].
    group: usize,
    /// The element's key and position (`None` for a group without `for_each`).
    position: Option<(&'a str, usize, usize)>,
    /// The element itself (`item`).
    item: &'a serde_json::Value,
}

struct Expander<'p> {
    plan: &'p Plan,
    params: &'p Params,
    templates: Templates,
    diags: Diagnostics,
    graph: ExecutionGraph,
    /// Per step: its instances, with the group element position each belongs to.
    of_step: Vec<Vec<(usize, Option<usize>)>>,
}

impl Expander<'_> {
    fn push(
        &mut self,
        step: usize,
        id: String,
        item: Option<serde_json::Value>,
        index: Option<usize>,
        units: Vec<(usize, usize)>,
        element: Option<Element<'_>>,
    ) {
        let idx = self.graph.instances.len();
        self.graph.by_id.insert(id.clone(), idx);
        self.graph.instances.push(Instance {
            id,
            step,
            item,
            index,
            deps: Vec::new(),
            finally: is_finally(self.plan, step),
            units,
            group: element.map(|e| e.group),
            group_element: element
                .and_then(|e| e.position)
                .map(|(key, e, _)| (key.to_string(), e)),
        });
        self.of_step[step].push((idx, element.and_then(|e| e.position).map(|(_, e, _)| e)));
    }

    /// Adds the instances of step `step` (for one group element, if in a group).
    fn add_step(&mut self, step: usize, prefix: &str, element: Option<Element<'_>>) {
        let spec = &self.plan.steps[step];
        let base_units: Vec<(usize, usize)> = element
            .and_then(|e| e.position)
            .map(|(_, e, unit)| (unit, e))
            .into_iter()
            .collect();
        let (group_item, group_index) = match element.and_then(|e| e.position.map(|p| (e.item, p)))
        {
            Some((item, (_, e, _))) => (Some(item.clone()), Some(e)),
            None => (None, None),
        };
        let Some(expr) = &spec.for_each else {
            self.push(
                step,
                format!("{prefix}{}", spec.id.value),
                group_item,
                group_index,
                base_units,
                element,
            );
            return;
        };
        let items = for_each_items(
            self.plan,
            &self.templates,
            self.params,
            expr,
            &mut self.diags,
        );
        let keys = element_keys(&items);
        let unit = self.graph.units.len();
        self.graph.units.push(Unit {
            id: format!("{prefix}{}", spec.id.value),
            max_parallel: spec.max_parallel,
            max_failures: 0,
            elements: keys.clone(),
        });
        for (i, (item, key)) in items.into_iter().zip(keys).enumerate() {
            let mut units = base_units.clone();
            units.push((unit, i));
            self.push(
                step,
                format!("{prefix}{}/{key}", spec.id.value),
                Some(item),
                Some(i),
                units,
                element,
            );
        }
    }

    fn add_group(&mut self, g_idx: usize) {
        let g = &self.plan.groups[g_idx];
        let members: Vec<usize> = self
            .plan
            .steps_in(Some(&g.id.value))
            .map(|(i, _)| i)
            .collect();
        let Some(expr) = &g.for_each else {
            let element = Element {
                group: g_idx,
                position: None,
                item: &serde_json::Value::Null,
            };
            for &s in &members {
                self.add_step(s, &format!("{}/", g.id.value), Some(element));
            }
            return;
        };
        let items = for_each_items(
            self.plan,
            &self.templates,
            self.params,
            expr,
            &mut self.diags,
        );
        let keys = element_keys(&items);
        let unit = self.graph.units.len();
        self.graph.units.push(Unit {
            id: g.id.value.clone(),
            max_parallel: g.max_parallel,
            max_failures: g.max_failures,
            elements: keys.clone(),
        });
        for (e, (item, key)) in items.iter().zip(&keys).enumerate() {
            let element = Element {
                group: g_idx,
                position: Some((key, e, unit)),
                item,
            };
            for &s in &members {
                self.add_step(s, &format!("{}/{key}/", g.id.value), Some(element));
            }
        }
    }

    /// Instance dependencies: a step of the same group needs the instance of the same
    /// element; anything else needs every instance.
    fn link(&mut self) {
        let deps = step_deps(self.plan);
        for i in 0..self.graph.instances.len() {
            let inst = &self.graph.instances[i];
            let (step, element) = (inst.step, inst.group_element.as_ref().map(|(_, e)| *e));
            let group = self.plan.steps[step].group.as_ref().map(|g| &g.value);
            let mut d = Vec::new();
            for &j in &deps[step] {
                let local =
                    group.is_some() && self.plan.steps[j].group.as_ref().map(|g| &g.value) == group;
                d.extend(
                    self.of_step[j]
                        .iter()
                        .filter(|(_, el)| !local || *el == element)
                        .map(|(inst, _)| *inst),
                );
            }
            self.graph.instances[i].deps = d;
        }
    }
}

/// Expands `plan` with `params` into its instances.
///
/// # Errors
/// A `for_each` that does not give a list.
pub fn expand(plan: &Plan, params: &Params) -> Result<ExecutionGraph, Diagnostics> {
    let mut x = Expander {
        plan,
        params,
        templates: Templates::new(),
        diags: Diagnostics::new(),
        graph: ExecutionGraph::default(),
        of_step: vec![Vec::new(); plan.steps.len()],
    };
    for (step, _) in plan.steps_in(None) {
        x.add_step(step, "", None);
    }
    for g in 0..plan.groups.len() {
        x.add_group(g);
    }
    x.link();
    x.diags.into_result(x.graph)
}
