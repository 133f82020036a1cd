//! The kind table: which resources the double serves, built from the real discovery documents
//! (and from CustomResourceDefinitions once they are established).

use serde_json::{Value, json};

use super::listtypes::ListTypes;

/// The discovery documents copied from kubernetes/kubernetes `api/discovery/` (see `api/README.md`).
pub const DISCOVERY_DOCS: &[(&str, &str)] = &[
    ("/api", include_str!("api/api.json")),
    ("/api/v1", include_str!("api/api__v1.json")),
    ("/apis", include_str!("api/apis.json")),
    ("/apis/apps", include_str!("api/apis__apps.json")),
    ("/apis/apps/v1", include_str!("api/apis__apps__v1.json")),
    ("/apis/batch", include_str!("api/apis__batch.json")),
    ("/apis/batch/v1", include_str!("api/apis__batch__v1.json")),
    ("/apis/policy", include_str!("api/apis__policy.json")),
    ("/apis/policy/v1", include_str!("api/apis__policy__v1.json")),
    (
        "/apis/autoscaling/v1",
        include_str!("api/apis__autoscaling__v1.json"),
    ),
    (
        "/apis/apiextensions.k8s.io/v1",
        include_str!("api/apis__apiextensions.k8s.io__v1.json"),
    ),
    (
        "/apis/coordination.k8s.io/v1",
        include_str!("api/apis__coordination.k8s.io__v1.json"),
    ),
    (
        "/apis/storage.k8s.io/v1",
        include_str!("api/apis__storage.k8s.io__v1.json"),
    ),
    (
        "/apis/rbac.authorization.k8s.io/v1",
        include_str!("api/apis__rbac.authorization.k8s.io__v1.json"),
    ),
];

/// One served resource (a row of the kind table).
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceType {
    /// API group, "" for core.
    pub group: String,
    /// Version, e.g. `v1`.
    pub version: String,
    /// Plural resource name, e.g. `pods`.
    pub plural: String,
    /// Singular name.
    pub singular: String,
    /// Kind, e.g. `Pod`.
    pub kind: String,
    /// Namespaced or cluster-scoped.
    pub namespaced: bool,
    /// Verbs from discovery.
    pub verbs: Vec<String>,
    /// Short names (`po`, `deploy`).
    pub short_names: Vec<String>,
    /// Subresources (`status`, `scale`, `eviction`, `log`).
    pub subresources: Vec<String>,
    /// Set for resources served from a CustomResourceDefinition.
    pub crd: Option<String>,
    /// Where a CRD keeps the numbers its `scale` subresource serves.
    pub scale_paths: Option<ScalePaths>,
    /// Printer columns of a CRD version (`additionalPrinterColumns`).
    pub columns: Vec<serde_json::Value>,
    /// The `openAPIV3Schema` of a CRD version (its list types drive server-side apply).
    pub schema: Option<std::sync::Arc<Value>>,
}

/// The JSON paths of a CRD's `scale` subresource.
#[derive(Debug, Clone, PartialEq)]
pub struct ScalePaths {
    /// `specReplicasPath`, e.g. `.spec.replicas`.
    pub spec: String,
    /// `statusReplicasPath`.
    pub status: String,
    /// `labelSelectorPath`, if any.
    pub selector: Option<String>,
}

impl ResourceType {
    /// How server-side apply treats this resource's lists.
    pub fn list_types(&self) -> ListTypes<'_> {
        match &self.schema {
            Some(schema) => ListTypes::custom(&self.kind, schema),
            None => ListTypes::builtin(&self.kind),
        }
    }

    /// `v1` or `apps/v1`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// Whether the resource has a subresource.
    pub fn has_sub(&self, sub: &str) -> bool {
        self.subresources.iter().any(|s| s == sub)
    }

    /// The discovery entry for this resource and its subresources.
    fn discovery_entries(&self) -> Vec<Value> {
        let mut out = vec![json!({
            "name": self.plural, "singularName": self.singular, "namespaced": self.namespaced,
            "kind": self.kind, "verbs": self.verbs, "shortNames": self.short_names,
        })];
        for sub in &self.subresources {
            let (kind, verbs, group, version) = match sub.as_str() {
                "scale" => (
                    "Scale",
                    json!(["get", "patch", "update"]),
                    "autoscaling",
                    "v1",
                ),
                _ => (
                    self.kind.as_str(),
                    json!(["get", "patch", "update"]),
                    "",
                    "",
                ),
            };
            let mut e = json!({"name": format!("{}/{}", self.plural, sub), "singularName": "", "namespaced": self.namespaced, "kind": kind, "verbs": verbs});
            if !group.is_empty() {
                e["group"] = json!(group);
                e["version"] = json!(version);
            }
            out.push(e);
        }
        out
    }
}

