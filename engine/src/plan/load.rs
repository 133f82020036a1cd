//! Reads a plan file into a [`Plan`]: structure, types and step fields. Cross-references
//! (needs, cycles, templates) are checked afterwards by [`crate::plan::check`].

use indexmap::IndexMap;
use regex::Regex;
use toml::de::{DeTable, DeValue};

use crate::diagnostic::{Code, Diagnostics, PlanDiagnostic, did_you_mean};
use crate::plan::model::{
    Capture, Defaults, FieldValue, GroupSpec, OnFailure, ParamSpec, ParamType, ParamValue, Plan,
    RetrySpec, StepSpec,
};
use crate::plan::toml_reader::{Reader, Value, type_name};
use crate::source::{PlanSource, Spanned};
use crate::step::{FieldKind, FieldSpec, StepRegistry, StepSchema};

pub(crate) const TOP_KEYS: &[&str] = &["plan", "params", "defaults", "group", "step"];
pub(crate) const PLAN_KEYS: &[&str] = &["name", "description", "version"];
pub(crate) const PARAM_KEYS: &[&str] =
    &["type", "description", "default", "env", "secret", "choices"];
pub(crate) const DEFAULTS_KEYS: &[&str] = &["timeout", "retry", "on_failure", "context"];
pub(crate) const RETRY_KEYS: &[&str] = &["attempts", "delay", "backoff", "max_delay"];
pub(crate) const GROUP_KEYS: &[&str] = &[
    "id",
    "description",
    "needs",
    "when",
    "for_each",
    "max_parallel",
    "max_failures",
    "finally",
];
/// Keys every step accepts, whatever its type.
pub const COMMON_STEP_KEYS: &[&str] = &[
    "id",
    "type",
    "description",
    "needs",
    "group",
    "when",
    "for_each",
    "max_parallel",
    "timeout",
    "retry",
    "on_failure",
    "idempotent",
    "check",
    "capture",
    "env",
    "finally",
];

