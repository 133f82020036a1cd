//! A validated plan: what the file says, typed, with spans kept for later diagnostics.

use std::time::Duration;

use indexmap::IndexMap;
use regex::Regex;

use crate::source::{PlanSource, Spanned};

/// A plan that passed validation.
#[derive(Clone, Debug)]
pub struct Plan {
    /// The file it came from.
    pub source: PlanSource,
    /// `[plan] name`.
    pub name: String,
    /// `[plan] description`.
    pub description: Option<String>,
    /// `[plan] version`, a free string.
    pub version: Option<String>,
    /// `[params.NAME]`, in file order.
    pub params: IndexMap<String, ParamSpec>,
    /// `[defaults]`.
    pub defaults: Defaults,
    /// `[[group]]`, in file order.
    pub groups: Vec<GroupSpec>,
    /// `[[step]]`, in file order.
    pub steps: Vec<StepSpec>,
}

impl Plan {
    /// The group with id `id`.
    pub fn group(&self, id: &str) -> Option<&GroupSpec> {
        self.groups.iter().find(|g| g.id.value == id)
    }

    /// The steps of group `id` (or, with `None`, the steps outside groups).
    pub fn steps_in(&self, group: Option<&str>) -> impl Iterator<Item = (usize, &StepSpec)> {
        self.steps
            .iter()
            .enumerate()
            .filter(move |(_, s)| s.group.as_ref().map(|g| g.value.as_str()) == group)
    }
}

/// The type of a parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ParamType {
    /// Any string (the default).
    String,
    /// A signed integer.
    Integer,
    /// `true` or `false`.
    Boolean,
    /// A list of strings.
    List,
    /// A duration such as `"30s"`.
    Duration,
}

impl ParamType {
    /// All types with their names.
    pub const ALL: &'static [(&'static str, ParamType)] = &[
        ("string", ParamType::String),
        ("integer", ParamType::Integer),
        ("boolean", ParamType::Boolean),
        ("list", ParamType::List),
        ("duration", ParamType::Duration),
    ];

    /// The name as written in plans.
    pub fn name(self) -> &'static str {
        ParamType::ALL
            .iter()
            .find(|(_, t)| *t == self)
            .map_or("string", |(n, _)| n)
    }
}

/// A typed parameter value.
#[derive(Clone, Debug, PartialEq)]
pub enum ParamValue {
    /// A string.
    String(String),
    /// An integer.
    Integer(i64),
    /// A boolean.
    Boolean(bool),
    /// A list of strings.
    List(Vec<String>),
    /// A duration.
    Duration(Duration),
}

impl ParamValue {
    /// The value as a template sees it.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            ParamValue::String(s) => s.clone().into(),
            ParamValue::Integer(i) => (*i).into(),
            ParamValue::Boolean(b) => (*b).into(),
            ParamValue::List(l) => l.clone().into(),
            ParamValue::Duration(d) => crate::duration::DisplayDuration(*d).to_string().into(),
        }
    }
}

/// `[params.NAME]`.
#[derive(Clone, Debug)]
pub struct ParamSpec {
    /// The name, spanned at its header.
    pub name: Spanned<String>,
    /// `type`.
    pub ty: ParamType,
    /// `description`.
    pub description: Option<String>,
    /// `default`: without one the parameter is required.
    pub default: Option<Spanned<ParamValue>>,
    /// `env`: a variable that supplies the value.
    pub env: Option<String>,
    /// `secret`: never stored or shown.
    pub secret: bool,
    /// `choices`, for strings.
    pub choices: Option<Vec<String>>,
}

/// What a failed step does to the run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OnFailure {
    /// No new steps start; the run fails.
    #[default]
    Abort,
    /// Dependents are `blocked`; independent work goes on; the run ends failed.
    Continue,
    /// The failure is recorded and treated as success.
    Ignore,
}

impl OnFailure {
    /// Every policy with its name.
    pub const ALL: &'static [(&'static str, OnFailure)] = &[
        ("abort", OnFailure::Abort),
        ("continue", OnFailure::Continue),
        ("ignore", OnFailure::Ignore),
    ];
}

/// `retry = { attempts, delay, backoff, max_delay }`.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct RetrySpec {
    /// Tries in all (at least 1).
    pub attempts: u32,
    /// Wait before the second try.
    pub delay: Duration,
    /// Each later wait is the previous one times this (at least 1.0).
    pub backoff: f64,
    /// No wait is longer than this.
    pub max_delay: Option<Duration>,
}

impl Default for RetrySpec {
    fn default() -> Self {
        Self {
            attempts: 1,
            delay: Duration::ZERO,
            backoff: 1.0,
            max_delay: None,
        }
    }
}

impl RetrySpec {
    /// The wait before try number `attempt` (1-based; the first try has none).
    pub fn delay_before(&self, attempt: u32) -> Duration {
        if attempt <= 1 {
            return Duration::ZERO;
        }
        let exponent = i32::try_from(attempt - 2).unwrap_or(i32::MAX);
        let secs = self.delay.as_secs_f64() * self.backoff.powi(exponent);
        let wait = Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX);
        match self.max_delay {
            Some(max) => wait.min(max),
            None => wait,
        }
    }
}

