//! rok-plan facade.
pub use rok_plan_engine as engine;
pub use rok_plan_steps as steps;
