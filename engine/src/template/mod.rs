//! Templates in plan fields: rendering, shell quoting, and the names they read.

mod engine;
mod fields;

pub use engine::{Quoting, TemplateError, Templates, is_template};
pub use fields::{FieldError, placeholder_steps, render_fields, render_value};
