//! The lab: a simulated world for tests, benchmarks and the quick start.

pub mod appliance;
pub mod gitops;
pub mod kube;