/// The pattern of plan names.
pub(crate) fn is_plan_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// The pattern of step and group ids: `[a-z0-9][a-z0-9_-]*`.
pub fn is_step_id(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// Parses and checks `source` against the step types of `registry`.
///
/// # Errors
/// Every problem found, as [`Diagnostics`].
pub fn load_plan(source: &PlanSource, registry: &StepRegistry) -> Result<Plan, Diagnostics> {
    let (doc, errors) = DeTable::parse_recoverable(source.text());
    let mut r = Reader::new(source);
    if !errors.is_empty() {
        for e in errors {
            let span = e.span().unwrap_or(0..0);
            let message = e.message().trim().to_string();
            let d =
                PlanDiagnostic::new(Code::TomlSyntax, source, format!("invalid TOML: {message}"))
                    .at(span, message)
                    .help("fix the TOML syntax first; other checks run once the file parses");
            r.report(d);
        }
        return r.diags.into_result(unreachable_plan(source));
    }
    let doc = doc.into_inner();
    r.unknown_keys(&doc, TOP_KEYS, "the plan file");

    let (name, description, version) = read_plan_table(&mut r, &doc);
    let params = read_params(&mut r, &doc);
    let defaults = read_defaults(&mut r, &doc);
    let groups = read_array(&mut r, &doc, "group")
        .into_iter()
        .filter_map(|(t, span)| read_group(&mut r, t, span))
        .collect();
    let steps = read_array(&mut r, &doc, "step")
        .into_iter()
        .filter_map(|(t, span)| read_step(&mut r, t, span, registry))
        .collect();

    let plan = Plan {
        source: source.clone(),
        name,
        description,
        version,
        params,
        defaults,
        groups,
        steps,
    };
    let mut diags = r.diags;
    diags.extend(crate::plan::check::check_plan(&plan, registry));
    diags.into_result(plan)
}

// Only reached with diagnostics present, so the value is never used.
fn unreachable_plan(source: &PlanSource) -> Plan {
    Plan {
        source: source.clone(),
        name: String::new(),
        description: None,
        version: None,
        params: IndexMap::new(),
        defaults: Defaults::default(),
        groups: Vec::new(),
        steps: Vec::new(),
    }
}

fn read_plan_table(
    r: &mut Reader<'_>,
    doc: &DeTable<'_>,
) -> (String, Option<String>, Option<String>) {
    let Some((table, span)) = r.table(doc, "plan") else {
        if !doc.contains_key("plan") {
            let d = PlanDiagnostic::new(
                Code::MissingKey,
                r.source,
                "the plan file has no `[plan]` table",
            )
            .at(0..0, "expected `[plan]` with a `name`")
            .help("start the file with:\n[plan]\nname = \"my-upgrade\"");
            r.report(d);
        }
        return (String::new(), None, None);
    };
    r.unknown_keys(table, PLAN_KEYS, "`[plan]`");
    let name = match r.string(table, "name") {
        Some(n) if is_plan_name(&n.value) => n.value,
        Some(n) => {
            r.error(
                Code::InvalidId,
                n.span.clone(),
                format!("plan name `{}` is not allowed", n.value),
                "lowercase letters, digits and `-`, starting with a letter or digit",
            );
            n.value
        }
        None => {
            if !table.contains_key("name") {
                r.missing(
                    "name",
                    "`[plan]`",
                    span,
                    Some("add e.g. name = \"rok-upgrade\"".into()),
                );
            }
            String::new()
        }
    };
    let description = r.string(table, "description").map(|s| s.value);
    let version = r.string(table, "version").map(|s| s.value);
    (name, description, version)
}

fn read_params(r: &mut Reader<'_>, doc: &DeTable<'_>) -> IndexMap<String, ParamSpec> {
    let mut params = IndexMap::new();
    let Some((table, _)) = r.table(doc, "params") else {
        return params;
    };
    for (key, value) in table.iter() {
        let name = key.get_ref().to_string();
        if !is_param_name(&name) {
            r.error(
                Code::InvalidId,
                key.span(),
                format!("parameter name `{name}` is not allowed"),
                "use letters, digits and `_`, starting with a letter",
            );
        }
        let DeValue::Table(t) = value.get_ref() else {
            r.wrong_type(&name, value, "a table such as `[params.NAME]`");
            continue;
        };
        if let Some(spec) = read_param(r, Spanned::new(name.clone(), key.span()), t) {
            params.insert(name, spec);
        }
    }
    params
}

fn is_param_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn read_param(r: &mut Reader<'_>, name: Spanned<String>, t: &DeTable<'_>) -> Option<ParamSpec> {
    r.unknown_keys(t, PARAM_KEYS, &format!("`[params.{}]`", name.value));
    // A bad `type` is reported, and the parameter still declared (as a string) so that
    // templates naming it do not cascade into "unknown parameter".
    let ty = if t.contains_key("type") {
        r.choice(t, "type", ParamType::ALL)
    } else {
        Some(ParamType::String)
    };
    // With a bad `type`, the default cannot be checked against it.
    let type_known = ty.is_some();
    let ty = ty.unwrap_or(ParamType::String);
    let description = r.string(t, "description").map(|s| s.value);
    let env = r.string(t, "env").map(|s| s.value);
    let secret = r.bool(t, "secret").unwrap_or(false);
    let choices = r
        .string_list(t, "choices")
        .map(|l| l.into_iter().map(|s| s.value).collect::<Vec<_>>());
    if choices.is_some()
        && ty != ParamType::String
        && let Some(v) = t.get("choices")
    {
        {
            r.error(
                Code::InvalidValue,
                v.span(),
                format!(
                    "`choices` is only for string parameters, and `{}` is {} {}",
                    name.value,
                    if ty == ParamType::Integer { "an" } else { "a" },
                    ty.name()
                ),
                "not allowed here",
            );
        }
    }
    let default = t.get("default").filter(|_| type_known).and_then(|v| {
        let value = param_value_from_toml(r.source, &name.value, ty, v)
            .map_err(|d| r.report(d))
            .ok()?;
        if let (Some(choices), ParamValue::String(s)) = (&choices, &value)
            && !choices.contains(s)
        {
            let d = not_in_choices(r.source, &name.value, s, choices, v.span());
            r.report(d);
        }
        Some(Spanned::new(value, v.span()))
    });
    Some(ParamSpec {
        name,
        ty,
        description,
        default,
        env,
        secret,
        choices,
    })
}

/// The diagnostic for a value outside a parameter's `choices`.
pub(crate) fn not_in_choices(
    source: &PlanSource,
    name: &str,
    value: &str,
    choices: &[String],
    span: std::ops::Range<usize>,
) -> PlanDiagnostic {
    let help = did_you_mean(value, choices.iter().map(String::as_str))
        .unwrap_or_else(|| format!("`{name}` is one of: {}", choices.join(", ")));
    PlanDiagnostic::new(
        Code::NotInChoices,
        source,
        format!("`{value}` is not one of the choices of parameter `{name}`"),
    )
    .at(span, format!("expected one of: {}", choices.join(", ")))
    .help(help)
}

/// A parameter value from TOML (a default or a parameters file), checked against its type.
#[expect(
    clippy::result_large_err,
    reason = "only on the error path, once per bad value"
)]
pub(crate) fn param_value_from_toml(
    source: &PlanSource,
    name: &str,
    ty: ParamType,
    v: &Value<'_>,
) -> Result<ParamValue, PlanDiagnostic> {
    let wrong = |expected: &str| {
        PlanDiagnostic::new(
            Code::InvalidParamValue,
            source,
            format!(
                "parameter `{name}` is {}, so its value must be {expected}",
                article(ty)
            ),
        )
        .at(
            v.span(),
            format!("{} is not {expected}", type_name(v.get_ref())),
        )
    };
    match (ty, v.get_ref()) {
        (ParamType::String, DeValue::String(s)) => Ok(ParamValue::String(s.to_string())),
        (ParamType::String, _) => Err(wrong("a string")),
        (ParamType::Integer, other) => crate::plan::toml_reader::integer_of(other)
            .map(ParamValue::Integer)
            .ok_or_else(|| wrong("an integer")),
        (ParamType::Boolean, DeValue::Boolean(b)) => Ok(ParamValue::Boolean(*b)),
        (ParamType::Boolean, _) => Err(wrong("true or false")),
        (ParamType::List, DeValue::Array(items)) => {
            let mut out = Vec::new();
            for item in items {
                match item.get_ref() {
                    DeValue::String(s) => out.push(s.to_string()),
                    _ => {
                        return Err(PlanDiagnostic::new(
                            Code::InvalidParamValue,
                            source,
                            format!("parameter `{name}` is a list of strings"),
                        )
                        .at(
                            item.span(),
                            format!("{} is not a string", type_name(item.get_ref())),
                        ));
                    }
                }
            }
            Ok(ParamValue::List(out))
        }
        (ParamType::List, _) => Err(wrong("a list of strings")),
        (ParamType::Duration, DeValue::String(s)) => crate::duration::parse_duration(s)
            .map(ParamValue::Duration)
            .map_err(|e| {
                PlanDiagnostic::new(Code::InvalidDuration, source, e.to_string())
                    .at(v.span(), "not a duration")
                    .help("write a number and a unit (ms, s, m, h, d), e.g. \"30s\" or \"1h30m\"")
            }),
        (ParamType::Duration, _) => Err(wrong("a duration string such as \"30s\"")),
    }
}