/// The table of served resources, plus the documents discovery answers with.
#[derive(Debug, Clone)]
pub struct KindTable {
    types: Vec<ResourceType>,
    docs: Vec<(String, Value)>,
}

impl Default for KindTable {
    fn default() -> Self {
        Self::builtin()
    }
}

impl KindTable {
    /// The built-in kinds, parsed from [`DISCOVERY_DOCS`].
    pub fn builtin() -> Self {
        let mut docs = Vec::new();
        let mut types: Vec<ResourceType> = Vec::new();
        for (path, text) in DISCOVERY_DOCS {
            let Ok(doc) = serde_json::from_str::<Value>(text) else {
                continue;
            };
            if doc["kind"] == "APIResourceList" {
                let gv = doc["groupVersion"].as_str().unwrap_or_default();
                let (group, version) = gv.rsplit_once('/').unwrap_or(("", gv));
                for r in doc["resources"].as_array().into_iter().flatten() {
                    let name = r["name"].as_str().unwrap_or_default();
                    if let Some((parent, sub)) = name.split_once('/') {
                        if let Some(t) = types
                            .iter_mut()
                            .find(|t| t.group == group && t.plural == parent)
                        {
                            t.subresources.push(sub.to_string());
                        }
                        continue;
                    }
                    types.push(ResourceType {
                        group: group.to_string(),
                        version: version.to_string(),
                        plural: name.to_string(),
                        singular: r["singularName"].as_str().unwrap_or_default().to_string(),
                        kind: r["kind"].as_str().unwrap_or_default().to_string(),
                        namespaced: r["namespaced"].as_bool().unwrap_or(false),
                        verbs: strings(&r["verbs"]),
                        short_names: strings(&r["shortNames"]),
                        subresources: Vec::new(),
                        crd: None,
                        scale_paths: None,
                        columns: Vec::new(),
                        schema: None,
                    });
                }
            }
            docs.push((path.to_string(), doc));
        }
        KindTable { types, docs }
    }

    /// All resource types.
    pub fn types(&self) -> &[ResourceType] {
        &self.types
    }

    /// Finds a resource by group, version and plural.
    pub fn find(&self, group: &str, version: &str, plural: &str) -> Option<&ResourceType> {
        self.types
            .iter()
            .find(|t| t.group == group && t.version == version && t.plural == plural)
    }

    /// Finds a resource by group and kind (any version).
    pub fn by_kind(&self, group: &str, kind: &str) -> Option<&ResourceType> {
        self.types
            .iter()
            .find(|t| t.group == group && t.kind == kind)
    }

    /// Adds (or replaces) the resource types served for a CRD.
    pub fn add_crd(&mut self, crd_name: &str, added: Vec<ResourceType>) {
        self.remove_crd(crd_name);
        self.types.extend(added);
    }

    /// Removes the resource types of a CRD.
    pub fn remove_crd(&mut self, crd_name: &str) {
        self.types.retain(|t| t.crd.as_deref() != Some(crd_name));
    }

    /// The document discovery serves at `path`, or `None` for a 404.
    pub fn discovery(&self, path: &str) -> Option<Value> {
        let path = path.trim_end_matches('/');
        match path {
            "/api" => self.doc("/api"),
            "/apis" => Some(self.group_list()),
            _ => {
                let rest = path
                    .strip_prefix("/apis/")
                    .or_else(|| path.strip_prefix("/api/").map(|_| ""))?;
                if path == "/api/v1" {
                    return Some(self.resource_list("", "v1"));
                }
                match rest.split_once('/') {
                    Some((g, v)) => self
                        .has_group_version(g, v)
                        .then(|| self.resource_list(g, v)),
                    None => self.group(rest),
                }
            }
        }
    }

