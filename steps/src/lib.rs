//! Built-in step types.
