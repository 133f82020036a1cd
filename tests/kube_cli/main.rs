//! The real `rok-plan` binary against the lab's Kubernetes API double.

mod pmk;
mod pmk_lab;
mod server_dry_run;
