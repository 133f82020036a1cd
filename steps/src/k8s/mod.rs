//! Kubernetes step types. Named `k8s` so that paths never clash with the `kube` crate.
//!
//! Every type talks to the API through [`client::Clients`]: one `kube::Client` per
//! kubeconfig context, shared by the run's steps, with kube's own retry turned off so that
//! [`client::call`] owns retries (5xx and dropped connections are retried; an eviction's
//! 429 is the drain's to handle, see `drain.rs`).

use std::time::Duration;

use rok_plan_engine::step::{FieldKind, FieldSpec};
use serde_json::{Map, Value};

mod apply;
mod client;
mod cordon;
mod delete;
mod drain;
mod error;
mod field_path;
mod get;
mod kinds;
mod kubectl;
mod logs_quiet;
mod patch;
mod preflight;
mod resource;
mod restart;
mod rollout;
mod scale;
mod wait;
mod watch;

pub(crate) use client::Kube;
pub use kinds::{
    KubeApply, KubeCordon, KubeDelete, KubeDrain, KubeGet, KubeLogsQuiet, KubePatch, KubeRestart,
    KubeScale, KubeUncordon, KubeWait, Kubectl,
};

/// Run-wide Kubernetes settings (command-line flags, not the plan's).
#[derive(Clone, Debug)]
pub struct KubeOptions {
    /// The kubeconfig file (default: `$KUBECONFIG`, else `~/.kube/config`, else the
    /// in-cluster service account).
    pub kubeconfig: Option<std::path::PathBuf>,
    /// Send every write with `dryRun=All` and skip the waits that would follow it
    /// (`rok-plan plan --server-dry-run`); a drain only runs its pre-flight.
    pub server_dry_run: bool,
    /// How long a drain waits before asking again for an eviction a PodDisruptionBudget
    /// refused (kubectl waits 5 s).
    pub eviction_retry_interval: Duration,
}

impl Default for KubeOptions {
    fn default() -> Self {
        Self {
            kubeconfig: None,
            server_dry_run: false,
            eviction_retry_interval: Duration::from_secs(5),
        }
    }
}

pub(crate) const CONTEXT: FieldSpec = FieldSpec::optional(
    "context",
    FieldKind::Text,
    "The kubeconfig context (default: [defaults] context, else the current one; \"\" also means the current one).",
);
pub(crate) const NAMESPACE: FieldSpec = FieldSpec::optional(
    "namespace",
    FieldKind::Text,
    "The namespace (default: the context's, else \"default\").",
);
pub(crate) const SELECTOR: FieldSpec = FieldSpec::optional(
    "selector",
    FieldKind::Text,
    "A label selector, e.g. \"app=rok-csi-node\".",
);

/// `-n NS` and `--context C` as a user would read them.
pub(crate) fn scope(f: &Map<String, Value>) -> String {
    let mut s = String::new();
    if let Some(ns) = f.get("namespace").and_then(Value::as_str) {
        s.push_str(&format!(" in namespace {ns}"));
    }
    if let Some(c) = f.get("context").and_then(Value::as_str) {
        s.push_str(&format!(" (context {c})"));
    }
    s
}

/// A boolean field: `true`/`false`, or text that says so (a rendered template).
pub(crate) fn flag(f: &Map<String, Value>, key: &str) -> bool {
    match f.get(key) {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.trim().eq_ignore_ascii_case("true"),
        _ => false,
    }
}

/// A non-empty text field.
pub(crate) fn opt_text<'a>(f: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    f.get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}
