//! The drain's pre-flight: every pod on the node classified before anything changes, so a
//! drain that would lose data or hang refuses at once, naming each pod, why, and the field
//! that would allow it.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

/// What the step allows.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Allow {
    /// Evict pods no controller re-creates.
    pub(crate) unmanaged: bool,
    /// Evict pods with emptyDir volumes.
    pub(crate) emptydir_loss: bool,
    /// Wait (until the timeout) for budgets that allow no disruption now.
    pub(crate) blocked_budgets: bool,
}

/// A pod to evict.
#[derive(Debug, Clone)]
pub(crate) struct Evictee {
    /// Namespace.
    pub(crate) namespace: String,
    /// Name.
    pub(crate) name: String,
    /// The PodDisruptionBudget covering it, `ns/name`.
    pub(crate) budget: Option<String>,
}

impl Evictee {
    /// `ns/name`.
    pub(crate) fn id(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

/// A pod that stops the drain.
#[derive(Debug, Clone)]
pub(crate) struct Refusal {
    /// `ns/name`.
    pub(crate) pod: String,
    /// Why, and what would allow it.
    pub(crate) reasons: Vec<String>,
}

/// The classification of a node's pods.
#[derive(Debug, Default)]
pub(crate) struct Preflight {
    /// Pods to evict.
    pub(crate) evict: Vec<Evictee>,
    /// Pods left alone, with why.
    pub(crate) skip: Vec<(String, &'static str)>,
    /// Pods that stop the drain.
    pub(crate) refuse: Vec<Refusal>,
}

/// Classifies `pods` against `budgets` (every budget of the cluster).
pub(crate) fn classify(pods: &[Pod], budgets: &[PodDisruptionBudget], allow: Allow) -> Preflight {
    let mut out = Preflight::default();
    for pod in pods {
        let meta = &pod.metadata;
        let namespace = meta.namespace.clone().unwrap_or_default();
        let name = meta.name.clone().unwrap_or_default();
        let id = format!("{namespace}/{name}");
        if meta.deletion_timestamp.is_some() {
            out.skip.push((id, "already terminating"));
            continue;
        }
        let annotations = meta.annotations.clone().unwrap_or_default();
        if annotations.contains_key("kubernetes.io/config.mirror") {
            out.skip.push((
                id,
                "mirror pod (the kubelet runs it from a static manifest)",
            ));
            continue;
        }
        let controller = meta
            .owner_references
            .iter()
            .flatten()
            .find(|o| o.controller == Some(true));
        if controller.is_some_and(|c| c.kind == "DaemonSet") {
            out.skip.push((id, "DaemonSet pod (stays on the node)"));
            continue;
        }
        let phase = pod
            .status
            .as_ref()
            .and_then(|s| s.phase.clone())
            .unwrap_or_default();
        let finished = phase == "Succeeded" || phase == "Failed";
        let mut reasons = Vec::new();
        if controller.is_none() && !finished && !allow.unmanaged {
            reasons.push(
                "unmanaged: no controller (ReplicationController, ReplicaSet, Job, StatefulSet) re-creates it, so it would be deleted and not rescheduled (set allow_unmanaged = true to allow)"
                    .to_string(),
            );
        }
        let empty_dirs: Vec<String> = pod
            .spec
            .iter()
            .flat_map(|s| s.volumes.iter().flatten())
            .filter(|v| v.empty_dir.is_some())
            .map(|v| v.name.clone())
            .collect();
        if !empty_dirs.is_empty() && !finished && !allow.emptydir_loss {
            reasons.push(format!(
                "emptyDir volume {}: its data would be erased (set allow_emptydir_loss = true to allow)",
                empty_dirs.join(", ")
            ));
        }
        let covering: Vec<&PodDisruptionBudget> = budgets
            .iter()
            .filter(|b| b.metadata.namespace.as_deref() == Some(namespace.as_str()))
            .filter(|b| {
                b.spec
                    .as_ref()
                    .and_then(|s| s.selector.as_ref())
                    .is_some_and(|sel| selects(sel, meta.labels.as_ref()))
            })
            .collect();
        let budget_names: Vec<String> = covering
            .iter()
            .map(|b| {
                format!(
                    "{namespace}/{}",
                    b.metadata.name.clone().unwrap_or_default()
                )
            })
            .collect();
        if covering.len() > 1 && !finished {
            reasons.push(format!(
                "covered by several PodDisruptionBudgets ({}), which the eviction API refuses to evict",
                budget_names.join(", ")
            ));
        } else if let Some(b) = covering.first()
            && !finished
            && ready(pod)
            && !allow.blocked_budgets
        {
            let status = b.status.as_ref();
            let allowed = status.map_or(0, |s| s.disruptions_allowed.unwrap_or(0));
            if allowed <= 0 {
                reasons.push(format!(
                    "PodDisruptionBudget {} allows no disruption now ({} healthy, {} needed) (set wait_for_budgets = true to wait for it until the step's timeout)",
                    budget_names[0],
                    status.map_or(0, |s| s.current_healthy.unwrap_or(0)),
                    status.map_or(0, |s| s.desired_healthy.unwrap_or(0)),
                ));
            }
        }
        if reasons.is_empty() {
            out.evict.push(Evictee {
                namespace,
                name,
                budget: budget_names.first().cloned(),
            });
        } else {
            out.refuse.push(Refusal { pod: id, reasons });
        }
    }
    out
}

fn ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Whether a label selector selects `labels` (an empty selector selects everything).
pub(crate) fn selects(sel: &LabelSelector, labels: Option<&BTreeMap<String, String>>) -> bool {
    let empty = BTreeMap::new();
    let labels = labels.unwrap_or(&empty);
    let by_label = sel
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    let by_expr = sel.match_expressions.iter().flatten().all(|e| {
        let values = e.values.clone().unwrap_or_default();
        let have = labels.get(&e.key);
        match e.operator.as_str() {
            "In" => have.is_some_and(|v| values.contains(v)),
            "NotIn" => have.is_none_or(|v| !values.contains(v)),
            "Exists" => have.is_some(),
            "DoesNotExist" => have.is_none(),
            _ => false,
        }
    });
    by_label && by_expr
}
