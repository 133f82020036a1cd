//! The text of a plan (or parameters) file, owned once; every span points into it.

use std::ops::Range;
use std::sync::Arc;

/// A named source text: a plan file, a parameters file, or a command-line value.
#[derive(Clone, Debug)]
pub struct PlanSource {
    name: Arc<str>,
    text: Arc<str>,
}

/// A 1-based line and column (columns count characters, as editors do).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct LineColumn {
    /// 1-based line number.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
}

impl PlanSource {
    /// Wraps `text`, naming it `name` (usually the path as the user gave it).
    pub fn new(name: impl Into<Arc<str>>, text: impl Into<Arc<str>>) -> Self {
        Self {
            name: name.into(),
            text: text.into(),
        }
    }

    /// The name shown in diagnostics.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The whole text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The text of `span`, or `""` when the span is out of range.
    pub fn slice(&self, span: &Range<usize>) -> &str {
        self.text.get(span.clone()).unwrap_or("")
    }

    /// Line and column of a byte offset (clamped to the text).
    pub fn line_column(&self, offset: usize) -> LineColumn {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        LineColumn { line, column }
    }

    /// A miette source for rendering diagnostics against this text.
    pub fn to_named_source(&self) -> miette::NamedSource<String> {
        miette::NamedSource::new(self.name.as_ref(), self.text.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_column_counts_characters() {
        let s = PlanSource::new("p.toml", "a = 1\nbé = 2\n");
        assert_eq!(s.line_column(0), LineColumn { line: 1, column: 1 });
        assert_eq!(s.line_column(6), LineColumn { line: 2, column: 1 });
        // 'é' is two bytes but one column.
        assert_eq!(s.line_column(9), LineColumn { line: 2, column: 3 });
        assert_eq!(s.line_column(999), LineColumn { line: 3, column: 1 });
    }
}

/// A value and the byte span of its text in the plan source.
#[derive(Clone, Debug, PartialEq)]
pub struct Spanned<T> {
    /// The value.
    pub value: T,
    /// Where it was written.
    pub span: Range<usize>,
}

impl<T> Spanned<T> {
    /// Pairs a value with its span.
    pub fn new(value: T, span: Range<usize>) -> Self {
        Self { value, span }
    }
}

impl<T> std::ops::Deref for Spanned<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}
