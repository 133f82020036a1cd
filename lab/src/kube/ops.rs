//! The API verbs' semantics on the world: create, update (main and status), delete.

use std::sync::Arc;

use serde_json::{Value, json};

use super::defaults;
use super::fields;
use super::kinds::ResourceType;
use super::status::{ApiError, Subject, success};
use super::store::{ObjRef, gr, now_rfc3339};
use super::world::World;

/// Options every write takes.
#[derive(Debug, Clone, Default)]
pub struct WriteOpts {
    /// `dryRun=All`: validate and answer, store nothing.
    pub dry_run: bool,
    /// `fieldManager`, or the one derived from the User-Agent.
    pub manager: String,
    /// The subresource written through (`scale`), recorded in managedFields.
    pub subresource: String,
}

/// Which part of an object an update writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// Everything but the status (when the resource has a status subresource).
    Main,
    /// Only the status.
    Status,
    /// Already merged by server-side apply: store as is.
    Applied,
}

/// Options of a DELETE.
#[derive(Debug, Clone, Default)]
pub struct DeleteOpts {
    /// `Background`, `Foreground` or `Orphan`.
    pub propagation: Option<String>,
    /// `gracePeriodSeconds`.
    pub grace: Option<i64>,
    /// `preconditions.uid`.
    pub uid: Option<String>,
    /// `preconditions.resourceVersion`.
    pub rv: Option<String>,
    /// `dryRun=All`.
    pub dry_run: bool,
}

fn subject<'a>(rt: &'a ResourceType, name: &'a str) -> Subject<'a> {
    Subject {
        group: &rt.group,
        resource: &rt.plural,
        name,
    }
}

/// Whether the spec (everything but metadata, status, apiVersion and kind) differs.
fn spec_differs(a: &Value, b: &Value) -> bool {
    const NOT_SPEC: [&str; 4] = ["metadata", "status", "apiVersion", "kind"];
    let (Some(a), Some(b)) = (a.as_object(), b.as_object()) else {
        return a != b;
    };
    let fields = |m: &'_ serde_json::Map<String, Value>| {
        m.iter()
            .filter(|(k, _)| !NOT_SPEC.contains(&k.as_str()))
            .count()
    };
    fields(a) != fields(b)
        || a.iter()
            .filter(|(k, _)| !NOT_SPEC.contains(&k.as_str()))
            .any(|(k, v)| b.get(k) != Some(v))
}

impl World {
    /// Checks the namespace of a namespaced write: it must exist and not be terminating.
    pub fn check_namespace(
        &self,
        rt: &ResourceType,
        ns: &str,
        name: &str,
        creating: bool,
    ) -> Result<(), ApiError> {
        if !rt.namespaced {
            return Ok(());
        }
        let Some(nso) = self.get("", "namespaces", "", ns) else {
            return Err(ApiError::not_found(Subject {
                group: "",
                resource: "namespaces",
                name: ns,
            }));
        };
        if creating && nso["metadata"]["deletionTimestamp"].is_string() {
            return Err(ApiError::new(
                403,
                "Forbidden",
                format!("{} \"{name}\" is forbidden: unable to create new content in namespace {ns} because it is being terminated", subject(rt, name).qualified()),
            )
            .with_details(json!({"name": name, "group": rt.group, "kind": rt.plural, "causes": [{"reason": "NamespaceTerminating", "message": format!("namespace {ns} is being terminated"), "field": "metadata.namespace"}]})));
        }
        Ok(())
    }

    /// Creates an object of any kind the API serves, as the lab's own seed (field manager
    /// `lab`), in `ns`; with `None`, in `metadata.namespace` (else `default`) if the kind is
    /// namespaced.
    ///
    /// # Errors
    /// 400 for a kind the API does not serve; what [`World::create`] answers.
    pub fn create_seed(&mut self, ns: Option<&str>, obj: Value) -> Result<Value, ApiError> {
        let api_version = obj["apiVersion"].as_str().unwrap_or("v1");
        let group = api_version.rsplit_once('/').map(|(g, _)| g).unwrap_or("");
        let kind = obj["kind"].as_str().unwrap_or_default();
        let rt = self
            .kinds
            .by_kind(group, kind)
            .cloned()
            .ok_or_else(|| ApiError::bad_request(format!("no kind {kind} in {api_version}")))?;
        let ns = match ns {
            Some(n) => n.to_string(),
            None if rt.namespaced => obj["metadata"]["namespace"]
                .as_str()
                .unwrap_or("default")
                .to_string(),
            None => String::new(),
        };
        self.create(
            &rt,
            &ns,
            obj,
            &WriteOpts {
                dry_run: false,
                manager: "lab".into(),
                subresource: String::new(),
            },
        )
    }

