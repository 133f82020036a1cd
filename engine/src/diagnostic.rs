//! Problems found in a plan, a parameters file or a `--set`, as miette diagnostics.
//!
//! Every problem carries a stable code (`rok_plan::...`), the source it was found in, the
//! exact span, and a hint where one exists. Validation gathers them all into
//! [`Diagnostics`] instead of stopping at the first.

use std::fmt;
use std::ops::Range;

use miette::{Diagnostic, LabeledSpan, SourceCode};
use serde::Serialize;

use crate::source::PlanSource;

macro_rules! codes {
    ($($(#[doc = $doc:literal])* $variant:ident => $name:literal,)*) => {
        /// The stable code of a plan problem. The names never change meaning; new ones may be added.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum Code {
            $($(#[doc = $doc])* $variant,)*
        }

        impl Code {
            /// Every code, in declaration order.
            pub const ALL: &'static [Code] = &[$(Code::$variant,)*];

            /// The code as printed: `rok_plan::NAME`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Code::$variant => concat!("rok_plan::", $name),)*
                }
            }
        }
    };
}

codes! {
    /// The file is not valid TOML.
    TomlSyntax => "toml_syntax",
    /// A key that nothing reads.
    UnknownKey => "unknown_key",
    /// A value of the wrong TOML type.
    WrongType => "wrong_type",
    /// A required key is missing.
    MissingKey => "missing_key",
    /// Two keys that exclude each other, or none of a set where one is needed.
    ConflictingKeys => "conflicting_keys",
    /// A value of the right type that is not allowed (a bad enum value, a negative count).
    InvalidValue => "invalid_value",
    /// An id or name that does not match its pattern.
    InvalidId => "invalid_id",
    /// Two steps or groups with the same id.
    DuplicateId => "duplicate_id",
    /// `type` names no known step type.
    UnknownStepType => "unknown_step_type",
    /// `needs` names no step or group.
    UnknownNeed => "unknown_need",
    /// `group` names no group.
    UnknownGroup => "unknown_group",
    /// A group declared inside a group.
    NestedGroup => "nested_group",
    /// Steps that need each other in a circle.
    Cycle => "cycle",
    /// A non-`finally` step that needs a `finally` step.
    NeedsFinally => "needs_finally",
    /// A duration that cannot be parsed.
    InvalidDuration => "invalid_duration",
    /// A capture regex that does not compile or does not have exactly one group.
    InvalidCapture => "invalid_capture",
    /// A template or expression that does not parse.
    TemplateSyntax => "template_syntax",
    /// A template names a parameter the plan does not declare.
    UnknownParam => "unknown_param",
    /// A template names a step the plan does not have.
    UnknownStep => "unknown_step",
    /// A template names an output the step does not capture.
    UnknownOutput => "unknown_output",
    /// A template reads a step that is not among the step's (transitive) `needs`.
    NotANeed => "not_a_need",
    /// A template names something that is not in scope (`item` outside `for_each`, an unknown variable).
    UnknownName => "unknown_name",
    /// `for_each` does not give a list, or cannot be known before the run.
    ForEachNotList => "for_each_not_list",
    /// A parameter value outside its `choices`.
    NotInChoices => "not_in_choices",
    /// A required parameter has no value.
    MissingParam => "missing_param",
    /// A parameter value of the wrong type.
    InvalidParamValue => "invalid_param_value",
    /// `--set` or a parameters file names a parameter the plan does not declare.
    UnknownSet => "unknown_set",
    /// A `--set` that is not `NAME=VALUE`.
    InvalidSet => "invalid_set",
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One problem, located in its source.
#[derive(Clone, Debug)]
pub struct PlanDiagnostic {
    code: Code,
    message: String,
    source: PlanSource,
    span: Option<Range<usize>>,
    label: Option<String>,
    help: Option<String>,
}

impl PlanDiagnostic {
    /// A problem in `source`, not yet located.
    pub fn new(code: Code, source: &PlanSource, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            source: source.clone(),
            span: None,
            label: None,
            help: None,
        }
    }

    /// Underlines `span` with `label`.
    #[must_use]
    pub fn at(mut self, span: Range<usize>, label: impl Into<String>) -> Self {
        self.span = Some(span);
        self.label = Some(label.into());
        self
    }

    /// Adds a hint.
    #[must_use]
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Adds a hint when there is one.
    #[must_use]
    pub fn maybe_help(mut self, help: Option<String>) -> Self {
        if help.is_some() {
            self.help = help;
        }
        self
    }

    /// The stable code.
    pub fn code(&self) -> Code {
        self.code
    }

    /// The one-line message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The hint, if any.
    pub fn help_text(&self) -> Option<&str> {
        self.help.as_deref()
    }

    /// The source the problem is in.
    pub fn source(&self) -> &PlanSource {
        &self.source
    }

    /// The byte span of the offending text, if the problem has one.
    pub fn span(&self) -> Option<Range<usize>> {
        self.span.clone()
    }

    /// The problem as data, for `--output json`.
    pub fn to_record(&self) -> DiagnosticRecord {
        let (line, column, span) = match &self.span {
            Some(span) => {
                let lc = self.source.line_column(span.start);
                (
                    Some(lc.line),
                    Some(lc.column),
                    Some(SpanRecord {
                        offset: span.start,
                        length: span.len(),
                    }),
                )
            }
            None => (None, None, None),
        };
        DiagnosticRecord {
            code: self.code.as_str(),
            message: self.message.clone(),
            file: self.source.name().to_string(),
            line,
            column,
            span,
            label: self.label.clone(),
            help: self.help.clone(),
        }
    }
}

impl fmt::Display for PlanDiagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for PlanDiagnostic {}

impl Diagnostic for PlanDiagnostic {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(self.code.as_str()))
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h.as_str()) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        self.span.as_ref()?;
        Some(&self.source as &dyn SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let span = self.span.clone()?;
        let label = LabeledSpan::new_with_span(self.label.clone(), span);
        Some(Box::new(std::iter::once(label)))
    }
}

