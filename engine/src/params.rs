//! Parameter values: where they come from, in order of precedence, `--set NAME=VALUE`,
//! `--params FILE.toml`, the parameter's `env` variable, its `default`.

use std::collections::{BTreeMap, BTreeSet};

use indexmap::IndexMap;
use toml::de::{DeTable, DeValue};

use crate::diagnostic::{Code, Diagnostics, PlanDiagnostic, did_you_mean};
use crate::duration::parse_duration;
use crate::plan::{ParamSpec, ParamType, ParamValue, Plan, not_in_choices, param_value_from_toml};
use crate::source::PlanSource;

/// Reads an environment variable.
type EnvLookup = Box<dyn Fn(&str) -> Option<String>>;

/// Where parameter values come from, besides the plan's defaults.
#[derive(Default)]
pub struct ParamInputs {
    sets: Vec<String>,
    stored: BTreeMap<String, serde_json::Value>,
    file: Option<PlanSource>,
    env: Option<EnvLookup>,
}

impl std::fmt::Debug for ParamInputs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParamInputs")
            .field("sets", &self.sets.len())
            .field("file", &self.file.as_ref().map(|s| s.name().to_string()))
            .finish()
    }
}

impl ParamInputs {
    /// No inputs: defaults only (and no environment).
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a `--set NAME=VALUE`, exactly as given on the command line.
    #[must_use]
    pub fn set(mut self, assignment: impl Into<String>) -> Self {
        self.sets.push(assignment.into());
        self
    }

    /// Values a run recorded (resume): they come after `--set` and before everything else.
    #[must_use]
    pub fn stored(mut self, values: BTreeMap<String, serde_json::Value>) -> Self {
        self.stored = values;
        self
    }

    /// Uses a parameters file (a TOML table of `NAME = value`).
    #[must_use]
    pub fn file(mut self, source: PlanSource) -> Self {
        self.file = Some(source);
        self
    }

    /// Reads `env` variables through `lookup` (the CLI passes the process environment).
    #[must_use]
    pub fn env(mut self, lookup: impl Fn(&str) -> Option<String> + 'static) -> Self {
        self.env = Some(Box::new(lookup));
        self
    }

    /// Reads `env` variables from the process environment.
    #[must_use]
    pub fn process_env(self) -> Self {
        self.env(|name| std::env::var(name).ok())
    }
}

/// Where a value came from (shown by `plan`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ParamOrigin {
    /// `--set`.
    Set,
    /// `--params FILE`.
    File,
    /// The parameter's `env` variable.
    Env,
    /// The plan's `default`.
    Default,
    /// Recorded by the run being resumed.
    Run,
}

/// A stored JSON value read back by the parameter's type.
fn from_json(ty: ParamType, v: &serde_json::Value) -> Option<ParamValue> {
    match (ty, v) {
        (ParamType::String, serde_json::Value::String(s)) => Some(ParamValue::String(s.clone())),
        (ParamType::Integer, v) => v.as_i64().map(ParamValue::Integer),
        (ParamType::Boolean, v) => v.as_bool().map(ParamValue::Boolean),
        (ParamType::List, serde_json::Value::Array(items)) => items
            .iter()
            .map(|i| i.as_str().map(str::to_string))
            .collect::<Option<Vec<_>>>()
            .map(ParamValue::List),
        (ParamType::Duration, serde_json::Value::String(s)) => {
            parse_duration(s).ok().map(ParamValue::Duration)
        }
        _ => None,
    }
}

/// Every parameter of a plan with its value.
#[derive(Clone, Debug, Default)]
pub struct Params {
    values: IndexMap<String, (ParamValue, ParamOrigin)>,
    secrets: BTreeSet<String>,
}

impl Params {
    /// The value of `name`.
    pub fn get(&self, name: &str) -> Option<&ParamValue> {
        self.values.get(name).map(|(v, _)| v)
    }

    /// Where the value of `name` came from.
    pub fn origin(&self, name: &str) -> Option<ParamOrigin> {
        self.values.get(name).map(|(_, o)| *o)
    }

    /// Whether `name` is secret.
    pub fn is_secret(&self, name: &str) -> bool {
        self.secrets.contains(name)
    }

