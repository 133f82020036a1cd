//! Field ownership (`managedFields`, FieldsV1) and server-side apply.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use super::patch::{element_key, merge_key};
use super::status::ApiError;

/// A field path in FieldsV1 tokens: `f:spec`, `k:{"name":"c"}`, `v:"x"`, `.`.
pub type Path = Vec<String>;
/// A set of owned leaf paths.
pub type FieldSet = BTreeSet<Path>;

const SKIPPED_META: &[&str] = &[
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "selfLink",
    "generateName",
];

/// The leaf fields an object (an applied configuration, or a live object) sets.
pub fn fields_of(obj: &Value) -> FieldSet {
    let mut out = FieldSet::new();
    if let Value::Object(m) = obj {
        for (k, v) in m {
            if k == "apiVersion" || k == "kind" {
                continue;
            }
            if k == "metadata" {
                if let Value::Object(meta) = v {
                    for (mk, mv) in meta {
                        if !SKIPPED_META.contains(&mk.as_str()) {
                            walk(
                                mv,
                                mk,
                                vec!["f:metadata".into(), format!("f:{mk}")],
                                &mut out,
                            );
                        }
                    }
                }
                continue;
            }
            walk(v, k, vec![format!("f:{k}")], &mut out);
        }
    }
    out
}

fn walk(v: &Value, field: &str, path: Path, out: &mut FieldSet) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, c) in m {
                let mut p = path.clone();
                p.push(format!("f:{k}"));
                walk(c, k, p, out);
            }
        }
        Value::Array(items)
            if merge_key(field).is_some()
                && items.iter().all(|i| element_key(field, i).is_some()) =>
        {
            for item in items {
                let Some((k, kv)) = element_key(field, item) else {
                    continue;
                };
                let mut p = path.clone();
                p.push(format!("k:{}", json!({ k: kv })));
                let mut dot = p.clone();
                dot.push(".".into());
                out.insert(dot);
                if let Value::Object(m) = item {
                    for (ck, cv) in m {
                        if ck != "$patch" {
                            let mut cp = p.clone();
                            cp.push(format!("f:{ck}"));
                            walk(cv, ck, cp, out);
                        }
                    }
                }
            }
        }
        Value::Array(items) if field == "finalizers" => {
            for item in items {
                let mut p = path.clone();
                p.push(format!("v:{item}"));
                out.insert(p);
            }
        }
        _ => {
            out.insert(path);
        }
    }
}

/// The value at a path, if present.
pub fn value_at<'a>(obj: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut cur = obj;
    for tok in path {
        cur = if let Some(f) = tok.strip_prefix("f:") {
            cur.get(f)?
        } else if let Some(k) = tok.strip_prefix("k:") {
            let key: Value = serde_json::from_str(k).ok()?;
            let (kf, kv) = key.as_object()?.iter().next()?;
            cur.as_array()?.iter().find(|e| e.get(kf) == Some(kv))?
        } else if let Some(v) = tok.strip_prefix("v:") {
            let want: Value = serde_json::from_str(v).ok()?;
            cur.as_array()?.iter().find(|e| **e == want)?
        } else {
            cur
        };
    }
    Some(cur)
}

/// Removes the field at a path (a map entry, list element or set value).
pub fn remove_at(obj: &mut Value, path: &[String]) {
    let Some((last, parent)) = path.split_last() else {
        return;
    };
    if last == "." {
        remove_at(obj, parent);
        return;
    }
    let mut cur = obj;
    for tok in parent {
        let next = if let Some(f) = tok.strip_prefix("f:") {
            cur.get_mut(f)
        } else if let Some(k) = tok.strip_prefix("k:") {
            let key: Option<Value> = serde_json::from_str(k).ok();
            let kv = key
                .as_ref()
                .and_then(|k| k.as_object())
                .and_then(|m| m.iter().next().map(|(a, b)| (a.clone(), b.clone())));
            match (kv, cur.as_array_mut()) {
                (Some((kf, kv)), Some(a)) => a.iter_mut().find(|e| e.get(&kf) == Some(&kv)),
                _ => None,
            }
        } else {
            Some(cur)
        };
        match next {
            Some(n) => cur = n,
            None => return,
        }
    }
    if let Some(f) = last.strip_prefix("f:") {
        if let Some(m) = cur.as_object_mut() {
            m.remove(f);
        }
    } else if let Some(k) = last.strip_prefix("k:") {
        let key: Option<Value> = serde_json::from_str(k).ok();
        if let (Some(Value::Object(key)), Some(a)) = (key, cur.as_array_mut())
            && let Some((kf, kv)) = key.iter().next()
        {
            a.retain(|e| e.get(kf) != Some(kv));
        }
    } else if let Some(v) = last.strip_prefix("v:") {
        let want: Option<Value> = serde_json::from_str(v).ok();
        if let (Some(want), Some(a)) = (want, cur.as_array_mut()) {
            a.retain(|e| *e != want);
        }
    }
}

