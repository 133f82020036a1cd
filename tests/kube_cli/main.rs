//! The real `rok-plan` binary against the lab's Kubernetes API double.

mod pmk;
mod pmk_crash;
mod pmk_lab;
mod rok_k8s;
mod server_dry_run;
