//! Kubernetes step types. Named `k8s` so that paths never clash with the `kube` crate.

use rok_plan_engine::step::{FieldKind, FieldSpec};
use serde_json::{Map, Value};

mod kinds;

pub use kinds::{
    KubeApply, KubeCordon, KubeDelete, KubeDrain, KubeGet, KubeLogsQuiet, KubePatch, KubeRestart,
    KubeScale, KubeUncordon, KubeWait, Kubectl,
};

/// Run-wide Kubernetes settings (command-line flags, not the plan's).
#[derive(Clone, Debug, Default)]
pub struct KubeOptions {
    /// The kubeconfig file (default: `$KUBECONFIG`, else `~/.kube/config`).
    pub kubeconfig: Option<std::path::PathBuf>,
    /// Send every write with `dryRun=All` (`rok-plan plan --server-dry-run`).
    pub server_dry_run: bool,
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