/// Renders a field set as FieldsV1.
pub fn to_fields_v1(set: &FieldSet) -> Value {
    let mut root = Value::Object(Map::new());
    for path in set {
        let mut cur = &mut root;
        for tok in path {
            let Value::Object(m) = cur else { break };
            cur = m
                .entry(tok.clone())
                .or_insert_with(|| Value::Object(Map::new()));
        }
    }
    root
}

/// Parses FieldsV1 back into leaf paths.
pub fn from_fields_v1(v: &Value) -> FieldSet {
    fn go(v: &Value, path: &mut Path, out: &mut FieldSet) {
        match v.as_object() {
            Some(m) if !m.is_empty() => {
                for (k, c) in m {
                    path.push(k.clone());
                    go(c, path, out);
                    path.pop();
                }
            }
            _ => {
                if !path.is_empty() {
                    out.insert(path.clone());
                }
            }
        }
    }
    let mut out = FieldSet::new();
    go(v, &mut Vec::new(), &mut out);
    out
}

/// Renders a path the way conflict messages do: `.spec.replicas`, `.spec.containers[name="c"].image`.
pub fn display_path(path: &[String]) -> String {
    let mut s = String::new();
    for tok in path {
        if let Some(f) = tok.strip_prefix("f:") {
            s.push('.');
            s.push_str(f);
        } else if let Some(k) = tok.strip_prefix("k:") {
            let key: Value = serde_json::from_str(k).unwrap_or(Value::Null);
            let inner: Vec<String> = key
                .as_object()
                .into_iter()
                .flatten()
                .map(|(a, b)| format!("{a}={b}"))
                .collect();
            s.push_str(&format!("[{}]", inner.join(",")));
        } else if let Some(v) = tok.strip_prefix("v:") {
            s.push_str(&format!("[={v}]"));
        }
    }
    s
}

/// One managedFields entry.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Manager name.
    pub manager: String,
    /// `Apply` or `Update`.
    pub operation: String,
    /// apiVersion the manager used.
    pub api_version: String,
    /// Subresource (`status`, `scale`) or empty.
    pub subresource: String,
    /// Owned fields.
    pub fields: FieldSet,
    /// When the entry last changed.
    pub time: String,
}

/// Reads `metadata.managedFields`.
pub fn read_managed(obj: &Value) -> Vec<Entry> {
    obj["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| Entry {
            manager: e["manager"].as_str().unwrap_or_default().to_string(),
            operation: e["operation"].as_str().unwrap_or_default().to_string(),
            api_version: e["apiVersion"].as_str().unwrap_or_default().to_string(),
            subresource: e["subresource"].as_str().unwrap_or_default().to_string(),
            fields: from_fields_v1(&e["fieldsV1"]),
            time: e["time"].as_str().unwrap_or_default().to_string(),
        })
        .collect()
}

/// Writes `metadata.managedFields`, dropping entries that own nothing.
pub fn write_managed(obj: &mut Value, entries: &[Entry]) {
    let list: Vec<Value> = entries
        .iter()
        .filter(|e| !e.fields.is_empty())
        .map(|e| {
            let mut v = json!({
                "manager": e.manager, "operation": e.operation, "apiVersion": e.api_version,
                "time": e.time, "fieldsType": "FieldsV1", "fieldsV1": to_fields_v1(&e.fields),
            });
            if !e.subresource.is_empty() {
                v["subresource"] = json!(e.subresource);
            }
            v
        })
        .collect();
    if let Some(m) = obj["metadata"].as_object_mut() {
        if list.is_empty() {
            m.remove("managedFields");
        } else {
            m.insert("managedFields".into(), Value::Array(list));
        }
    }
}

