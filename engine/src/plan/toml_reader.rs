//! Typed, span-keeping reads from a parsed TOML document, reporting every problem.
//!
//! serde's derive would stop at the first problem and loses spans inside tagged enums (see
//! design/dependencies.md §6), so plans are read by hand from `toml::de::DeTable`, where
//! every key and value keeps its span.

use std::ops::Range;
use std::time::Duration;

use indexmap::IndexMap;
use toml::de::{DeTable, DeValue};

use crate::diagnostic::{Code, Diagnostics, PlanDiagnostic, did_you_mean};
use crate::duration::parse_duration;
use crate::plan::model::{FieldValue, FieldValueKind};
use crate::source::{PlanSource, Spanned};

/// A spanned TOML value as parsed.
pub(crate) type Value<'i> = toml::Spanned<DeValue<'i>>;

/// Reads values out of one source, gathering problems.
pub(crate) struct Reader<'s> {
    pub(crate) source: &'s PlanSource,
    pub(crate) diags: Diagnostics,
}

pub(crate) fn type_name(v: &DeValue<'_>) -> &'static str {
    match v {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a datetime",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

impl<'s> Reader<'s> {
    pub(crate) fn new(source: &'s PlanSource) -> Self {
        Self {
            source,
            diags: Diagnostics::new(),
        }
    }

    pub(crate) fn report(&mut self, d: PlanDiagnostic) {
        self.diags.push(d);
    }

    pub(crate) fn error(
        &mut self,
        code: Code,
        span: Range<usize>,
        message: impl Into<String>,
        label: impl Into<String>,
    ) {
        let d = PlanDiagnostic::new(code, self.source, message).at(span, label);
        self.diags.push(d);
    }

    /// Reports every key of `table` not in `allowed`, suggesting the closest one.
    pub(crate) fn unknown_keys(&mut self, table: &DeTable<'_>, allowed: &[&str], what: &str) {
        for (key, _) in table.iter() {
            let name: &str = key.get_ref();
            if !allowed.contains(&name) {
                let help = did_you_mean(name, allowed.iter().copied())
                    .unwrap_or_else(|| format!("known keys in {what}: {}", allowed.join(", ")));
                let d = PlanDiagnostic::new(
                    Code::UnknownKey,
                    self.source,
                    format!("unknown key `{name}` in {what}"),
                )
                .at(key.span(), "not a known key")
                .help(help);
                self.report(d);
            }
        }
    }

    pub(crate) fn wrong_type(&mut self, key: &str, value: &Value<'_>, expected: &str) {
        self.error(
            Code::WrongType,
            value.span(),
            format!(
                "`{key}` must be {expected}, not {}",
                type_name(value.get_ref())
            ),
            format!("expected {expected}"),
        );
    }

    pub(crate) fn missing(
        &mut self,
        key: &str,
        what: &str,
        at: Range<usize>,
        help: Option<String>,
    ) {
        let d = PlanDiagnostic::new(
            Code::MissingKey,
            self.source,
            format!("{what} has no `{key}`"),
        )
        .at(at, format!("`{key}` is required here"))
        .maybe_help(help);
        self.report(d);
    }

    pub(crate) fn string(&mut self, table: &DeTable<'_>, key: &str) -> Option<Spanned<String>> {
        let value = table.get(key)?;
        match value.get_ref() {
            DeValue::String(s) => Some(Spanned::new(s.to_string(), value.span())),
            _ => {
                self.wrong_type(key, value, "a string");
                None
            }
        }
    }

    pub(crate) fn bool(&mut self, table: &DeTable<'_>, key: &str) -> Option<bool> {
        let value = table.get(key)?;
        match value.get_ref() {
            DeValue::Boolean(b) => Some(*b),
            _ => {
                self.wrong_type(key, value, "a boolean");
                None
            }
        }
    }

    pub(crate) fn integer(&mut self, table: &DeTable<'_>, key: &str) -> Option<Spanned<i64>> {
        let value = table.get(key)?;
        match integer_of(value.get_ref()) {
            Some(i) => Some(Spanned::new(i, value.span())),
            None => {
                self.wrong_type(key, value, "an integer");
                None
            }
        }
    }

    /// A non-negative count that fits in `u32`.
    pub(crate) fn count(&mut self, table: &DeTable<'_>, key: &str, min: i64) -> Option<u32> {
        let n = self.integer(table, key)?;
        match u32::try_from(n.value) {
            Ok(v) if n.value >= min => Some(v),
            _ => {
                self.error(
                    Code::InvalidValue,
                    n.span.clone(),
                    format!("`{key}` must be a whole number of at least {min}"),
                    format!("{} is not allowed here", n.value),
                );
                None
            }
        }
    }

    pub(crate) fn float(&mut self, table: &DeTable<'_>, key: &str) -> Option<Spanned<f64>> {
        let value = table.get(key)?;
        let f = match value.get_ref() {
            DeValue::Float(f) => f.as_str().replace('_', "").parse::<f64>().ok(),
            other => integer_of(other).map(|i| i as f64),
        };
        match f {
            Some(f) => Some(Spanned::new(f, value.span())),
            None => {
                self.wrong_type(key, value, "a number");
                None
            }
        }
    }

    pub(crate) fn duration(&mut self, table: &DeTable<'_>, key: &str) -> Option<Duration> {
        let text = self.string(table, key)?;
        self.parse_duration_at(&text)
    }

    pub(crate) fn parse_duration_at(&mut self, text: &Spanned<String>) -> Option<Duration> {
        match parse_duration(&text.value) {
            Ok(d) => Some(d),
            Err(e) => {
                let d = PlanDiagnostic::new(Code::InvalidDuration, self.source, e.to_string())
                    .at(text.span.clone(), "not a duration")
                    .help("write a number and a unit (ms, s, m, h, d), e.g. \"30s\", \"10m\" or \"1h30m\"");
                self.report(d);
                None
            }
        }
    }

    pub(crate) fn string_list(
        &mut self,
        table: &DeTable<'_>,
        key: &str,
    ) -> Option<Vec<Spanned<String>>> {
        let value = table.get(key)?;
        let DeValue::Array(items) = value.get_ref() else {
            self.wrong_type(key, value, "a list of strings");
            return None;
        };
        let mut out = Vec::new();
        for item in items {
            match item.get_ref() {
                DeValue::String(s) => out.push(Spanned::new(s.to_string(), item.span())),
                _ => self.wrong_type(key, item, "a string (in this list)"),
            }
        }
        Some(out)
    }

    pub(crate) fn table<'a, 'i>(
        &mut self,
        table: &'a DeTable<'i>,
        key: &str,
    ) -> Option<(&'a DeTable<'i>, Range<usize>)> {
        let value = table.get(key)?;
        match value.get_ref() {
            DeValue::Table(t) => Some((t, value.span())),
            _ => {
                self.wrong_type(key, value, "a table");
                None
            }
        }
    }

    /// One of `choices` (given as `(name, value)` pairs).
    pub(crate) fn choice<T: Copy>(
        &mut self,
        table: &DeTable<'_>,
        key: &str,
        choices: &[(&str, T)],
    ) -> Option<T> {
        let text = self.string(table, key)?;
        if let Some((_, v)) = choices.iter().find(|(n, _)| *n == text.value) {
            return Some(*v);
        }
        let names: Vec<&str> = choices.iter().map(|(n, _)| *n).collect();
        let help = did_you_mean(&text.value, names.iter().copied())
            .unwrap_or_else(|| format!("`{key}` is one of: {}", names.join(", ")));
        let d = PlanDiagnostic::new(
            Code::InvalidValue,
            self.source,
            format!("`{}` is not a valid `{key}`", text.value),
        )
        .at(
            text.span.clone(),
            format!("expected one of: {}", names.join(", ")),
        )
        .help(help);
        self.report(d);
        None
    }

    /// A TOML value kept as a template tree (datetimes are refused).
    pub(crate) fn field_value(&mut self, key: &str, value: &Value<'_>) -> Option<FieldValue> {
        let span = value.span();
        let kind = match value.get_ref() {
            DeValue::String(s) => FieldValueKind::Text(s.to_string()),
            DeValue::Boolean(b) => FieldValueKind::Bool(*b),
            DeValue::Integer(_) => {
                FieldValueKind::Integer(integer_of(value.get_ref()).or_else(|| {
                    self.error(
                        Code::InvalidValue,
                        span.clone(),
                        format!("`{key}` is out of range"),
                        "too large",
                    );
                    None
                })?)
            }
            DeValue::Float(f) => {
                FieldValueKind::Float(f.as_str().replace('_', "").parse().unwrap_or(f64::NAN))
            }
            DeValue::Datetime(_) => {
                self.wrong_type(key, value, "a string, number, boolean, list or table");
                return None;
            }
            DeValue::Array(items) => {
                let mut out = Vec::new();
                for item in items {
                    out.push(self.field_value(key, item)?);
                }
                FieldValueKind::List(out)
            }
            DeValue::Table(t) => {
                let mut out = IndexMap::new();
                for (k, v) in t.iter() {
                    out.insert(k.get_ref().to_string(), self.field_value(k.get_ref(), v)?);
                }
                FieldValueKind::Table(out)
            }
        };
        Some(FieldValue { span, kind })
    }
}

pub(crate) fn integer_of(v: &DeValue<'_>) -> Option<i64> {
    match v {
        DeValue::Integer(i) => i64::from_str_radix(&i.as_str().replace('_', ""), i.radix()).ok(),
        _ => None,
    }
}