fn article(ty: ParamType) -> &'static str {
    match ty {
        ParamType::Integer => "an integer",
        ParamType::String => "a string",
        ParamType::Boolean => "a boolean",
        ParamType::List => "a list",
        ParamType::Duration => "a duration",
    }
}

fn read_defaults(r: &mut Reader<'_>, doc: &DeTable<'_>) -> Defaults {
    let Some((t, _)) = r.table(doc, "defaults") else {
        return Defaults::default();
    };
    r.unknown_keys(t, DEFAULTS_KEYS, "`[defaults]`");
    Defaults {
        timeout: r.duration(t, "timeout"),
        retry: read_retry(r, t),
        on_failure: t
            .contains_key("on_failure")
            .then(|| r.choice(t, "on_failure", OnFailure::ALL))
            .flatten(),
        context: t.get("context").and_then(|v| {
            if matches!(v.get_ref(), DeValue::String(_)) {
                r.field_value("context", v)
            } else {
                r.wrong_type("context", v, "a string");
                None
            }
        }),
    }
}

fn read_retry(r: &mut Reader<'_>, t: &DeTable<'_>) -> Option<RetrySpec> {
    let (rt, span) = r.table(t, "retry")?;
    r.unknown_keys(rt, RETRY_KEYS, "`retry`");
    let mut spec = RetrySpec::default();
    match r.count(rt, "attempts", 1) {
        Some(a) => spec.attempts = a,
        None if !rt.contains_key("attempts") => {
            r.missing(
                "attempts",
                "`retry`",
                span,
                Some("e.g. retry = { attempts = 3, delay = \"5s\" }".into()),
            );
        }
        None => {}
    }
    if let Some(d) = r.duration(rt, "delay") {
        spec.delay = d;
    }
    if let Some(b) = r.float(rt, "backoff") {
        if b.value >= 1.0 && b.value.is_finite() {
            spec.backoff = b.value;
        } else {
            r.error(
                Code::InvalidValue,
                b.span.clone(),
                "`backoff` must be at least 1.0",
                "too small",
            );
        }
    }
    spec.max_delay = r.duration(rt, "max_delay");
    Some(spec)
}