    /// Every value, in the plan's order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &ParamValue)> {
        self.values.iter().map(|(k, (v, _))| (k.as_str(), v))
    }

    /// The values of secret parameters, for redaction by value.
    pub fn secret_values(&self) -> Vec<String> {
        self.values
            .iter()
            .filter(|(k, _)| self.secrets.contains(*k))
            .flat_map(|(_, (v, _))| match v {
                ParamValue::List(l) => l.clone(),
                other => vec![value_text(other)],
            })
            .filter(|s| !s.is_empty())
            .collect()
    }

    /// The parameters as templates see them. With `redact`, secrets are `***`.
    pub fn to_template_value(&self, redact: bool) -> minijinja::Value {
        let mut map = std::collections::BTreeMap::new();
        for (k, (v, _)) in &self.values {
            let value = if redact && self.secrets.contains(k) {
                minijinja::Value::from_safe_string("***".into())
            } else {
                minijinja::Value::from(minijinja::value::Serde(v.to_json()))
            };
            map.insert(k.clone(), value);
        }
        minijinja::Value::from(map)
    }

    /// Every value as JSON, secrets as `"***"` (what may be stored or shown).
    pub fn to_redacted_json(&self) -> serde_json::Map<String, serde_json::Value> {
        self.values
            .iter()
            .map(|(k, (v, _))| {
                let value = if self.secrets.contains(k) {
                    "***".into()
                } else {
                    v.to_json()
                };
                (k.clone(), value)
            })
            .collect()
    }
}

/// The text of a value as a template prints it.
pub fn value_text(v: &ParamValue) -> String {
    match v.to_json() {
        serde_json::Value::String(s) => s,
        other => other.to_string(),
    }
}

/// Resolves every parameter of `plan` from `inputs`, in precedence order.
///
/// # Errors
/// Every problem: unknown names in `--set` or the file, values of the wrong type or outside
/// `choices`, required parameters without a value.
pub fn resolve_params(plan: &Plan, inputs: &ParamInputs) -> Result<Params, Diagnostics> {
    let mut diags = Diagnostics::new();
    let mut sets: IndexMap<String, ParamValue> = IndexMap::new();
    // Parameters given a value, valid or not: an invalid one is reported once, not also as missing.
    let mut given: BTreeSet<String> = BTreeSet::new();
    for assignment in &inputs.sets {
        if let Some((name, _)) = assignment.split_once('=') {
            given.insert(name.trim().to_string());
        }
        if let Some((name, value)) = parse_set(plan, assignment, &mut diags) {
            sets.insert(name, value);
        }
    }
    // A parameters file that does not parse may hold any value: nothing is reported missing then.
    let mut file_unreadable = false;
    let from_file = match inputs
        .file
        .as_ref()
        .map(|f| read_params_file(plan, f, &mut given, &mut diags))
    {
        Some(Some(values)) => values,
        Some(None) => {
            file_unreadable = true;
            IndexMap::new()
        }
        None => IndexMap::new(),
    };

    let mut params = Params::default();
    for (name, spec) in &plan.params {
        if spec.secret {
            params.secrets.insert(name.clone());
        }
        let value = if let Some(v) = sets.shift_remove(name) {
            Some((v, ParamOrigin::Set))
        } else if let Some(v) = inputs.stored.get(name).and_then(|j| from_json(spec.ty, j)) {
            Some((v, ParamOrigin::Run))
        } else if let Some(v) = from_file.get(name) {
            Some((v.clone(), ParamOrigin::File))
        } else if let Some(v) = from_env(plan, spec, inputs, &mut diags) {
            Some((v, ParamOrigin::Env))
        } else {
            spec.default
                .as_ref()
                .map(|d| (d.value.clone(), ParamOrigin::Default))
        };
        match value {
            Some(v) => {
                params.values.insert(name.clone(), v);
            }
            None => {
                let env_given = spec.env.as_ref().is_some_and(|var| {
                    inputs.env.as_ref().and_then(|lookup| lookup(var)).is_some()
                });
                if !(file_unreadable || env_given || given.contains(name)) {
                    diags.push(missing_param(plan, spec));
                }
            }
        }
    }
    diags.into_result(params)
}

