//! The Kubernetes step types against the lab's API double: each step as the executor runs
//! it (rendered fields in, outcome and output out), failures included.

mod apply;
mod drain;
mod logs;
mod nodes;
mod objects;
mod support;
mod workloads;
