//! The DAG of step instances: expansion, parallel waves, drawing.

mod expand;
mod export;
mod waves;

pub use expand::{ExecutionGraph, Instance, Unit, expand};
pub use export::{GraphFormat, export};
pub use waves::waves;
