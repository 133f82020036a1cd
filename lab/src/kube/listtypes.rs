//! How server-side apply (and managedFields) treat each list of an object: `atomic` (replaced
//! whole), `set` (of scalars) or `map` (elements identified by their key fields). For built-in
//! kinds this is the `x-kubernetes-list-type` / `x-kubernetes-list-map-keys` of the Kubernetes
//! OpenAPI (`api/openapi-spec/v3` of kubernetes/kubernetes, e.g. `Container.ports` keyed by
//! `containerPort` and `protocol`); for custom resources, what the CRD's schema declares. A list
//! that declares nothing is atomic, as structured-merge-diff treats it.

use serde_json::{Map, Value, json};

/// A key field of a map list.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyField {
    /// The field's name.
    pub name: String,
    /// Its schema default, used when an element leaves it out (`protocol: TCP`).
    pub default: Option<Value>,
}

impl KeyField {
    fn new(name: &str) -> Self {
        KeyField {
            name: name.to_string(),
            default: None,
        }
    }

    fn with_default(name: &str, default: &str) -> Self {
        KeyField {
            name: name.to_string(),
            default: Some(json!(default)),
        }
    }
}

/// How a list is merged and owned.
#[derive(Debug, Clone, PartialEq)]
pub enum ListType {
    /// Replaced as a whole, owned as one field.
    Atomic,
    /// A set of scalars, each owned on its own (`v:` in FieldsV1).
    Set,
    /// Elements identified by these key fields (`k:` in FieldsV1).
    Map(Vec<KeyField>),
}

/// Why an element cannot be identified.
#[derive(Debug, Clone, PartialEq)]
pub struct MissingKey {
    /// The key field it leaves out.
    pub field: String,
}

impl ListType {
    /// The key of an element of a map list, as FieldsV1 writes it (`{"containerPort":80,
    /// "protocol":"TCP"}`: fields sorted by name), defaults filled in.
    pub fn element_key(&self, elem: &Value) -> Result<Map<String, Value>, MissingKey> {
        let ListType::Map(keys) = self else {
            return Ok(Map::new());
        };
        let mut fields: Vec<&KeyField> = keys.iter().collect();
        fields.sort_by(|a, b| a.name.cmp(&b.name));
        let mut out = Map::new();
        for k in fields {
            match elem
                .get(&k.name)
                .filter(|v| !v.is_null())
                .or(k.default.as_ref())
            {
                Some(v) => {
                    out.insert(k.name.clone(), v.clone());
                }
                None => {
                    return Err(MissingKey {
                        field: k.name.clone(),
                    });
                }
            }
        }
        Ok(out)
    }

    /// Whether an element has the given key (defaults filled in).
    pub fn has_key(&self, elem: &Value, key: &Map<String, Value>) -> bool {
        self.element_key(elem).is_ok_and(|k| k == *key)
    }
}

/// The list types of one resource's objects.
#[derive(Debug, Clone, Copy)]
pub struct ListTypes<'a> {
    kind: &'a str,
    /// The served version's `openAPIV3Schema`, for custom resources.
    crd_schema: Option<&'a Value>,
}

fn map_by(keys: &[&str]) -> ListType {
    ListType::Map(keys.iter().map(|k| KeyField::new(k)).collect())
}

/// Where the pod spec sits in objects of a kind.
fn pod_spec_prefix(kind: &str) -> Option<&'static [&'static str]> {
    Some(match kind {
        "Pod" => &["spec"],
        "Deployment"
        | "ReplicaSet"
        | "StatefulSet"
        | "DaemonSet"
        | "Job"
        | "ReplicationController"
        | "PodTemplate" => &["spec", "template", "spec"],
        "CronJob" => &["spec", "jobTemplate", "spec", "template", "spec"],
        _ => return None,
    })
}

/// Lists of `PodSpec` (path relative to it; list elements are not path steps).
fn pod_spec_list(rest: &[&str]) -> ListType {
    const CONTAINERS: [&str; 3] = ["containers", "initContainers", "ephemeralContainers"];
    match rest {
        [c] if CONTAINERS.contains(c) => map_by(&["name"]),
        [c, "ports"] if CONTAINERS.contains(c) => ListType::Map(vec![
            KeyField::new("containerPort"),
            KeyField::with_default("protocol", "TCP"),
        ]),
        [c, "env"] if CONTAINERS.contains(c) => map_by(&["name"]),
        [c, "volumeMounts"] if CONTAINERS.contains(c) => map_by(&["mountPath"]),
        [c, "volumeDevices"] if CONTAINERS.contains(c) => map_by(&["devicePath"]),
        ["volumes" | "imagePullSecrets" | "schedulingGates" | "resourceClaims"] => {
            map_by(&["name"])
        }
        ["hostAliases"] => map_by(&["ip"]),
        ["topologySpreadConstraints"] => map_by(&["topologyKey", "whenUnsatisfiable"]),
        // `tolerations`, `readinessGates`, `args`, `command`, `envFrom`, `resizePolicy`, ...
        _ => ListType::Atomic,
    }
}

