//! Operator-level tests of `execute`, `resume`, `status`, `runs` and `logs`: the real
//! `rok-plan` binary runs plans of local shell steps in temporary directories, with its
//! state store on disk (sled), and the tests look at what an operator would check: exit
//! codes, `status --output json`, the files the steps wrote, and what was printed.

mod support;

mod in_doubt;
mod manual;
mod plan_change;
mod policies;
mod reports;
mod secrets;
mod signals;
mod store;
