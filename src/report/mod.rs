//! Everything the command prints: diagnostics, previews, summaries.

pub(crate) mod diagnostics;

/// `"s"` unless there is exactly one.
pub(crate) fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

pub(crate) mod preview;
pub(crate) mod progress;
pub(crate) mod stdout;