impl SourceCode for PlanSource {
    fn read_span<'a>(
        &'a self,
        span: &miette::SourceSpan,
        context_lines_before: usize,
        context_lines_after: usize,
    ) -> Result<Box<dyn miette::SpanContents<'a> + 'a>, miette::MietteError> {
        let inner = self
            .text()
            .read_span(span, context_lines_before, context_lines_after)?;
        // miette counts columns in bytes; ours (and the JSON output's) count characters.
        let column = self.line_column(inner.span().offset()).column - 1;
        Ok(Box::new(miette::MietteSpanContents::new_named(
            self.name().to_string(),
            inner.data(),
            *inner.span(),
            inner.line(),
            column,
            inner.line_count(),
        )))
    }
}

/// A problem as data: what `rok-plan validate --output json` prints.
#[derive(Clone, Debug, Serialize)]
pub struct DiagnosticRecord {
    /// The stable code, `rok_plan::...`.
    pub code: &'static str,
    /// The one-line message.
    pub message: String,
    /// The file (or `--set`) the problem is in.
    pub file: String,
    /// 1-based line of the span's start.
    pub line: Option<usize>,
    /// 1-based column (in characters) of the span's start.
    pub column: Option<usize>,
    /// Byte span of the offending text.
    pub span: Option<SpanRecord>,
    /// What the underline says.
    pub label: Option<String>,
    /// The hint.
    pub help: Option<String>,
}

/// A byte span in a source.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct SpanRecord {
    /// Byte offset of the start.
    pub offset: usize,
    /// Length in bytes.
    pub length: usize,
}

/// Every problem found in one pass, in the order found (sorted by position per file).
#[derive(Clone, Debug, Default)]
pub struct Diagnostics {
    items: Vec<PlanDiagnostic>,
}

impl Diagnostics {
    /// No problems yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a problem.
    pub fn push(&mut self, diagnostic: PlanDiagnostic) {
        self.items.push(diagnostic);
    }

    /// Takes every problem of `other`.
    pub fn extend(&mut self, other: Diagnostics) {
        self.items.extend(other.items);
    }

    /// True when nothing was found.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// How many problems.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// The problems.
    pub fn iter(&self) -> impl Iterator<Item = &PlanDiagnostic> {
        self.items.iter()
    }

    /// Orders problems by file and position, and drops exact repeats.
    pub fn sort(&mut self) {
        self.items.sort_by(|a, b| {
            let key = |d: &PlanDiagnostic| {
                (
                    d.source.name().to_string(),
                    d.span.as_ref().map_or(usize::MAX, |s| s.start),
                )
            };
            key(a).cmp(&key(b))
        });
        self.items
            .dedup_by(|a, b| a.code == b.code && a.span == b.span && a.message == b.message);
    }

    /// `Ok(value)` when nothing was found, else every problem.
    ///
    /// # Errors
    /// Returns `self` when it holds any problem.
    pub fn into_result<T>(mut self, value: T) -> Result<T, Diagnostics> {
        if self.is_empty() {
            Ok(value)
        } else {
            self.sort();
            Err(self)
        }
    }
}

impl IntoIterator for Diagnostics {
    type Item = PlanDiagnostic;
    type IntoIter = std::vec::IntoIter<PlanDiagnostic>;
    fn into_iter(self) -> Self::IntoIter {
        self.items.into_iter()
    }
}

impl From<PlanDiagnostic> for Diagnostics {
    fn from(d: PlanDiagnostic) -> Self {
        Self { items: vec![d] }
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.items.len();
        write!(f, "{n} problem{}", if n == 1 { "" } else { "s" })
    }
}

impl std::error::Error for Diagnostics {}

/// The known name closest to `name`, if one is close enough to be a likely typo.
pub fn closest_name<'a>(name: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = match name.chars().count() {
        0..=3 => 1,
        4..=8 => 2,
        _ => 3,
    };
    known
        .into_iter()
        .map(|k| (levenshtein(name, k), k))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// "did you mean `x`?" for the closest known name, if any.
pub fn did_you_mean<'a>(name: &str, known: impl IntoIterator<Item = &'a str>) -> Option<String> {
    closest_name(name, known).map(|k| format!("did you mean `{k}`?"))
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names_only() {
        assert_eq!(closest_name("nedes", ["needs", "type"]), Some("needs"));
        assert_eq!(closest_name("timeout", ["retry", "when"]), None);
        assert_eq!(closest_name("x", ["y", "xx"]), Some("y"));
    }

    #[test]
    fn codes_are_prefixed() {
        for code in Code::ALL {
            assert!(code.as_str().starts_with("rok_plan::"));
        }
    }
}