fn missing_param(plan: &Plan, spec: &ParamSpec) -> PlanDiagnostic {
    let name = &spec.name.value;
    let about = spec
        .description
        .as_deref()
        .map(|d| format!(" ({d})"))
        .unwrap_or_default();
    let mut help = format!("give it with --set {name}=VALUE or in a --params file");
    if let Some(env) = &spec.env {
        help.push_str(&format!(", or set the environment variable {env}"));
    }
    PlanDiagnostic::new(
        Code::MissingParam,
        &plan.source,
        format!("parameter `{name}` has no value{about}"),
    )
    .at(spec.name.span.clone(), "required: it has no default")
    .help(help)
}

fn parse_set(
    plan: &Plan,
    assignment: &str,
    diags: &mut Diagnostics,
) -> Option<(String, ParamValue)> {
    let mut source = PlanSource::new("--set", assignment.to_string());
    let Some((name, value)) = assignment.split_once('=') else {
        diags.push(
            PlanDiagnostic::new(
                Code::InvalidSet,
                &source,
                format!("`--set {assignment}` is not NAME=VALUE"),
            )
            .at(0..assignment.len(), "expected NAME=VALUE")
            .help("e.g. --set master=rok-1"),
        );
        return None;
    };
    let name = name.trim();
    let Some(spec) = plan.params.get(name) else {
        let help = did_you_mean(name, plan.params.keys().map(String::as_str)).or_else(|| {
            Some(format!(
                "the plan's parameters: {}",
                plan.params.keys().cloned().collect::<Vec<_>>().join(", ")
            ))
        });
        diags.push(
            PlanDiagnostic::new(
                Code::UnknownSet,
                &source,
                format!("the plan has no parameter `{name}`"),
            )
            .at(0..name.len(), "unknown parameter")
            .maybe_help(help),
        );
        return None;
    };
    let mut value_span = name.len() + 1..assignment.len();
    if spec.secret {
        // Diagnostics show the assignment: never with a secret's value.
        source = PlanSource::new("--set", format!("{name}=***"));
        value_span = name.len() + 1..name.len() + 4;
    }
    match parse_text_value(spec, value) {
        Ok(v) => check_choices(spec, v, &source, value_span, diags),
        Err(expected) => {
            diags.push(invalid_text(spec, &source, value_span, &expected));
            None
        }
    }
    .map(|v| (name.to_string(), v))
}

fn invalid_text(
    spec: &ParamSpec,
    source: &PlanSource,
    span: std::ops::Range<usize>,
    expected: &str,
) -> PlanDiagnostic {
    let shown = if spec.secret {
        "***".to_string()
    } else {
        source.slice(&span).to_string()
    };
    PlanDiagnostic::new(
        Code::InvalidParamValue,
        source,
        format!(
            "`{shown}` is not a valid value for parameter `{}`",
            spec.name.value
        ),
    )
    .at(span, format!("expected {expected}"))
}

fn check_choices(
    spec: &ParamSpec,
    v: ParamValue,
    source: &PlanSource,
    span: std::ops::Range<usize>,
    diags: &mut Diagnostics,
) -> Option<ParamValue> {
    if let (Some(choices), ParamValue::String(s)) = (&spec.choices, &v)
        && !choices.contains(s)
    {
        let shown = if spec.secret { "***" } else { s.as_str() };
        diags.push(not_in_choices(
            source,
            &spec.name.value,
            shown,
            choices,
            span,
        ));
        return None;
    }
    Some(v)
}