    /// POST: creates an object.
    pub fn create(
        &mut self,
        rt: &ResourceType,
        ns: &str,
        obj: Value,
        opts: &WriteOpts,
    ) -> Result<Value, ApiError> {
        self.create_shared(rt, ns, obj, opts)
            .map(Arc::unwrap_or_clone)
    }

    /// Like [`World::create`], returning the stored object shared (no copy).
    pub fn create_shared(
        &mut self,
        rt: &ResourceType,
        ns: &str,
        mut obj: Value,
        opts: &WriteOpts,
    ) -> Result<Arc<Value>, ApiError> {
        if !obj.is_object() {
            return Err(ApiError::bad_request(
                "the body of the request is not an object",
            ));
        }
        obj["apiVersion"] = json!(rt.api_version());
        obj["kind"] = json!(rt.kind);
        if !obj["metadata"].is_object() {
            obj["metadata"] = json!({});
        }
        let body_ns = obj["metadata"]["namespace"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if rt.namespaced {
            if !body_ns.is_empty() && body_ns != ns {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            obj["metadata"]["namespace"] = json!(ns);
        } else if let Some(m) = obj["metadata"].as_object_mut() {
            m.remove("namespace");
        }
        let mut name = obj["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if name.is_empty() {
            match obj["metadata"]["generateName"].as_str() {
                Some(prefix) if !prefix.is_empty() => {
                    name = format!("{prefix}{}", self.random_suffix());
                    obj["metadata"]["name"] = json!(name);
                }
                _ => {
                    return Err(ApiError::invalid(
                        &rt.group,
                        &rt.kind,
                        "",
                        &[(
                            "FieldValueRequired",
                            "metadata.name",
                            "Required value: name or generateName is required",
                        )],
                    ));
                }
            }
        }
        self.check_namespace(rt, ns, &name, true)?;
        let key = gr(rt);
        let store_ns = if rt.namespaced { ns } else { "" };
        if self.store.get(&key, store_ns, &name).is_some() {
            return Err(ApiError::already_exists(subject(rt, &name)));
        }
        defaults::validate(rt, &obj)?;
        let now = now_rfc3339();
        let uid = self.store.new_uid();
        let meta = &mut obj["metadata"];
        meta["uid"] = json!(uid);
        meta["creationTimestamp"] = json!(now);
        meta["generation"] = json!(1);
        if let Some(m) = meta.as_object_mut() {
            m.remove("resourceVersion");
            m.remove("deletionTimestamp");
            m.remove("managedFields");
        }
        if rt.has_sub("status")
            && rt.kind != "Node"
            && let Some(m) = obj.as_object_mut()
        {
            m.remove("status");
        }
        defaults::apply_defaults(rt, &mut obj);
        if !opts.manager.is_empty() {
            fields::record_update(
                None,
                &mut obj,
                &opts.manager,
                &rt.api_version(),
                "",
                &now,
                rt.list_types(),
            );
        }
        if opts.dry_run {
            return Ok(Arc::new(obj));
        }
        let stored = self.store.put_arc(&key, obj);
        self.after_write(rt, &stored);
        Ok(stored)
    }

    /// PUT/PATCH: replaces an object (or its status) with `new`.
    pub fn update(
        &mut self,
        rt: &ResourceType,
        ns: &str,
        name: &str,
        new: Value,
        part: Part,
        opts: &WriteOpts,
    ) -> Result<Value, ApiError> {
        self.update_shared(rt, ns, name, new, part, opts)
            .map(Arc::unwrap_or_clone)
    }

    /// Like [`World::update`], returning the stored object shared (no copy).
    pub fn update_shared(
        &mut self,
        rt: &ResourceType,
        ns: &str,
        name: &str,
        mut new: Value,
        part: Part,
        opts: &WriteOpts,
    ) -> Result<Arc<Value>, ApiError> {
        let key = gr(rt);
        let store_ns = if rt.namespaced { ns } else { "" };
        let Some(old) = self.store.get_arc(&key, store_ns, name).cloned() else {
            return Err(ApiError::not_found(subject(rt, name)));
        };
        if !new.is_object() {
            return Err(ApiError::bad_request(
                "the body of the request is not an object",
            ));
        }
        let body_name = new["metadata"]["name"].as_str().unwrap_or(name);
        if body_name != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        if let Some(rv) = new["metadata"]["resourceVersion"].as_str()
            && !rv.is_empty()
            && Some(rv) != old["metadata"]["resourceVersion"].as_str()
        {
            return Err(ApiError::conflict(subject(rt, name)));
        }
        let mut obj = match part {
            Part::Status => {
                let mut o = (*old).clone();
                o["status"] = new.get("status").cloned().unwrap_or(Value::Null);
                if part == Part::Status && new["metadata"]["managedFields"].is_array() {
                    o["metadata"]["managedFields"] = new["metadata"]["managedFields"].clone();
                }
                o
            }
            Part::Main | Part::Applied => {
                new["apiVersion"] = json!(rt.api_version());
                new["kind"] = json!(rt.kind);
                if part == Part::Main && rt.has_sub("status") {
                    match old.get("status") {
                        Some(s) => new["status"] = s.clone(),
                        None => {
                            if let Some(m) = new.as_object_mut() {
                                m.remove("status");
                            }
                        }
                    }
                }
                if !new["metadata"].is_object() {
                    new["metadata"] = json!({});
                }
                for f in [
                    "uid",
                    "creationTimestamp",
                    "deletionTimestamp",
                    "deletionGracePeriodSeconds",
                    "namespace",
                    "name",
                    "generateName",
                ] {
                    match old["metadata"].get(f) {
                        Some(v) => new["metadata"][f] = v.clone(),
                        None => {
                            if let Some(m) = new["metadata"].as_object_mut() {
                                m.remove(f);
                            }
                        }
                    }
                }
                if part == Part::Main && !new["metadata"]["managedFields"].is_array() {
                    new["metadata"]["managedFields"] = old["metadata"]["managedFields"].clone();
                }
                new
            }
        };
        obj["metadata"]["generation"] = old["metadata"]["generation"].clone();
        if spec_differs(&obj, &old) && obj["metadata"]["generation"].is_u64() {
            obj["metadata"]["generation"] =
                json!(old["metadata"]["generation"].as_u64().unwrap_or(1) + 1);
        }
        defaults::apply_defaults(rt, &mut obj);
        defaults::validate(rt, &obj)?;
        defaults::validate_update(rt, &old, &obj)?;
        if part != Part::Applied && !opts.manager.is_empty() {
            let sub = if part == Part::Status {
                "status"
            } else {
                opts.subresource.as_str()
            };
            fields::record_update(
                Some(&*old),
                &mut obj,
                &opts.manager,
                &rt.api_version(),
                sub,
                &now_rfc3339(),
                rt.list_types(),
            );
        }
        obj["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"].clone();
        if same_but_times(&obj, &old) {
            return Ok(old);
        }
        if opts.dry_run {
            return Ok(Arc::new(obj));
        }
        if obj["metadata"]["deletionTimestamp"].is_string()
            && obj["metadata"]["finalizers"]
                .as_array()
                .is_none_or(Vec::is_empty)
            && !(rt.kind == "Pod" && obj["spec"]["nodeName"].is_string())
        {
            return Ok(Arc::new(
                self.store.remove(&key, store_ns, name).unwrap_or(obj),
            ));
        }
        let stored = self.store.put_arc(&key, obj);
        self.after_write(rt, &stored);
        Ok(stored)
    }

    /// DELETE: removes an object now, or marks it for deletion. `Ok(Left)`: the object (still
    /// pending); `Ok(Right)`: the Success status.
    pub fn delete(
        &mut self,
        rt: &ResourceType,
        ns: &str,
        name: &str,
        opts: &DeleteOpts,
    ) -> Result<Value, ApiError> {
        let key = gr(rt);
        let store_ns = if rt.namespaced { ns } else { "" };
        let Some(mut obj) = self.store.get(&key, store_ns, name).cloned() else {
            return Err(ApiError::not_found(subject(rt, name)));
        };
        let uid = obj["metadata"]["uid"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if let Some(want) = &opts.uid
            && *want != uid
        {
            return Err(ApiError::new(
                409,
                "Conflict",
                format!(
                    "Precondition failed: UID in precondition: {want}, UID in object meta: {uid}"
                ),
            )
            .with_details(json!({"name": name, "group": rt.group, "kind": rt.plural})));
        }
        if let Some(want) = &opts.rv {
            let have = obj["metadata"]["resourceVersion"]
                .as_str()
                .unwrap_or_default();
            if want != have {
                return Err(ApiError::new(409, "Conflict", format!("Precondition failed: ResourceVersion in precondition: {want}, ResourceVersion in object meta: {have}")).with_details(json!({"name": name, "group": rt.group, "kind": rt.plural})));
            }
        }
        let done = success(json!({"name": name, "group": rt.group, "kind": rt.plural, "uid": uid}));
        if opts.dry_run {
            return Ok(obj);
        }
        let now = now_rfc3339();
        let already = obj["metadata"]["deletionTimestamp"].is_string();
        let policy = opts
            .propagation
            .clone()
            .unwrap_or_else(|| "Background".into());
        if policy == "Orphan" {
            self.orphan_dependents(&uid);
        }
        let mut finalizers: Vec<Value> = obj["metadata"]["finalizers"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if policy == "Foreground" && !already && self.has_dependents(&uid) {
            finalizers.push(json!("foregroundDeletion"));
        }
        // Namespaces go through Terminating; the namespace controller empties them.
        if rt.kind == "Namespace" {
            if !already {
                obj["metadata"]["deletionTimestamp"] = json!(now);
                obj["status"]["phase"] = json!("Terminating");
                return Ok(self.store.put(&key, obj));
            }
            return Ok(obj);
        }
        // Bound pods terminate gracefully: the kubelet removes them when the grace is over.
        let grace = opts.grace.unwrap_or_else(|| {
            obj["spec"]["terminationGracePeriodSeconds"]
                .as_i64()
                .unwrap_or(30)
        });
        let bound = rt.kind == "Pod" && obj["spec"]["nodeName"].is_string();
        let terminal = matches!(
            obj["status"]["phase"].as_str(),
            Some("Succeeded" | "Failed")
        );
        if bound && grace > 0 && !terminal || !finalizers.is_empty() {
            if !already {
                obj["metadata"]["deletionTimestamp"] = json!(now);
                obj["metadata"]["deletionGracePeriodSeconds"] =
                    json!(if bound { grace } else { 0 });
                obj["metadata"]["finalizers"] = json!(finalizers);
                if finalizers.is_empty()
                    && let Some(m) = obj["metadata"].as_object_mut()
                {
                    m.remove("finalizers");
                }
                self.timers
                    .insert((uid.clone(), "deleted"), std::time::Instant::now());
                let stored = self.store.put_arc(&key, obj);
                self.after_write(rt, &stored);
                return Ok(Arc::unwrap_or_clone(stored));
            }
            if bound && grace == 0 && finalizers.is_empty() {
                self.store.remove(&key, store_ns, name);
                return Ok(done);
            }
            return Ok(obj);
        }
        self.store.remove(&key, store_ns, name);
        if rt.crd.is_none() && rt.kind == "CustomResourceDefinition" {
            self.crd_removed(&obj);
        }
        Ok(done)
    }

    fn has_dependents(&self, uid: &str) -> bool {
        self.store.has_dependents(uid)
    }

    fn orphan_dependents(&mut self, uid: &str) {
        let dependents: Vec<ObjRef> = self.store.dependents(uid).cloned().collect();
        for r in dependents {
            let Some(mut o) = self.store.get_ref(&r).cloned() else {
                continue;
            };
            let refs = o["metadata"]["ownerReferences"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let kept: Vec<Value> = refs.into_iter().filter(|x| x["uid"] != uid).collect();
            if kept.is_empty() {
                if let Some(m) = o["metadata"].as_object_mut() {
                    m.remove("ownerReferences");
                }
            } else {
                o["metadata"]["ownerReferences"] = json!(kept);
            }
            self.store.put(&r.gr, o);
        }
    }

    /// Hooks that run in the same write: CRDs are established at once.
    fn after_write(&mut self, rt: &ResourceType, obj: &Value) {
        if rt.kind == "CustomResourceDefinition" && rt.group == "apiextensions.k8s.io" {
            self.crd_written(obj);
        }
    }
}

/// Whether two objects are equal but for the managedFields times (no-op detection).
fn same_but_times(a: &Value, b: &Value) -> bool {
    let (Some(am), Some(bm)) = (a.as_object(), b.as_object()) else {
        return a == b;
    };
    if am.len() != bm.len() {
        return false;
    }
    for (k, av) in am {
        let Some(bv) = bm.get(k) else { return false };
        if k != "metadata" {
            if av != bv {
                return false;
            }
            continue;
        }
        let (Some(ameta), Some(bmeta)) = (av.as_object(), bv.as_object()) else {
            return av == bv;
        };
        if ameta.len() != bmeta.len() {
            return false;
        }
        for (mk, mv) in ameta {
            let Some(bmv) = bmeta.get(mk) else {
                return false;
            };
            let equal = if mk == "managedFields" {
                managed_equal_but_times(mv, bmv)
            } else {
                mv == bmv
            };
            if !equal {
                return false;
            }
        }
    }
    true
}

fn managed_equal_but_times(a: &Value, b: &Value) -> bool {
    let (Some(a), Some(b)) = (a.as_array(), b.as_array()) else {
        return a == b;
    };
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| match (x.as_object(), y.as_object()) {
                (Some(x), Some(y)) => {
                    x.iter().filter(|(k, _)| *k != "time").count()
                        == y.iter().filter(|(k, _)| *k != "time").count()
                        && x.iter()
                            .filter(|(k, _)| *k != "time")
                            .all(|(k, v)| y.get(k) == Some(v))
                }
                _ => x == y,
            })
}
