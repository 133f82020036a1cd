//! PodDisruptionBudget status from the Ready pods its selector matches.

use serde_json::{Value, json};

use super::super::pod::{is_active, is_ready};
use super::super::selectors::LabelSelector;
use super::super::world::World;

/// Reconciles the queued budgets.
pub(super) fn run(w: &mut World, keys: Vec<super::dirty::Key>) {
    for key in keys {
        let Some(pdb) = super::get_key(w, "policy", "poddisruptionbudgets", &key) else {
            continue;
        };
        let ns = pdb["metadata"]["namespace"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let sel = LabelSelector::from_object(&pdb["spec"]["selector"]);
        let pods: Vec<&Value> = w
            .store
            .list(&World::gr("", "pods"), Some(&ns))
            .into_iter()
            .filter(|p| !sel.is_empty() && sel.matches(p) && is_active(p))
            .collect();
        let expected = pods.len() as i64;
        let disrupted = pdb["status"]["disruptedPods"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        let healthy = pods
            .iter()
            .filter(|p| {
                is_ready(p)
                    && !disrupted.contains_key(p["metadata"]["name"].as_str().unwrap_or_default())
            })
            .count() as i64;
        let desired = if !pdb["spec"]["minAvailable"].is_null() {
            super::int_or_percent(&pdb["spec"]["minAvailable"], expected, true, 0)
        } else if !pdb["spec"]["maxUnavailable"].is_null() {
            (expected - super::int_or_percent(&pdb["spec"]["maxUnavailable"], expected, true, 0))
                .max(0)
        } else {
            expected
        };
        let allowed = (healthy - desired).max(0);
        // Pods evicted but not yet gone stay in disruptedPods.
        let still: serde_json::Map<String, Value> = disrupted
            .into_iter()
            .filter(|(name, _)| pods.iter().any(|p| p["metadata"]["name"] == name.as_str()))
            .collect();
        let mut out = pdb.clone();
        out["status"]["observedGeneration"] = pdb["metadata"]["generation"].clone();
        out["status"]["expectedPods"] = json!(expected);
        out["status"]["currentHealthy"] = json!(healthy);
        out["status"]["desiredHealthy"] = json!(desired);
        out["status"]["disruptionsAllowed"] = json!(allowed);
        if still.is_empty() {
            if let Some(m) = out["status"].as_object_mut() {
                m.remove("disruptedPods");
            }
        } else {
            out["status"]["disruptedPods"] = Value::Object(still);
        }
        if allowed > 0 {
            super::set_condition(&mut out, "DisruptionAllowed", "True", "SufficientPods", "");
        } else {
            super::set_condition(
                &mut out,
                "DisruptionAllowed",
                "False",
                "InsufficientPods",
                "",
            );
        }
        super::put_status(w, "policy", "poddisruptionbudgets", out);
    }
}