fn leaf_differs(a: &Value, b: &Value, path: &[String]) -> bool {
    value_at(a, path) != value_at(b, path)
}

/// Records an Update by `manager`: it takes every field whose value it changed or added.
pub fn record_update(
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    api_version: &str,
    subresource: &str,
    now: &str,
) {
    let mut entries = old.map(read_managed).unwrap_or_default();
    let new_fields = fields_of(new);
    let changed: FieldSet = match old {
        Some(o) => new_fields
            .iter()
            .filter(|p| leaf_differs(o, new, p))
            .cloned()
            .collect(),
        None => new_fields.clone(),
    };
    // Fields that are gone are owned by nobody.
    for e in &mut entries {
        e.fields
            .retain(|p| new_fields.contains(p) && !changed.contains(p));
    }
    if !changed.is_empty() {
        match entries.iter_mut().find(|e| {
            e.manager == manager && e.operation == "Update" && e.subresource == subresource
        }) {
            Some(e) => {
                e.fields.extend(changed);
                e.time = now.to_string();
            }
            None => entries.push(Entry {
                manager: manager.to_string(),
                operation: "Update".into(),
                api_version: api_version.to_string(),
                subresource: subresource.to_string(),
                fields: changed,
                time: now.to_string(),
            }),
        }
    }
    write_managed(new, &entries);
}

