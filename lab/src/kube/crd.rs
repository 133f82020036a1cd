//! CustomResourceDefinitions: accepted and established at once, served from then on.

use serde_json::{Value, json};

use super::kinds::{ResourceType, ScalePaths};
use super::store::{gr, now_rfc3339};
use super::world::World;

impl World {
    /// A CRD was created or changed: serve its versions and mark it established.
    pub fn crd_written(&mut self, crd: &Value) {
        let name = crd["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let spec = &crd["spec"];
        let group = spec["group"].as_str().unwrap_or_default().to_string();
        let names = &spec["names"];
        let plural = names["plural"].as_str().unwrap_or_default().to_string();
        let kind = names["kind"].as_str().unwrap_or_default().to_string();
        let namespaced = spec["scope"].as_str() != Some("Cluster");
        let mut types = Vec::new();
        for v in spec["versions"].as_array().into_iter().flatten() {
            if v["served"] == false {
                continue;
            }
            let mut subresources = Vec::new();
            let mut scale_paths = None;
            if v["subresources"]["status"].is_object() {
                subresources.push("status".to_string());
            }
            if let Some(s) = v["subresources"]["scale"].as_object() {
                subresources.push("scale".to_string());
                scale_paths = Some(ScalePaths {
                    spec: s
                        .get("specReplicasPath")
                        .and_then(Value::as_str)
                        .unwrap_or(".spec.replicas")
                        .to_string(),
                    status: s
                        .get("statusReplicasPath")
                        .and_then(Value::as_str)
                        .unwrap_or(".status.replicas")
                        .to_string(),
                    selector: s
                        .get("labelSelectorPath")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                });
            }
            types.push(ResourceType {
                group: group.clone(),
                version: v["name"].as_str().unwrap_or_default().to_string(),
                plural: plural.clone(),
                singular: names["singular"]
                    .as_str()
                    .unwrap_or(&kind.to_lowercase())
                    .to_string(),
                kind: kind.clone(),
                namespaced,
                verbs: [
                    "delete",
                    "deletecollection",
                    "get",
                    "list",
                    "patch",
                    "create",
                    "update",
                    "watch",
                ]
                .map(String::from)
                .to_vec(),
                short_names: names["shortNames"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|s| s.as_str().map(String::from))
                    .collect(),
                subresources,
                crd: Some(name.clone()),
                scale_paths,
                columns: v["additionalPrinterColumns"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default(),
                schema: v["schema"]["openAPIV3Schema"]
                    .is_object()
                    .then(|| std::sync::Arc::new(v["schema"]["openAPIV3Schema"].clone())),
            });
        }
        // The storage version is served first, so lookups by group and plural find it.
        types.sort_by_key(|t| {
            let storage = spec["versions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|v| v["name"] == t.version.as_str() && v["storage"] == true);
            !storage
        });
        self.kinds.add_crd(&name, types);
        if crd["status"]["conditions"]
            .as_array()
            .is_some_and(|c| c.iter().any(|c| c["type"] == "Established"))
        {
            return;
        }
        let mut established = crd.clone();
        let now = now_rfc3339();
        established["status"] = json!({
            "acceptedNames": names,
            "storedVersions": spec["versions"].as_array().into_iter().flatten().filter(|v| v["storage"] == true).map(|v| v["name"].clone()).collect::<Vec<_>>(),
            "conditions": [
                {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "message": "no conflicts found", "lastTransitionTime": now},
                {"type": "Established", "status": "True", "reason": "InitialNamesAccepted", "message": "the initial names have been accepted", "lastTransitionTime": now},
            ],
        });
        if let Some(rt) = self.rt("apiextensions.k8s.io", "customresourcedefinitions") {
            self.store.put(&gr(&rt), established);
        }
    }

    /// A CRD was deleted: its objects go with it.
    pub fn crd_removed(&mut self, crd: &Value) {
        let name = crd["metadata"]["name"].as_str().unwrap_or_default();
        let group = crd["spec"]["group"].as_str().unwrap_or_default();
        let plural = crd["spec"]["names"]["plural"].as_str().unwrap_or_default();
        self.store.remove_all(&World::gr(group, plural));
        self.kinds.remove_crd(name);
    }
}