fn read_array<'a, 'i>(
    r: &mut Reader<'_>,
    doc: &'a DeTable<'i>,
    key: &str,
) -> Vec<(&'a DeTable<'i>, std::ops::Range<usize>)> {
    let Some(value) = doc.get(key) else {
        return Vec::new();
    };
    let DeValue::Array(items) = value.get_ref() else {
        r.wrong_type(key, value, &format!("an array of tables (`[[{key}]]`)"));
        return Vec::new();
    };
    let mut out = Vec::new();
    for item in items {
        match item.get_ref() {
            DeValue::Table(t) => out.push((t, item.span())),
            _ => r.wrong_type(key, item, &format!("a table (`[[{key}]]`)")),
        }
    }
    out
}

/// `max_parallel` limits the elements of a `for_each`: without one it is a mistake,
/// reported at the key.
fn max_parallel_needs_for_each(
    r: &mut Reader<'_>,
    t: &DeTable<'_>,
    what: &str,
    id: Option<&Spanned<String>>,
) {
    let Some((key, _)) = t.get_key_value("max_parallel") else {
        return;
    };
    if t.contains_key("for_each") {
        return;
    }
    let name = id
        .map(|i| format!("{what} `{}`", i.value))
        .unwrap_or_else(|| format!("a {what}"));
    let d = PlanDiagnostic::new(
        Code::InvalidValue,
        r.source,
        format!("{name} sets `max_parallel` without `for_each`"),
    )
    .at(key.span(), "without `for_each`")
    .help("`max_parallel` limits the elements of a `for_each`; remove it or add `for_each`");
    r.report(d);
}

fn read_id(
    r: &mut Reader<'_>,
    t: &DeTable<'_>,
    what: &str,
    span: std::ops::Range<usize>,
) -> Option<Spanned<String>> {
    let Some(id) = r.string(t, "id") else {
        if !t.contains_key("id") {
            r.missing(
                "id",
                what,
                span,
                Some("every step and group needs an `id`, e.g. id = \"drain-node\"".into()),
            );
        }
        return None;
    };
    if !is_step_id(&id.value) {
        r.error(
            Code::InvalidId,
            id.span.clone(),
            format!("id `{}` is not allowed", id.value),
            "lowercase letters, digits, `-` and `_`, starting with a letter or digit",
        );
    }
    Some(id)
}

fn read_group(
    r: &mut Reader<'_>,
    t: &DeTable<'_>,
    span: std::ops::Range<usize>,
) -> Option<GroupSpec> {
    for nested in ["group", "step"] {
        if let Some((k, _)) = t.get_key_value(nested) {
            let (message, help) = if nested == "group" {
                (
                    "a group cannot be nested in a group",
                    "declare the group at the top level with its own `[[group]]`",
                )
            } else {
                (
                    "steps are not declared inside a group",
                    "declare the step with `[[step]]` and set `group = \"<id>\"`",
                )
            };
            let d = PlanDiagnostic::new(Code::NestedGroup, r.source, message)
                .at(k.span(), "not allowed inside `[[group]]`")
                .help(help);
            r.report(d);
        }
    }
    let allowed: Vec<&str> = GROUP_KEYS
        .iter()
        .copied()
        .chain(["group", "step"])
        .collect();
    let known: Vec<&str> = GROUP_KEYS.to_vec();
    for (key, _) in t.iter() {
        if !allowed.contains(&key.get_ref().as_ref()) {
            r.unknown_keys(&single(t, key.get_ref()), &known, "`[[group]]`");
        }
    }
    let id = read_id(r, t, "`[[group]]`", span.clone());
    max_parallel_needs_for_each(r, t, "group", id.as_ref());
    let group = GroupSpec {
        id: id
            .clone()
            .unwrap_or_else(|| Spanned::new(String::new(), span.clone())),
        description: r.string(t, "description").map(|s| s.value),
        needs: r.string_list(t, "needs").unwrap_or_default(),
        when: r.string(t, "when"),
        for_each: r.string(t, "for_each"),
        max_parallel: r.count(t, "max_parallel", 1),
        max_failures: r.count(t, "max_failures", 0).unwrap_or(0),
        finally: r.bool(t, "finally").unwrap_or(false),
        span,
    };
    id.map(|_| group)
}

