//! The Rok appliance lab, through the system's ssh (strict host key checking) as the
//! product uses it, and the GitOps repositories. Needs root (namespaces).

mod cli;
mod faults;
mod ganeti;
mod gitops;
mod hosts;
mod plans;
mod support;
mod tools_v0_11;
mod tools_v0_12;