/// `[defaults]`: fields applied to every step that does not set them.
#[derive(Clone, Debug, Default)]
pub struct Defaults {
    /// `timeout`.
    pub timeout: Option<Duration>,
    /// `retry`.
    pub retry: Option<RetrySpec>,
    /// `on_failure`.
    pub on_failure: Option<OnFailure>,
    /// `context`: the kubeconfig context of Kubernetes steps.
    pub context: Option<FieldValue>,
}

/// A step type field as written: a TOML value with spans, strings kept as templates.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldValue {
    /// Where it was written.
    pub span: std::ops::Range<usize>,
    /// The value.
    pub kind: FieldValueKind,
}

/// The shape of a [`FieldValue`].
#[derive(Clone, Debug, PartialEq)]
pub enum FieldValueKind {
    /// A string (a template).
    Text(String),
    /// A boolean.
    Bool(bool),
    /// An integer.
    Integer(i64),
    /// A float.
    Float(f64),
    /// An array.
    List(Vec<FieldValue>),
    /// A table, in file order.
    Table(IndexMap<String, FieldValue>),
}

impl FieldValue {
    /// Every template string inside, with its span.
    pub fn texts(&self) -> Vec<(&str, std::ops::Range<usize>)> {
        let mut out = Vec::new();
        self.collect_texts(&mut out);
        out
    }

    fn collect_texts<'a>(&'a self, out: &mut Vec<(&'a str, std::ops::Range<usize>)>) {
        match &self.kind {
            FieldValueKind::Text(t) => out.push((t, self.span.clone())),
            FieldValueKind::List(items) => items.iter().for_each(|i| i.collect_texts(out)),
            FieldValueKind::Table(t) => t.values().for_each(|i| i.collect_texts(out)),
            _ => {}
        }
    }

    /// The string, if this is one.
    pub fn as_text(&self) -> Option<&str> {
        match &self.kind {
            FieldValueKind::Text(t) => Some(t),
            _ => None,
        }
    }
}

/// `capture = { NAME = 'regex' }`.
#[derive(Clone, Debug)]
pub struct Capture {
    /// The output's name.
    pub name: Spanned<String>,
    /// The regex; it has exactly one group.
    pub regex: Regex,
}

/// `[[step]]`.
#[derive(Clone, Debug)]
pub struct StepSpec {
    /// `id`.
    pub id: Spanned<String>,
    /// `type`.
    pub type_name: Spanned<String>,
    /// `description`, a template (it may name `item`, parameters, ...).
    pub description: Option<Spanned<String>>,
    /// `needs`.
    pub needs: Vec<Spanned<String>>,
    /// `group`.
    pub group: Option<Spanned<String>>,
    /// `when`, an expression.
    pub when: Option<Spanned<String>>,
    /// `for_each`, an expression giving a list.
    pub for_each: Option<Spanned<String>>,
    /// `max_parallel`, with `for_each`.
    pub max_parallel: Option<u32>,
    /// `timeout`.
    pub timeout: Option<Duration>,
    /// `retry`.
    pub retry: Option<RetrySpec>,
    /// `on_failure`.
    pub on_failure: Option<OnFailure>,
    /// `idempotent`, overriding the type's default.
    pub idempotent: Option<bool>,
    /// `check`, a shell command.
    pub check: Option<FieldValue>,
    /// `capture`.
    pub capture: Vec<Capture>,
    /// `env`.
    pub env: IndexMap<String, FieldValue>,
    /// `finally`.
    pub finally: bool,
    /// The type's own fields.
    pub fields: IndexMap<String, FieldValue>,
    /// The `[[step]]` header.
    pub span: std::ops::Range<usize>,
}

impl StepSpec {
    /// The timeout in force (the step's, else the plan's default).
    pub fn effective_timeout(&self, defaults: &Defaults) -> Option<Duration> {
        self.timeout.or(defaults.timeout)
    }

    /// The retry policy in force.
    pub fn effective_retry(&self, defaults: &Defaults) -> RetrySpec {
        self.retry.or(defaults.retry).unwrap_or_default()
    }

    /// The failure policy in force.
    pub fn effective_on_failure(&self, defaults: &Defaults) -> OnFailure {
        self.on_failure.or(defaults.on_failure).unwrap_or_default()
    }

    /// The names this step captures.
    pub fn capture_names(&self) -> impl Iterator<Item = &str> {
        self.capture.iter().map(|c| c.name.value.as_str())
    }
}

/// `[[group]]`.
#[derive(Clone, Debug)]
pub struct GroupSpec {
    /// `id`.
    pub id: Spanned<String>,
    /// `description`.
    pub description: Option<String>,
    /// `needs`.
    pub needs: Vec<Spanned<String>>,
    /// `when`.
    pub when: Option<Spanned<String>>,
    /// `for_each`.
    pub for_each: Option<Spanned<String>>,
    /// `max_parallel`: elements in progress at once.
    pub max_parallel: Option<u32>,
    /// `max_failures`: elements that may fail before the group stops.
    pub max_failures: u32,
    /// `finally`.
    pub finally: bool,
    /// The `[[group]]` header.
    pub span: std::ops::Range<usize>,
}