// A one-key view of `t`, so `unknown_keys` reports exactly that key.
fn single<'i>(t: &DeTable<'i>, key: &str) -> DeTable<'i> {
    let mut out = DeTable::new();
    if let Some((k, v)) = t.get_key_value(key) {
        out.insert(k.clone(), v.clone());
    }
    out
}

fn read_step(
    r: &mut Reader<'_>,
    t: &DeTable<'_>,
    span: std::ops::Range<usize>,
    registry: &StepRegistry,
) -> Option<StepSpec> {
    let id = read_id(r, t, "`[[step]]`", span.clone());
    max_parallel_needs_for_each(r, t, "step", id.as_ref());
    let type_name = r.string(t, "type");
    if type_name.is_none() && !t.contains_key("type") {
        let help = format!(
            "known types: {}",
            registry.names().collect::<Vec<_>>().join(", ")
        );
        r.missing("type", "`[[step]]`", span.clone(), Some(help));
    }
    let schema = type_name
        .as_ref()
        .and_then(|ty| match registry.get(&ty.value) {
            Some(step) => Some(*step.schema()),
            None => {
                let help = did_you_mean(&ty.value, registry.names()).unwrap_or_else(|| {
                    format!(
                        "known types: {}",
                        registry.names().collect::<Vec<_>>().join(", ")
                    )
                });
                let d = PlanDiagnostic::new(
                    Code::UnknownStepType,
                    r.source,
                    format!("unknown step type `{}`", ty.value),
                )
                .at(ty.span.clone(), "no such step type")
                .help(help);
                r.report(d);
                None
            }
        });

    // Keys: common ones, then the type's own; unknown keys only when the type is known.
    if let Some(schema) = &schema {
        let mut allowed: Vec<&str> = COMMON_STEP_KEYS.to_vec();
        allowed.extend(schema.fields.iter().map(|f| f.name));
        r.unknown_keys(t, &allowed, &format!("a `{}` step", schema.name));
    }

    let capture = read_capture(r, t);
    let env = read_text_map(r, t, "env");
    let check = t.get("check").and_then(|v| {
        if check_field(r, "check", v, FieldKind::Shell) {
            r.field_value("check", v)
        } else {
            None
        }
    });

    let mut fields = IndexMap::new();
    if let Some(schema) = &schema {
        fields = read_type_fields(r, t, schema, span.clone());
    }

    let step = StepSpec {
        id: id.clone()?,
        type_name: type_name?,
        description: r.string(t, "description"),
        needs: r.string_list(t, "needs").unwrap_or_default(),
        group: r.string(t, "group"),
        when: r.string(t, "when"),
        for_each: r.string(t, "for_each"),
        max_parallel: r.count(t, "max_parallel", 1),
        timeout: r.duration(t, "timeout"),
        retry: read_retry(r, t),
        on_failure: t
            .contains_key("on_failure")
            .then(|| r.choice(t, "on_failure", OnFailure::ALL))
            .flatten(),
        idempotent: r.bool(t, "idempotent"),
        check,
        capture,
        env,
        finally: r.bool(t, "finally").unwrap_or(false),
        fields,
        span,
    };
    // A step of an unknown type (already reported) still exists: steps that need it or read
    // its outputs must not report it missing.
    Some(step)
}

