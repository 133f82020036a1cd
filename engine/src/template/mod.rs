//! Templates in plan fields: rendering, shell quoting, and the names they read.

mod engine;

pub use engine::{is_template, Quoting, TemplateError, Templates};