/// A value given as text (`--set`, an environment variable), read by the parameter's type.
fn parse_text_value(spec: &ParamSpec, text: &str) -> Result<ParamValue, String> {
    match spec.ty {
        ParamType::String => Ok(ParamValue::String(text.to_string())),
        ParamType::Integer => text
            .trim()
            .parse()
            .map(ParamValue::Integer)
            .map_err(|_| "an integer".to_string()),
        ParamType::Boolean => match text.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "1" | "on" => Ok(ParamValue::Boolean(true)),
            "false" | "no" | "0" | "off" => Ok(ParamValue::Boolean(false)),
            _ => Err("true or false".to_string()),
        },
        ParamType::Duration => parse_duration(text)
            .map(ParamValue::Duration)
            .map_err(|_| "a duration such as 30s or 1h30m".to_string()),
        ParamType::List => {
            let trimmed = text.trim();
            if trimmed.starts_with('[') {
                let expected = "a list such as [\"a\", \"b\"] or a,b".to_string();
                let value = DeValue::parse(trimmed).map_err(|_| expected.clone())?;
                let DeValue::Array(items) = value.get_ref() else {
                    return Err(expected);
                };
                items
                    .iter()
                    .map(|i| match i.get_ref() {
                        DeValue::String(s) => Ok(s.to_string()),
                        _ => Err(expected.clone()),
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map(ParamValue::List)
            } else if trimmed.is_empty() {
                Ok(ParamValue::List(Vec::new()))
            } else {
                Ok(ParamValue::List(
                    trimmed.split(',').map(|s| s.trim().to_string()).collect(),
                ))
            }
        }
    }
}

fn from_env(
    plan: &Plan,
    spec: &ParamSpec,
    inputs: &ParamInputs,
    diags: &mut Diagnostics,
) -> Option<ParamValue> {
    let var = spec.env.as_ref()?;
    let text = inputs.env.as_ref().and_then(|lookup| lookup(var))?;
    let source = PlanSource::new(
        format!("${var}"),
        if spec.secret {
            "***".to_string()
        } else {
            text.clone()
        },
    );
    match parse_text_value(spec, &text) {
        Ok(v) => check_choices(spec, v, &source, 0..source.text().len(), diags),
        Err(expected) => {
            let shown = if spec.secret {
                "***".to_string()
            } else {
                text.clone()
            };
            diags.push(
                PlanDiagnostic::new(
                    Code::InvalidParamValue,
                    &plan.source,
                    format!("environment variable {var} holds `{shown}`, not a valid value for parameter `{}`", spec.name.value),
                )
                .at(spec.name.span.clone(), format!("expected {expected}")),
            );
            None
        }
    }
}

fn read_params_file(
    plan: &Plan,
    file: &PlanSource,
    given: &mut BTreeSet<String>,
    diags: &mut Diagnostics,
) -> Option<IndexMap<String, ParamValue>> {
    let mut out = IndexMap::new();
    let (doc, errors) = DeTable::parse_recoverable(file.text());
    // Diagnostics show the file with secret values masked; same length, so spans stay right.
    let mut masked = file.text().to_string();
    if errors.is_empty() {
        for (key, value) in doc.get_ref().iter() {
            let name: &str = key.get_ref();
            if plan.params.get(name).is_some_and(|s| s.secret) {
                let span = value.span();
                masked.replace_range(span.clone(), &"*".repeat(span.len()));
            }
        }
    }
    let masked = PlanSource::new(file.name(), masked);
    let file = &masked;
    if !errors.is_empty() {
        for e in errors {
            diags.push(
                PlanDiagnostic::new(
                    Code::TomlSyntax,
                    file,
                    format!("invalid TOML: {}", e.message().trim()),
                )
                .at(e.span().unwrap_or(0..0), e.message().trim().to_string()),
            );
        }
        return None;
    }
    for (key, value) in doc.get_ref().iter() {
        let name: &str = key.get_ref();
        given.insert(name.to_string());
        let Some(spec) = plan.params.get(name) else {
            let help = did_you_mean(name, plan.params.keys().map(String::as_str));
            diags.push(
                PlanDiagnostic::new(
                    Code::UnknownSet,
                    file,
                    format!("the plan has no parameter `{name}`"),
                )
                .at(key.span(), "unknown parameter")
                .maybe_help(help),
            );
            continue;
        };
        match param_value_from_toml(file, name, spec.ty, value) {
            Ok(v) => {
                if let Some(v) = check_choices(spec, v, file, value.span(), diags) {
                    out.insert(name.to_string(), v);
                }
            }
            Err(d) => diags.push(d),
        }
    }
    Some(out)
}