/// Lists of built-in kinds outside the pod spec.
fn builtin_list(kind: &str, path: &[&str]) -> ListType {
    match (kind, path) {
        ("Service", ["spec", "ports"]) => ListType::Map(vec![
            KeyField::new("port"),
            KeyField::with_default("protocol", "TCP"),
        ]),
        ("Node", ["spec", "podCIDRs"]) => ListType::Set,
        ("Node", ["status", "addresses"]) => map_by(&["type"]),
        ("Pod", ["status", "podIPs" | "hostIPs"]) => map_by(&["ip"]),
        (
            "Pod"
            | "Node"
            | "Namespace"
            | "Deployment"
            | "ReplicaSet"
            | "StatefulSet"
            | "DaemonSet"
            | "ReplicationController"
            | "PodDisruptionBudget"
            | "CustomResourceDefinition",
            ["status", "conditions"],
        ) => map_by(&["type"]),
        // Job conditions, node taints, container statuses, ... are atomic.
        _ => ListType::Atomic,
    }
}

/// Lists of `ObjectMeta` (the object's, or a template's).
fn meta_list(field: &str) -> Option<ListType> {
    Some(match field {
        "finalizers" => ListType::Set,
        "ownerReferences" => map_by(&["uid"]),
        "managedFields" => ListType::Atomic,
        _ => return None,
    })
}

/// A CRD schema's declaration for the list at `path` (from its root).
fn schema_list(schema: &Value, path: &[&str]) -> ListType {
    let mut cur = schema;
    for field in path {
        // Arrays on the way are stepped through to their items.
        while cur["type"] == "array" {
            cur = &cur["items"];
        }
        let next = &cur["properties"][*field];
        cur = if next.is_null() {
            &cur["additionalProperties"]
        } else {
            next
        };
        if cur.is_null() {
            return ListType::Atomic;
        }
    }
    match cur["x-kubernetes-list-type"].as_str() {
        Some("set") => ListType::Set,
        Some("map") => ListType::Map(
            cur["x-kubernetes-list-map-keys"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(|k| KeyField {
                    name: k.to_string(),
                    default: cur["items"]["properties"][k].get("default").cloned(),
                })
                .collect(),
        ),
        _ => ListType::Atomic,
    }
}

impl<'a> ListTypes<'a> {
    /// The list types of a built-in kind.
    pub const fn builtin(kind: &'a str) -> Self {
        ListTypes {
            kind,
            crd_schema: None,
        }
    }

    /// The list types a custom resource's schema declares.
    pub fn custom(kind: &'a str, schema: &'a Value) -> Self {
        ListTypes {
            kind,
            crd_schema: Some(schema),
        }
    }

    /// The type of the list at `path`: field names from the object's root, list elements
    /// stepped over (`["spec", "template", "spec", "containers", "ports"]`).
    pub fn of(&self, path: &[&str]) -> ListType {
        if let [.., "metadata", field] = path
            && let Some(t) = meta_list(field)
        {
            return t;
        }
        if let Some(schema) = self.crd_schema {
            return schema_list(schema, path);
        }
        if let Some(prefix) = pod_spec_prefix(self.kind)
            && let Some(rest) = path.strip_prefix(prefix)
            && !rest.is_empty()
        {
            return pod_spec_list(rest);
        }
        builtin_list(self.kind, path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_ports_are_keyed_by_port_and_protocol() {
        let lt = ListTypes::builtin("Deployment");
        let ports = lt.of(&["spec", "template", "spec", "containers", "ports"]);
        assert_eq!(
            ports.element_key(&json!({"containerPort": 80})).ok(),
            json!({"containerPort": 80, "protocol": "TCP"})
                .as_object()
                .cloned()
        );
        assert_eq!(
            lt.of(&["spec", "template", "spec", "tolerations"]),
            ListType::Atomic
        );
        assert_eq!(lt.of(&["metadata", "finalizers"]), ListType::Set);
    }

    #[test]
    fn crd_schemas_declare_their_lists() {
        let schema = json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
            "members": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["host"],
                "items": {"type": "object", "properties": {"host": {"type": "string"}, "disks": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}}}}},
            "tags": {"type": "array", "items": {"type": "string"}},
        }}}});
        let lt = ListTypes::custom("RokCluster", &schema);
        assert_eq!(lt.of(&["spec", "members"]), map_by(&["host"]));
        assert_eq!(lt.of(&["spec", "members", "disks"]), ListType::Set);
        assert_eq!(lt.of(&["spec", "tags"]), ListType::Atomic);
    }
}
