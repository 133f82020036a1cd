//! Templates in plan fields: rendering, shell quoting, and the names they read.

mod engine;
mod fields;

pub use engine::{is_template, Quoting, TemplateError, Templates};
pub use fields::{placeholder_steps, render_fields, render_value, FieldError};
