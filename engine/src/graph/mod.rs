//! The DAG of step instances: expansion, parallel waves, drawing.

mod expand;
mod export;
mod waves;

pub use expand::{expand, ExecutionGraph, Instance, Unit};
pub use export::{export, GraphFormat};
pub use waves::waves;
