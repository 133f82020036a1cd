//! The lab: a simulated world for tests, benchmarks and the quick start.

pub mod kube;
