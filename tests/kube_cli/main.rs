//! The real `rok-plan` binary against the lab's Kubernetes API double.

mod server_dry_run;
