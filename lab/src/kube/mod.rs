//! The lab's Kubernetes API double: an HTTP server on 127.0.0.1 that speaks the Kubernetes API
//! well enough that the unmodified `kube` client and `kubectl` cannot tell it from a real API
//! server, with simulated controllers behind it. See `../shared/design/kube-double.md`.
//!
//! Start one with [`Cluster::start`]; point clients at [`Cluster::kubeconfig`].

pub mod cluster;
pub mod controllers;
pub mod crd;
pub mod defaults;
pub mod eviction;
pub mod faults;
pub mod fields;
pub mod kinds;
pub mod logs;
pub mod ops;
pub mod patch;
pub mod pod;
pub mod scale;
pub mod selectors;
pub mod server;
pub mod status;
pub mod store;
pub mod table;
pub mod watch;
pub mod world;

pub use cluster::{Cluster, ClusterOptions, LabError};
pub use world::{Delays, PodBehaviour, World};
