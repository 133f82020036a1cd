//! The lab's Kubernetes API double: an HTTP server on 127.0.0.1 that speaks the Kubernetes API
//! well enough that the unmodified `kube` client and `kubectl` cannot tell it from a real API
//! server, with simulated controllers behind it. See `../shared/design/kube-double.md`.
//!
//! Start one with [`Cluster::start`] (or `lab kube serve --nodes N --kubeconfig PATH [--rok V]`)
//! and point clients at [`Cluster::kubeconfig`] (plain `http://`, no auth).
//!
//! # Layout
//! - [`kinds`]: the kind table, parsed from the real discovery documents in `api/` (+ CRDs).
//! - [`store`]: objects behind `Arc`s, indexed by resource, namespace and name, by uid, by owner
//!   and pods by node; the global resourceVersion; the change feed the controllers read.
//! - [`events`]: the event log watches replay (per resource, bounded: compaction gives 410),
//!   behind its own lock.
//! - [`server`]: routing, LIST (selectors, paging), the verbs; [`watch`], [`scale`],
//!   [`eviction`], [`logs`], [`table`] (server-side printing for kubectl).
//! - [`ops`]: create/update/delete semantics; [`fields`]: managedFields and server-side apply;
//!   [`listtypes`]: the list types and map keys apply uses (the OpenAPI's, or a CRD schema's);
//!   [`patch`]: merge, strategic merge and JSON patches; [`defaults`]: defaulting, validation.
//! - [`controllers`]: scheduler, kubelet, Deployment, ReplicaSet/RC, StatefulSet, DaemonSet,
//!   Job, GC, namespaces, nodes (cordon taint), PDB status, the Rok operator.
//! - [`cluster`]: the control handle; [`faults`]: injected errors, latency, dropped watches;
//!   [`control`]: the same over HTTP under `/lab/v1/`, for the `lab kube` commands.
//!
//! # Known limits
//! - Request bodies must be JSON (kube and kubectl's dynamic paths send JSON); protobuf bodies
//!   (kubectl's typed paths such as `kubectl create deployment`) get 415.
//! - `/openapi/v2` is an empty document, so kubectl's client-side validation accepts anything;
//!   `/openapi/v3` is absent.
//! - kubectl's Table output is provided for LIST/GET, not for `get -w` watch events.

pub mod cluster;
pub mod control;
pub mod controllers;
pub mod crd;
pub mod defaults;
pub mod events;
pub mod eviction;
pub mod faults;
pub mod fields;
pub mod kinds;
pub mod list;
pub mod listtypes;
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