fn read_capture(r: &mut Reader<'_>, t: &DeTable<'_>) -> Vec<Capture> {
    let Some((ct, _)) = r.table(t, "capture") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (key, value) in ct.iter() {
        let name = key.get_ref().to_string();
        if !is_param_name(&name) {
            r.error(
                Code::InvalidId,
                key.span(),
                format!("output name `{name}` is not allowed"),
                "use letters, digits and `_`, starting with a letter",
            );
        }
        let DeValue::String(pattern) = value.get_ref() else {
            r.wrong_type(&name, value, "a regex string");
            continue;
        };
        match Regex::new(pattern) {
            Ok(regex) if regex.captures_len() == 2 => out.push(Capture {
                name: Spanned::new(name, key.span()),
                regex,
            }),
            Ok(regex) => {
                let groups = regex.captures_len() - 1;
                let d = PlanDiagnostic::new(
                    Code::InvalidCapture,
                    r.source,
                    format!("capture `{name}` has {groups} groups; it needs exactly one"),
                )
                .at(value.span(), format!("{groups} groups"))
                .help("mark the value with one group, e.g. '(?m)^version: (\\S+)', and use (?:...) for other parentheses");
                r.report(d);
                out.push(declared_only(name, key.span()));
            }
            Err(e) => {
                let d = PlanDiagnostic::new(
                    Code::InvalidCapture,
                    r.source,
                    format!("capture `{name}` is not a valid regex"),
                )
                .at(value.span(), "invalid regex")
                .help(e.to_string());
                r.report(d);
                out.push(declared_only(name, key.span()));
            }
        }
    }
    out
}

// A capture whose regex was refused stays declared, so that templates reading it do not
// cascade into "unknown output"; the plan is invalid anyway and never runs.
fn declared_only(name: String, span: std::ops::Range<usize>) -> Capture {
    Capture {
        name: Spanned::new(name, span),
        regex: Regex::new("()").unwrap_or_else(|_| unreachable!("a constant regex compiles")),
    }
}

fn read_text_map(r: &mut Reader<'_>, t: &DeTable<'_>, key: &str) -> IndexMap<String, FieldValue> {
    let mut out = IndexMap::new();
    let Some(value) = t.get(key) else {
        return out;
    };
    if !check_field(r, key, value, FieldKind::TextMap) {
        return out;
    }
    if let Some(FieldValue {
        kind: crate::plan::model::FieldValueKind::Table(map),
        ..
    }) = r.field_value(key, value)
    {
        out = map;
    }
    out
}

fn read_type_fields(
    r: &mut Reader<'_>,
    t: &DeTable<'_>,
    schema: &StepSchema,
    span: std::ops::Range<usize>,
) -> IndexMap<String, FieldValue> {
    let mut out = IndexMap::new();
    for field in schema.fields {
        match t.get(field.name) {
            Some(v) => {
                if check_field(r, field.name, v, field.kind)
                    && let Some(fv) = r.field_value(field.name, v)
                {
                    out.insert(field.name.to_string(), fv);
                }
            }
            None if field.required => {
                r.missing(
                    field.name,
                    &format!("a `{}` step", schema.name),
                    span.clone(),
                    Some(field.doc.to_string()),
                );
            }
            None => {}
        }
    }
    if !schema.exactly_one_of.is_empty() {
        let present: Vec<&str> = schema
            .exactly_one_of
            .iter()
            .copied()
            .filter(|k| t.contains_key(*k))
            .collect();
        let list = schema
            .exactly_one_of
            .iter()
            .map(|k| format!("`{k}`"))
            .collect::<Vec<_>>()
            .join(", ");
        if present.is_empty() {
            let d = PlanDiagnostic::new(
                Code::MissingKey,
                r.source,
                format!("a `{}` step needs one of {list}", schema.name),
            )
            .at(span, "none given here")
            .help(format!("set exactly one of {list}"));
            r.report(d);
        } else if present.len() > 1 {
            let (k, _) = t
                .get_key_value(present[1])
                .map(|(k, v)| (k.span(), v))
                .unwrap_or((span.clone(), &t[present[0]]));
            let d = PlanDiagnostic::new(
                Code::ConflictingKeys,
                r.source,
                format!(
                    "`{}` and `{}` cannot both be set on a `{}` step",
                    present[0], present[1], schema.name
                ),
            )
            .at(k, "conflicts with an earlier key")
            .help(format!("set exactly one of {list}"));
            r.report(d);
        }
    }
    out
}

