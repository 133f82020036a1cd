//! The rok-plan engine: plans are read and checked, expanded into a DAG of step
//! instances, previewed, and (later) executed with every state checkpointed.
//!
//! ```text
//! PlanSource ──load_plan──▶ Plan ──resolve_params──▶ Params
//!                              │                        │
//!                              └────────expand──────────┴──▶ ExecutionGraph ──▶ preview / graph export
//! ```

pub mod diagnostic;
pub mod duration;
pub mod exec;
pub mod graph;
pub mod params;
pub mod plan;
pub mod preview;
pub mod process;
pub mod schema;
pub mod source;
pub mod state;
pub mod step;
pub mod template;

pub use diagnostic::{Code, Diagnostics, PlanDiagnostic};
pub use plan::{Plan, load_plan};
pub use source::PlanSource;
pub use step::{StepRegistry, StepType};
