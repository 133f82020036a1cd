//! What a run would do, without doing it: every instance rendered, in parallel waves.

use minijinja::Value;
use serde::Serialize;

use crate::diagnostic::{Code, Diagnostics, PlanDiagnostic};
use crate::duration::DisplayDuration;
use crate::graph::{ExecutionGraph, waves};
use crate::params::{ParamOrigin, Params};
use crate::plan::{OnFailure, Plan};
use crate::source::Spanned;
use crate::step::{FieldKind, StepRegistry};
use crate::template::{Quoting, Templates, placeholder_steps, render_fields, render_value};

/// The whole preview (`rok-plan plan --output json` prints it).
#[derive(Debug, Serialize)]
pub struct PlanPreview {
    /// Version of this document's layout.
    pub version: u32,
    /// `[plan] name`.
    pub plan: String,
    /// `[plan] description`.
    pub description: Option<String>,
    /// Parameter values (secrets as `***`).
    pub params: Vec<ParamPreview>,
    /// The waves, in order.
    pub waves: Vec<WavePreview>,
    /// How many instances in all.
    pub instances: usize,
    /// How many are skipped by `when` (as far as can be known before the run).
    pub skipped: usize,
}

/// One parameter's value and where it came from.
#[derive(Debug, Serialize)]
pub struct ParamPreview {
    /// Its name.
    pub name: String,
    /// The value (`***` for secrets).
    pub value: serde_json::Value,
    /// `set`, `file`, `env` or `default`.
    pub origin: Option<ParamOrigin>,
    /// Whether it is secret.
    pub secret: bool,
}

/// Instances that could run at the same time.
#[derive(Debug, Serialize)]
pub struct WavePreview {
    /// 1-based.
    pub number: usize,
    /// The instances.
    pub instances: Vec<InstancePreview>,
}

/// Whether `when` lets an instance run.
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum WhenDecision {
    /// It runs.
    Run,
    /// `when` is false: it will be `skipped`.
    Skip,
    /// `when` reads values only a run can know.
    AtRunTime,
}

/// One instance, rendered.
#[derive(Debug, Serialize)]
pub struct InstancePreview {
    /// The instance id.
    pub id: String,
    /// The step type.
    #[serde(rename = "type")]
    pub step_type: String,
    /// The step's description.
    pub description: Option<String>,
    /// What it does, in one line (the command, the API call, the instructions).
    pub action: String,
    /// Every field, rendered.
    pub fields: serde_json::Map<String, serde_json::Value>,
    /// The rendered `check`, if any.
    pub check: Option<String>,
    /// Instance ids it waits for.
    pub needs: Vec<String>,
    /// The `when` expressions (group's and step's).
    pub when: Vec<String>,
    /// What `when` decides.
    pub decision: WhenDecision,
    /// Timeout in force.
    pub timeout: Option<String>,
    /// Tries in all.
    pub attempts: u32,
    /// Failure policy in force.
    pub on_failure: OnFailure,
    /// Safe to rerun after a crash.
    pub idempotent: bool,
    /// Outputs it captures.
    pub captures: Vec<String>,
    /// Runs after everything else.
    pub finally: bool,
}

