//! Everything the command prints: diagnostics, previews, summaries.

pub(crate) mod diagnostics;
pub(crate) mod preview;
pub(crate) mod progress;
pub(crate) mod stdout;
