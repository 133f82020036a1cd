//! rok-plan: written cluster upgrade procedures as typed, resumable plans.
//!
//! This crate is the `rok-plan` command and a thin facade for embedding: the engine
//! (plan model, validation, templates, the DAG) is [`engine`], the built-in step types
//! are [`steps`].
//!
//! ```
//! use rok_plan::engine::{load_plan, PlanSource};
//!
//! let source = PlanSource::new("hello.toml", r#"
//! [plan]
//! name = "hello"
//!
//! [[step]]
//! id = "greet"
//! type = "shell"
//! run = "echo hello"
//! "#);
//! let plan = load_plan(&source, &rok_plan::steps::builtin()).expect("a valid plan");
//! assert_eq!(plan.steps.len(), 1);
//! ```

pub use rok_plan_engine as engine;
pub use rok_plan_steps as steps;

pub mod cli;
mod exit;
mod report;

pub use exit::ExitCode;
