//! Defaulting and validation of the kinds the lab's controllers act on.

use serde_json::{Value, json};

use super::kinds::ResourceType;
use super::selectors::LabelSelector;
use super::status::ApiError;

fn default(obj: &mut Value, path: &[&str], v: Value) {
    let mut cur = obj;
    for p in &path[..path.len() - 1] {
        if !cur[*p].is_object() {
            cur[*p] = json!({});
        }
        cur = &mut cur[*p];
    }
    let last = path[path.len() - 1];
    if cur[last].is_null() {
        cur[last] = v;
    }
}

fn default_pod_spec(spec: &mut Value) {
    if !spec.is_object() {
        return;
    }
    default(spec, &["restartPolicy"], json!("Always"));
    default(spec, &["terminationGracePeriodSeconds"], json!(30));
    default(spec, &["dnsPolicy"], json!("ClusterFirst"));
    default(spec, &["schedulerName"], json!("default-scheduler"));
    if let Some(cs) = spec["containers"].as_array_mut() {
        for c in cs {
            if c.is_object() {
                default(c, &["imagePullPolicy"], json!("IfNotPresent"));
                default(
                    c,
                    &["terminationMessagePath"],
                    json!("/dev/termination-log"),
                );
            }
        }
    }
}

/// Fills in the defaults kube-apiserver would.
pub fn apply_defaults(rt: &ResourceType, obj: &mut Value) {
    match (rt.group.as_str(), rt.kind.as_str()) {
        ("", "Pod") => {
            default_pod_spec(&mut obj["spec"]);
            default(obj, &["status", "phase"], json!("Pending"));
            default(obj, &["status", "qosClass"], json!("BestEffort"));
        }
        ("", "Namespace") => {
            default(obj, &["spec", "finalizers"], json!(["kubernetes"]));
            default(obj, &["status", "phase"], json!("Active"));
        }
        ("apps", "Deployment") => {
            default(obj, &["spec", "replicas"], json!(1));
            default(obj, &["spec", "revisionHistoryLimit"], json!(10));
            default(obj, &["spec", "progressDeadlineSeconds"], json!(600));
            default(
                obj,
                &["spec", "strategy"],
                json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}),
            );
            default_pod_spec(&mut obj["spec"]["template"]["spec"]);
        }
        ("apps", "StatefulSet") => {
            default(obj, &["spec", "replicas"], json!(1));
            default(obj, &["spec", "podManagementPolicy"], json!("OrderedReady"));
            default(
                obj,
                &["spec", "updateStrategy"],
                json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}),
            );
            default(obj, &["spec", "revisionHistoryLimit"], json!(10));
            default_pod_spec(&mut obj["spec"]["template"]["spec"]);
        }
        ("apps", "ReplicaSet") | ("", "ReplicationController") => {
            default(obj, &["spec", "replicas"], json!(1));
            if rt.kind == "ReplicationController" && obj["spec"]["selector"].is_null() {
                obj["spec"]["selector"] = obj["spec"]["template"]["metadata"]["labels"].clone();
            }
            default_pod_spec(&mut obj["spec"]["template"]["spec"]);
        }
        ("apps", "DaemonSet") => {
            default(
                obj,
                &["spec", "updateStrategy"],
                json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}),
            );
            default_pod_spec(&mut obj["spec"]["template"]["spec"]);
        }
        ("batch", "Job") => {
            default(obj, &["spec", "completions"], json!(1));
            default(obj, &["spec", "parallelism"], json!(1));
            default(obj, &["spec", "backoffLimit"], json!(6));
            if obj["spec"]["template"]["spec"].is_object() {
                default(
                    obj,
                    &["spec", "template", "spec", "restartPolicy"],
                    json!("Never"),
                );
            }
            default_pod_spec(&mut obj["spec"]["template"]["spec"]);
        }
        _ => {}
    }
}