/// Checks a value against a field kind, reporting problems; true when it fits.
fn check_field(r: &mut Reader<'_>, key: &str, v: &Value<'_>, kind: FieldKind) -> bool {
    let value = v.get_ref();
    let is_template = |s: &str| s.contains("{{") || s.contains("{%");
    match kind {
        FieldKind::Text | FieldKind::Shell => {
            expect(r, key, v, matches!(value, DeValue::String(_)), kind)
        }
        FieldKind::Bool => expect(
            r,
            key,
            v,
            matches!(value, DeValue::Boolean(_))
                || matches!(value, DeValue::String(s) if is_template(s)),
            kind,
        ),
        FieldKind::Integer => expect(
            r,
            key,
            v,
            matches!(value, DeValue::Integer(_))
                || matches!(value, DeValue::String(s) if is_template(s)),
            kind,
        ),
        FieldKind::Duration => match value {
            DeValue::String(s) if is_template(s) => true,
            DeValue::String(s) => r
                .parse_duration_at(&Spanned::new(s.to_string(), v.span()))
                .is_some(),
            _ => expect(r, key, v, false, kind),
        },
        FieldKind::TextList | FieldKind::IntegerList => {
            let DeValue::Array(items) = value else {
                return expect(r, key, v, false, kind);
            };
            let want_int = matches!(kind, FieldKind::IntegerList);
            let mut ok = true;
            for item in items {
                let fits = if want_int {
                    matches!(item.get_ref(), DeValue::Integer(_))
                } else {
                    matches!(item.get_ref(), DeValue::String(_))
                };
                if !fits {
                    r.wrong_type(
                        key,
                        item,
                        if want_int {
                            "an integer (in this list)"
                        } else {
                            "a string (in this list)"
                        },
                    );
                    ok = false;
                }
            }
            ok
        }
        FieldKind::TextOrList => match value {
            DeValue::String(_) => true,
            DeValue::Array(_) => check_field(r, key, v, FieldKind::TextList),
            _ => expect(r, key, v, false, kind),
        },
        FieldKind::TextMap => {
            let DeValue::Table(t) = value else {
                return expect(r, key, v, false, kind);
            };
            let mut ok = true;
            for (k, item) in t.iter() {
                if !matches!(item.get_ref(), DeValue::String(_)) {
                    r.wrong_type(k.get_ref(), item, "a string");
                    ok = false;
                }
            }
            ok
        }
        FieldKind::Choice(choices) => {
            let DeValue::String(s) = value else {
                return expect(r, key, v, false, kind);
            };
            if choices.contains(&s.as_ref()) {
                return true;
            }
            let help = did_you_mean(s, choices.iter().copied())
                .unwrap_or_else(|| format!("`{key}` is one of: {}", choices.join(", ")));
            let d = PlanDiagnostic::new(
                Code::InvalidValue,
                r.source,
                format!("`{s}` is not a valid `{key}`"),
            )
            .at(v.span(), format!("expected one of: {}", choices.join(", ")))
            .help(help);
            r.report(d);
            false
        }
        FieldKind::TableList(fields) => {
            let DeValue::Array(items) = value else {
                return expect(r, key, v, false, kind);
            };
            let mut ok = true;
            for item in items {
                let DeValue::Table(t) = item.get_ref() else {
                    r.wrong_type(key, item, "a table (in this list)");
                    ok = false;
                    continue;
                };
                ok &= check_table(r, key, t, item.span(), fields);
            }
            ok
        }
        FieldKind::Any => true,
    }
}

fn check_table(
    r: &mut Reader<'_>,
    key: &str,
    t: &DeTable<'_>,
    span: std::ops::Range<usize>,
    fields: &[FieldSpec],
) -> bool {
    let names: Vec<&str> = fields.iter().map(|f| f.name).collect();
    let before = r.diags.len();
    r.unknown_keys(t, &names, &format!("an entry of `{key}`"));
    for f in fields {
        match t.get(f.name) {
            Some(v) => {
                check_field(r, f.name, v, f.kind);
            }
            None if f.required => r.missing(
                f.name,
                &format!("this entry of `{key}`"),
                span.clone(),
                Some(f.doc.to_string()),
            ),
            None => {}
        }
    }
    r.diags.len() == before
}

fn expect(r: &mut Reader<'_>, key: &str, v: &Value<'_>, ok: bool, kind: FieldKind) -> bool {
    if !ok {
        r.wrong_type(key, v, kind.describe());
    }
    ok
}