    /// Aggregated discovery (`apidiscovery.k8s.io/v2` `APIGroupDiscoveryList`): the core group
    /// for `/api` (`core`), every other group for `/apis`.
    pub fn aggregated(&self, core: bool) -> Value {
        let mut groups: Vec<String> = Vec::new();
        for t in &self.types {
            if (t.group.is_empty() == core) && !groups.contains(&t.group) {
                groups.push(t.group.clone());
            }
        }
        let items: Vec<Value> = groups
            .iter()
            .map(|g| {
                let versions: Vec<Value> = self
                    .versions_of(g)
                    .iter()
                    .map(|v| {
                        let resources: Vec<Value> = self
                            .types
                            .iter()
                            .filter(|t| &t.group == g && &t.version == v)
                            .map(|t| {
                                let subs: Vec<Value> = t
                                    .subresources
                                    .iter()
                                    .map(|s| {
                                        let (group, version, kind, verbs) = match s.as_str() {
                                            "scale" => ("autoscaling", "v1", "Scale", json!(["get", "patch", "update"])),
                                            "eviction" => ("policy", "v1", "Eviction", json!(["create"])),
                                            "log" => ("", "v1", "Pod", json!(["get"])),
                                            "status" => (t.group.as_str(), t.version.as_str(), t.kind.as_str(), json!(["get", "patch", "update"])),
                                            _ => (t.group.as_str(), t.version.as_str(), t.kind.as_str(), json!(["create", "get"])),
                                        };
                                        json!({"subresource": s, "responseKind": {"group": group, "version": version, "kind": kind}, "verbs": verbs})
                                    })
                                    .collect();
                                json!({
                                    "resource": t.plural, "responseKind": {"group": t.group, "version": t.version, "kind": t.kind},
                                    "scope": if t.namespaced { "Namespaced" } else { "Cluster" }, "singularResource": t.singular,
                                    "verbs": t.verbs, "shortNames": t.short_names, "subresources": subs,
                                })
                            })
                            .collect();
                        json!({"version": v, "resources": resources, "freshness": "Current"})
                    })
                    .collect();
                json!({"metadata": {"name": g}, "versions": versions})
            })
            .collect();
        json!({"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {}, "items": items})
    }

    fn doc(&self, path: &str) -> Option<Value> {
        self.docs
            .iter()
            .find(|(p, _)| p == path)
            .map(|(_, d)| d.clone())
    }

    fn has_group_version(&self, g: &str, v: &str) -> bool {
        self.types.iter().any(|t| t.group == g && t.version == v)
    }

    fn versions_of(&self, g: &str) -> Vec<String> {
        let mut vs: Vec<String> = Vec::new();
        for t in self.types.iter().filter(|t| t.group == g) {
            if !vs.contains(&t.version) {
                vs.push(t.version.clone());
            }
        }
        vs
    }

    fn group(&self, g: &str) -> Option<Value> {
        let vs = self.versions_of(g);
        let first = vs.first()?;
        if let Some(doc) = self.doc(&format!("/apis/{g}")) {
            return Some(doc);
        }
        Some(json!({
            "kind": "APIGroup", "apiVersion": "v1", "name": g,
            "versions": vs.iter().map(|v| json!({"groupVersion": format!("{g}/{v}"), "version": v})).collect::<Vec<_>>(),
            "preferredVersion": {"groupVersion": format!("{g}/{first}"), "version": first},
        }))
    }

    /// `/apis`: the groups of the real document that have resources here, then CRD groups.
    fn group_list(&self) -> Value {
        let mut names: Vec<String> = Vec::new();
        if let Some(doc) = self.doc("/apis") {
            for g in doc["groups"].as_array().into_iter().flatten() {
                if let Some(n) = g["name"].as_str() {
                    names.push(n.to_string());
                }
            }
        }
        for t in &self.types {
            if !t.group.is_empty() && !names.contains(&t.group) {
                names.push(t.group.clone());
            }
        }
        let groups: Vec<Value> = names.iter().filter_map(|n| self.group(n)).collect();
        json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
    }

    fn resource_list(&self, g: &str, v: &str) -> Value {
        let gv = if g.is_empty() {
            v.to_string()
        } else {
            format!("{g}/{v}")
        };
        let path = if g.is_empty() {
            format!("/api/{v}")
        } else {
            format!("/apis/{g}/{v}")
        };
        // Built-in lists are served as the real documents; CRD groups are generated.
        let mut resources: Vec<Value> = match self.doc(&path) {
            Some(doc) => doc["resources"].as_array().cloned().unwrap_or_default(),
            None => Vec::new(),
        };
        for t in self
            .types
            .iter()
            .filter(|t| t.group == g && t.version == v && t.crd.is_some())
        {
            resources.extend(t.discovery_entries());
        }
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources})
    }
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_string))
        .collect()
}