/// Merges an applied configuration into an object: maps recursively, keyed lists by key,
/// everything else replaced.
fn merge_applied(target: &mut Value, applied: &Value, field: &str) {
    match (target, applied) {
        (Value::Object(t), Value::Object(a)) => {
            for (k, v) in a {
                match t.get_mut(k) {
                    Some(cur) => merge_applied(cur, v, k),
                    None => {
                        t.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (t @ Value::Array(_), Value::Array(items))
            if merge_key(field).is_some() || field == "finalizers" =>
        {
            let Value::Array(list) = t else { return };
            for item in items {
                if field == "finalizers" {
                    if !list.contains(item) {
                        list.push(item.clone());
                    }
                    continue;
                }
                match element_key(field, item) {
                    Some((k, kv)) => match list.iter_mut().find(|e| e.get(&k) == Some(&kv)) {
                        Some(e) => merge_applied(e, item, ""),
                        None => list.push(item.clone()),
                    },
                    None => list.push(item.clone()),
                }
            }
        }
        (t, a) => *t = a.clone(),
    }
}

/// The outcome of a server-side apply.
#[derive(Debug)]
pub struct Applied {
    /// The object to store.
    pub object: Value,
}

/// Server-side apply of `applied` by `manager` onto `live` (`None` creates).
///
/// # Errors
/// 409 `Conflict` with `FieldManagerConflict` causes when another manager owns a field whose
/// value would change, unless `force`.
pub fn apply(
    live: Option<&Value>,
    applied: &Value,
    manager: &str,
    force: bool,
    subresource: &str,
    now: &str,
) -> Result<Applied, ApiError> {
    let api_version = applied["apiVersion"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let base = live.cloned().unwrap_or_else(|| json!({"metadata": {}}));
    let mut entries = read_managed(&base);
    let mut new_set = fields_of(applied);
    if subresource.is_empty() {
        new_set.retain(|p| p.first().map(String::as_str) != Some("f:status"));
    } else {
        new_set.retain(|p| p.first().map(String::as_str) == Some("f:status"));
    }
    // Conflicts: fields owned by someone else whose value would change.
    let mut conflicts: Vec<(String, String, Path)> = Vec::new();
    for e in entries
        .iter()
        .filter(|e| !(e.manager == manager && e.operation == "Apply"))
    {
        for p in e.fields.intersection(&new_set) {
            if p.last().map(String::as_str) != Some(".") && leaf_differs(&base, applied, p) {
                conflicts.push((e.manager.clone(), e.api_version.clone(), p.clone()));
            }
        }
    }
    if !conflicts.is_empty() && !force {
        let causes: Vec<Value> = conflicts
            .iter()
            .map(|(m, av, p)| {
                json!({"reason": "FieldManagerConflict", "message": format!("conflict with \"{m}\" using {av}"), "field": display_path(p)})
            })
            .collect();
        let lines: Vec<String> = conflicts
            .iter()
            .map(|(m, av, p)| format!("conflict with \"{m}\" using {av}: {}", display_path(p)))
            .collect();
        let message = if lines.len() == 1 {
            format!("Apply failed with 1 conflict: {}", lines[0])
        } else {
            format!(
                "Apply failed with {} conflicts: {}",
                lines.len(),
                lines.join("\n")
            )
        };
        return Err(ApiError::new(409, "Conflict", message).with_details(json!({"causes": causes})));
    }
    let taken: FieldSet = conflicts.iter().map(|(_, _, p)| p.clone()).collect();
    let old_set: FieldSet = entries
        .iter()
        .find(|e| e.manager == manager && e.operation == "Apply" && e.subresource == subresource)
        .map(|e| e.fields.clone())
        .unwrap_or_default();
    let mut object = base.clone();
    // Drop what this manager stopped applying, unless another manager still owns it.
    let others: FieldSet = entries
        .iter()
        .filter(|e| !(e.manager == manager && e.operation == "Apply"))
        .flat_map(|e| e.fields.iter().cloned())
        .collect();
    let mut emptied: BTreeSet<Path> = BTreeSet::new();
    for p in old_set.difference(&new_set) {
        if !others.contains(p) {
            remove_at(&mut object, p);
            let mut parent = p.clone();
            while parent.last().is_some_and(|t| t == ".")
                || parent.last().is_some_and(|t| {
                    t.starts_with("f:") || t.starts_with("k:") || t.starts_with("v:")
                })
            {
                parent.pop();
                if !parent.is_empty() {
                    emptied.insert(parent.clone());
                }
            }
        }
    }
    // Maps and lists left empty by the removal go too, unless someone owns them as a value.
    let mut by_depth: Vec<Path> = emptied.into_iter().collect();
    by_depth.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in by_depth {
        let empty = value_at(&object, &p).is_some_and(|v| {
            v.as_object().is_some_and(Map::is_empty) || v.as_array().is_some_and(Vec::is_empty)
        });
        if empty
            && !others.contains(&p)
            && !new_set.contains(&p)
            && p.last().is_some_and(|t| t.starts_with("f:"))
        {
            remove_at(&mut object, &p);
        }
    }
    let mut body = applied.clone();
    if let Some(m) = body.as_object_mut() {
        if subresource.is_empty() {
            m.remove("status");
        } else {
            m.retain(|k, _| k == "status" || k == "metadata" || k == "apiVersion" || k == "kind");
        }
        if let Some(meta) = m.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.remove("managedFields");
            meta.remove("resourceVersion");
        }
    }
    merge_applied(&mut object, &body, "");
    for e in &mut entries {
        e.fields.retain(|p| !taken.contains(p));
    }
    entries.retain(|e| {
        !(e.manager == manager && e.operation == "Apply" && e.subresource == subresource)
    });
    entries.push(Entry {
        manager: manager.to_string(),
        operation: "Apply".into(),
        api_version,
        subresource: subresource.to_string(),
        fields: new_set,
        time: now.to_string(),
    });
    write_managed(&mut object, &entries);
    Ok(Applied { object })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apply_conflicts_then_force_takes_ownership() {
        let cfg = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}, "spec": {"replicas": 1}});
        let first = apply(None, &cfg, "a", false, "", "t").map(|a| a.object);
        let Ok(live) = first else {
            panic!("first apply failed")
        };
        let other = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}, "spec": {"replicas": 3}});
        let err = apply(Some(&live), &other, "b", false, "", "t")
            .err()
            .map(|e| e.message);
        assert_eq!(
            err.as_deref(),
            Some("Apply failed with 1 conflict: conflict with \"a\" using apps/v1: .spec.replicas")
        );
        let forced = apply(Some(&live), &other, "b", true, "", "t")
            .map(|a| a.object["spec"]["replicas"].clone())
            .ok();
        assert_eq!(forced, Some(json!(3)));
    }

    #[test]
    fn apply_removes_fields_the_manager_dropped() {
        let v1 = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "labels": {"a": "1", "b": "2"}}});
        let v2 = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "labels": {"a": "1"}}});
        let live = apply(None, &v1, "m", false, "", "t").map(|a| a.object).ok();
        let out = live
            .and_then(|l| apply(Some(&l), &v2, "m", false, "", "t").ok())
            .map(|a| a.object["metadata"]["labels"].clone());
        assert_eq!(out, Some(json!({"a": "1"})));
    }
}