/// Validates what the controllers rely on, with kube-apiserver's messages.
pub fn validate(rt: &ResourceType, obj: &Value) -> Result<(), ApiError> {
    let name = obj["metadata"]["name"].as_str().unwrap_or_default();
    let invalid =
        |causes: &[(&str, &str, &str)]| Err(ApiError::invalid(&rt.group, &rt.kind, name, causes));
    let bad_name = name.is_empty()
        || name.len() > 253
        || !name.chars().all(|c| {
            c.is_ascii_lowercase()
                || c.is_ascii_digit()
                || c == '-'
                || c == '.'
                || c == ':' && rt.kind.ends_with("Role")
                || c == ':' && rt.kind.ends_with("Binding")
        })
        || name.starts_with('-')
        || name.ends_with('-');
    if bad_name && rt.crd.is_none() {
        return invalid(&[(
            "FieldValueInvalid",
            "metadata.name",
            &format!(
                "Invalid value: \"{name}\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
            ),
        )]);
    }
    let pod_spec = match rt.kind.as_str() {
        "Pod" => Some(("spec", &obj["spec"])),
        "Deployment"
        | "StatefulSet"
        | "DaemonSet"
        | "ReplicaSet"
        | "ReplicationController"
        | "Job" => Some(("spec.template.spec", &obj["spec"]["template"]["spec"])),
        _ => None,
    };
    if let Some((prefix, spec)) = pod_spec {
        let containers = spec["containers"].as_array();
        if containers.is_none_or(Vec::is_empty) {
            return invalid(&[(
                "FieldValueRequired",
                &format!("{prefix}.containers"),
                "Required value",
            )]);
        }
        for (i, c) in containers.into_iter().flatten().enumerate() {
            if c["name"].as_str().is_none_or(str::is_empty) {
                return invalid(&[(
                    "FieldValueRequired",
                    &format!("{prefix}.containers[{i}].name"),
                    "Required value",
                )]);
            }
            if c["image"].as_str().is_none_or(str::is_empty) {
                return invalid(&[(
                    "FieldValueRequired",
                    &format!("{prefix}.containers[{i}].image"),
                    "Required value",
                )]);
            }
        }
    }
    if matches!(
        rt.kind.as_str(),
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet"
    ) {
        let sel = &obj["spec"]["selector"];
        if !sel.is_object() {
            return invalid(&[("FieldValueRequired", "spec.selector", "Required value")]);
        }
        let labels = &obj["spec"]["template"]["metadata"]["labels"];
        if !LabelSelector::from_object(sel).matches_labels(labels) {
            let shown = labels
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| format!("{k}:{}", v.as_str().unwrap_or_default()))
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .unwrap_or_default();
            return invalid(&[(
                "FieldValueInvalid",
                "spec.template.metadata.labels",
                &format!(
                    "Invalid value: map[string]string{{{shown}}}: `selector` does not match template `labels`"
                ),
            )]);
        }
    }
    for (field, v) in [("spec.replicas", &obj["spec"]["replicas"])] {
        if matches!(
            rt.kind.as_str(),
            "Deployment" | "StatefulSet" | "ReplicaSet" | "ReplicationController"
        ) && v.as_i64().is_some_and(|n| n < 0)
        {
            return invalid(&[(
                "FieldValueInvalid",
                field,
                &format!("Invalid value: {v}: must be greater than or equal to 0"),
            )]);
        }
    }
    Ok(())
}

/// Validates an update against the object it replaces, as kube-apiserver does for the
/// fields the lab's users trip on: a StatefulSet's spec changes only in a few fields.
pub fn validate_update(rt: &ResourceType, old: &Value, new: &Value) -> Result<(), ApiError> {
    if rt.kind != "StatefulSet" || rt.group != "apps" {
        return Ok(());
    }
    let fixed = |spec: &Value| {
        let mut spec = spec.clone();
        if let Some(m) = spec.as_object_mut() {
            for f in [
                "replicas",
                "ordinals",
                "template",
                "updateStrategy",
                "persistentVolumeClaimRetentionPolicy",
                "minReadySeconds",
            ] {
                m.remove(f);
            }
        }
        spec
    };
    if fixed(&old["spec"]) == fixed(&new["spec"]) {
        return Ok(());
    }
    let name = new["metadata"]["name"].as_str().unwrap_or_default();
    Err(ApiError::invalid(
        &rt.group,
        &rt.kind,
        name,
        &[(
            "FieldValueForbidden",
            "spec",
            "Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
        )],
    ))
}