/// Builds the preview of `plan` with `params` expanded into `graph`.
///
/// # Errors
/// A template that fails to render for some instance.
pub fn preview(
    plan: &Plan,
    registry: &StepRegistry,
    params: &Params,
    graph: &ExecutionGraph,
) -> Result<PlanPreview, Diagnostics> {
    let templates = Templates::new();
    let mut diags = Diagnostics::new();
    let params_value = params.to_template_value(true);
    let top_steps = placeholder_steps(plan, registry, None);
    let group_steps: Vec<Value> = plan
        .groups
        .iter()
        .map(|g| placeholder_steps(plan, registry, Some(&g.id.value)))
        .collect();
    let run = minijinja::context! { id => Value::from_safe_string("<run.id>".into()), failed => Value::from_safe_string("<run.failed>".into()) };

    let mut rendered = Vec::with_capacity(graph.instances.len());
    for inst in &graph.instances {
        let step = &plan.steps[inst.step];
        let Some(step_type) = registry.get(&step.type_name.value) else {
            rendered.push(None);
            continue;
        };
        let schema = step_type.schema();
        let steps = inst.group.map_or(&top_steps, |g| &group_steps[g]);
        // `item` and `index` exist only in a `for_each`: elsewhere they stay undefined.
        let ctx = match &inst.item {
            Some(item) => minijinja::context! {
                params => params_value.clone(),
                steps => steps.clone(),
                item => Value::from(minijinja::value::Serde(item.clone())),
                index => inst.index,
                run => run.clone(),
            },
            None => {
                minijinja::context! { params => params_value.clone(), steps => steps.clone(), run => run.clone() }
            }
        };
        let mut fail = |span: std::ops::Range<usize>, message: String| {
            diags.push(
                PlanDiagnostic::new(Code::TemplateSyntax, &plan.source, format!("instance `{}`: {message}", inst.id))
                    .at(span, "cannot be rendered")
                    .help("templates can read params, steps.ID.outputs.NAME of needed steps, item, index and run.id"),
            );
        };
        let fields = match render_fields(
            &templates,
            schema,
            step,
            plan.defaults.context.as_ref(),
            &ctx,
        ) {
            Ok(f) => f,
            Err(e) => {
                fail(e.span.clone(), e.to_string());
                rendered.push(None);
                continue;
            }
        };
        let check = match &step.check {
            Some(c) => match render_value(&templates, "check", c, FieldKind::Shell, &ctx) {
                Ok(v) => v.as_str().map(str::to_string),
                Err(e) => {
                    fail(e.span.clone(), e.to_string());
                    None
                }
            },
            None => None,
        };
        let group = inst.group.map(|g| &plan.groups[g]);
        let whens: Vec<&Spanned<String>> = group
            .and_then(|g| g.when.as_ref())
            .into_iter()
            .chain(step.when.as_ref())
            .collect();
        let decision = decide(&templates, &whens, &ctx);
        rendered.push(Some(InstancePreview {
            id: inst.id.clone(),
            step_type: step.type_name.value.clone(),
            description: step.description.as_ref().map(|d| {
                templates
                    .render(&d.value, Quoting::Plain, &ctx)
                    .unwrap_or_else(|_| d.value.clone())
            }),
            action: step_type.describe(&fields),
            fields,
            check,
            needs: inst
                .deps
                .iter()
                .map(|d| graph.instances[*d].id.clone())
                .collect(),
            when: whens.iter().map(|w| w.value.clone()).collect(),
            decision,
            timeout: step
                .effective_timeout(&plan.defaults)
                .map(|d| DisplayDuration(d).to_string()),
            attempts: step.effective_retry(&plan.defaults).attempts,
            on_failure: step.effective_on_failure(&plan.defaults),
            idempotent: step.idempotent.unwrap_or(schema.idempotent),
            captures: crate::step::step_outputs(step, registry),
            finally: inst.finally,
        }));
    }
    if !diags.is_empty() {
        return diags.into_result(unreachable_preview());
    }
    let waves: Vec<WavePreview> = waves(graph)
        .into_iter()
        .enumerate()
        .map(|(n, wave)| WavePreview {
            number: n + 1,
            instances: wave
                .into_iter()
                .filter_map(|i| rendered[i].take())
                .collect(),
        })
        .collect();
    let skipped = waves
        .iter()
        .flat_map(|w| &w.instances)
        .filter(|i| i.decision == WhenDecision::Skip)
        .count();
    Ok(PlanPreview {
        version: 1,
        plan: plan.name.clone(),
        description: plan.description.clone(),
        params: params
            .iter()
            .map(|(name, v)| ParamPreview {
                name: name.to_string(),
                value: if params.is_secret(name) {
                    "***".into()
                } else {
                    v.to_json()
                },
                origin: params.origin(name),
                secret: params.is_secret(name),
            })
            .collect(),
        instances: graph.instances.len(),
        skipped,
        waves,
    })
}

fn unreachable_preview() -> PlanPreview {
    PlanPreview {
        version: 1,
        plan: String::new(),
        description: None,
        params: Vec::new(),
        waves: Vec::new(),
        instances: 0,
        skipped: 0,
    }
}

// `when` is decided now when it reads only parameters and the element.
fn decide(templates: &Templates, whens: &[&Spanned<String>], ctx: &Value) -> WhenDecision {
    let mut decision = WhenDecision::Run;
    for w in whens {
        let names = templates.expression_names(&w.value).unwrap_or_default();
        if names
            .iter()
            .any(|n| n.starts_with("steps") || n.starts_with("run"))
        {
            decision = WhenDecision::AtRunTime;
            continue;
        }
        match templates.eval(&w.value, ctx) {
            Ok(v) if !v.is_true() => return WhenDecision::Skip,
            Ok(_) => {}
            Err(_) => decision = WhenDecision::AtRunTime,
        }
    }
    decision
}
