//! Field ownership (`managedFields`, FieldsV1) and server-side apply.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use super::listtypes::{ListType, ListTypes};
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

/// An applied configuration with a map-list element that leaves out a key field.
#[derive(Debug, Clone, PartialEq)]
pub struct MissingKeyAt {
    /// The list, as conflict messages write paths (`.spec.template.spec.containers`).
    pub list: String,
    /// The element's index.
    pub index: usize,
    /// The key field left out.
    pub field: String,
}

/// The field names on a path (list elements are not steps).
fn names_of(path: &[String]) -> Vec<&str> {
    path.iter().filter_map(|t| t.strip_prefix("f:")).collect()
}

/// The leaf fields an object (an applied configuration, or a live object) sets. A map-list
/// element without its key makes a live object's list count as one field; an applied
/// configuration is refused (`strict`).
pub fn fields_of(obj: &Value, lt: ListTypes<'_>) -> FieldSet {
    let mut out = FieldSet::new();
    let _ = fields_into(obj, lt, false, &mut out);
    out
}

/// The leaf fields of an applied configuration; every map-list element must carry its keys.
pub fn applied_fields(obj: &Value, lt: ListTypes<'_>) -> Result<FieldSet, MissingKeyAt> {
    let mut out = FieldSet::new();
    fields_into(obj, lt, true, &mut out)?;
    Ok(out)
}

fn fields_into(
    obj: &Value,
    lt: ListTypes<'_>,
    strict: bool,
    out: &mut FieldSet,
) -> Result<(), MissingKeyAt> {
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
                                vec!["f:metadata".into(), format!("f:{mk}")],
                                lt,
                                strict,
                                out,
                            )?;
                        }
                    }
                }
                continue;
            }
            walk(v, vec![format!("f:{k}")], lt, strict, out)?;
        }
    }
    Ok(())
}

fn walk(
    v: &Value,
    path: Path,
    lt: ListTypes<'_>,
    strict: bool,
    out: &mut FieldSet,
) -> Result<(), MissingKeyAt> {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, c) in m {
                let mut p = path.clone();
                p.push(format!("f:{k}"));
                walk(c, p, lt, strict, out)?;
            }
        }
        Value::Array(items) => match lt.of(&names_of(&path)) {
            ListType::Map(keys) => {
                let lt_map = ListType::Map(keys);
                let mut keyed = Vec::with_capacity(items.len());
                for (index, item) in items.iter().enumerate() {
                    match lt_map.element_key(item) {
                        Ok(k) => keyed.push((k, item)),
                        Err(missing) if strict => {
                            return Err(MissingKeyAt {
                                list: display_path(&path),
                                index,
                                field: missing.field,
                            });
                        }
                        Err(_) => {
                            out.insert(path);
                            return Ok(());
                        }
                    }
                }
                for (key, item) in keyed {
                    let mut p = path.clone();
                    p.push(format!("k:{}", Value::Object(key)));
                    let mut dot = p.clone();
                    dot.push(".".into());
                    out.insert(dot);
                    if let Value::Object(m) = item {
                        for (ck, cv) in m {
                            if ck != "$patch" {
                                let mut cp = p.clone();
                                cp.push(format!("f:{ck}"));
                                walk(cv, cp, lt, strict, out)?;
                            }
                        }
                    }
                }
            }
            ListType::Set => {
                for item in items {
                    let mut p = path.clone();
                    p.push(format!("v:{item}"));
                    out.insert(p);
                }
            }
            ListType::Atomic => {
                out.insert(path);
            }
        },
        _ => {
            out.insert(path);
        }
    }
    Ok(())
}

/// The list type of the list a `k:` or `v:` token at `path[i]` picks an element of.
fn list_at(path: &[String], i: usize, lt: ListTypes<'_>) -> ListType {
    lt.of(&names_of(&path[..i]))
}

/// The value at a path, if present.
pub fn value_at<'a>(obj: &'a Value, path: &[String], lt: ListTypes<'_>) -> Option<&'a Value> {
    let mut cur = obj;
    for (i, tok) in path.iter().enumerate() {
        cur = if let Some(f) = tok.strip_prefix("f:") {
            cur.get(f)?
        } else if let Some(k) = tok.strip_prefix("k:") {
            let key: Map<String, Value> = serde_json::from_str(k).ok()?;
            let list = list_at(path, i, lt);
            cur.as_array()?.iter().find(|e| list.has_key(e, &key))?
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
pub fn remove_at(obj: &mut Value, path: &[String], lt: ListTypes<'_>) {
    let Some((last, parent)) = path.split_last() else {
        return;
    };
    if last == "." {
        remove_at(obj, parent, lt);
        return;
    }
    let mut cur = obj;
    for (i, tok) in parent.iter().enumerate() {
        let next = if let Some(f) = tok.strip_prefix("f:") {
            cur.get_mut(f)
        } else if let Some(k) = tok.strip_prefix("k:") {
            let key: Option<Map<String, Value>> = serde_json::from_str(k).ok();
            let list = list_at(path, i, lt);
            match (key, cur.as_array_mut()) {
                (Some(key), Some(a)) => a.iter_mut().find(|e| list.has_key(e, &key)),
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
        let key: Option<Map<String, Value>> = serde_json::from_str(k).ok();
        let list = list_at(path, path.len() - 1, lt);
        if let (Some(key), Some(a)) = (key, cur.as_array_mut()) {
            a.retain(|e| !list.has_key(e, &key));
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

fn leaf_differs(a: &Value, b: &Value, path: &[String], lt: ListTypes<'_>) -> bool {
    value_at(a, path, lt) != value_at(b, path, lt)
}

/// Records an Update by `manager`: it takes every field whose value it changed or added.
pub fn record_update(
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    api_version: &str,
    subresource: &str,
    now: &str,
    lt: ListTypes<'_>,
) {
    let mut entries = old.map(read_managed).unwrap_or_default();
    let new_fields = fields_of(new, lt);
    let changed: FieldSet = match old {
        Some(o) => new_fields
            .iter()
            .filter(|p| leaf_differs(o, new, p, lt))
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

/// Merges an applied configuration into an object: maps recursively, map lists element by
/// element (by key), sets by value, atomic lists and scalars replaced. `names` is the field path
/// to `target` (list elements are not steps).
fn merge_applied(target: &mut Value, applied: &Value, names: &mut Vec<String>, lt: ListTypes<'_>) {
    match (target, applied) {
        (Value::Object(t), Value::Object(a)) => {
            for (k, v) in a {
                match t.get_mut(k) {
                    Some(cur) => {
                        names.push(k.clone());
                        merge_applied(cur, v, names, lt);
                        names.pop();
                    }
                    None => {
                        t.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (Value::Array(list), Value::Array(items)) => {
            let list_type = lt.of(&names.iter().map(String::as_str).collect::<Vec<_>>());
            match list_type {
                ListType::Atomic => *list = items.clone(),
                ListType::Set => {
                    for item in items {
                        if !list.contains(item) {
                            list.push(item.clone());
                        }
                    }
                }
                ListType::Map(_) => {
                    for item in items {
                        let key = list_type.element_key(item).ok();
                        match key.and_then(|k| list.iter_mut().find(|e| list_type.has_key(e, &k))) {
                            Some(e) => merge_applied(e, item, names, lt),
                            None => list.push(item.clone()),
                        }
                    }
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
    lt: ListTypes<'_>,
) -> Result<Applied, ApiError> {
    let api_version = applied["apiVersion"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let base = live.cloned().unwrap_or_else(|| json!({"metadata": {}}));
    let mut entries = read_managed(&base);
    let mut new_set = applied_fields(applied, lt).map_err(|m| {
        // What kube-apiserver answers: the typed conversion fails, a plain (500) error.
        ApiError::new(
            500,
            "",
            format!(
                "failed to create typed patch object ({}/{}; {}, Kind={}): {}: element {}: associative list with keys has an element that omits key field \"{}\" (and doesn't have default value)",
                applied["metadata"]["namespace"].as_str().unwrap_or_default(),
                applied["metadata"]["name"].as_str().unwrap_or_default(),
                applied["apiVersion"].as_str().unwrap_or_default(),
                applied["kind"].as_str().unwrap_or_default(),
                m.list,
                m.index,
                m.field
            ),
        )
    })?;
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
            if p.last().map(String::as_str) != Some(".") && leaf_differs(&base, applied, p, lt) {
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
            remove_at(&mut object, p, lt);
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
        let empty = value_at(&object, &p, lt).is_some_and(|v| {
            v.as_object().is_some_and(Map::is_empty) || v.as_array().is_some_and(Vec::is_empty)
        });
        if empty
            && !others.contains(&p)
            && !new_set.contains(&p)
            && p.last().is_some_and(|t| t.starts_with("f:"))
        {
            remove_at(&mut object, &p, lt);
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
    merge_applied(&mut object, &body, &mut Vec::new(), lt);
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

    const DEPLOY: ListTypes<'static> = ListTypes::builtin("Deployment");
    const CM: ListTypes<'static> = ListTypes::builtin("ConfigMap");

    #[test]
    fn apply_conflicts_then_force_takes_ownership() {
        let cfg = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}, "spec": {"replicas": 1}});
        let first = apply(None, &cfg, "a", false, "", "t", DEPLOY).map(|a| a.object);
        let Ok(live) = first else {
            panic!("first apply failed")
        };
        let other = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}, "spec": {"replicas": 3}});
        let err = apply(Some(&live), &other, "b", false, "", "t", DEPLOY)
            .err()
            .map(|e| e.message);
        assert_eq!(
            err.as_deref(),
            Some("Apply failed with 1 conflict: conflict with \"a\" using apps/v1: .spec.replicas")
        );
        let forced = apply(Some(&live), &other, "b", true, "", "t", DEPLOY)
            .map(|a| a.object["spec"]["replicas"].clone())
            .ok();
        assert_eq!(forced, Some(json!(3)));
    }

    #[test]
    fn apply_removes_fields_the_manager_dropped() {
        let v1 = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "labels": {"a": "1", "b": "2"}}});
        let v2 = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "labels": {"a": "1"}}});
        let live = apply(None, &v1, "m", false, "", "t", CM)
            .map(|a| a.object)
            .ok();
        let out = live
            .and_then(|l| apply(Some(&l), &v2, "m", false, "", "t", CM).ok())
            .map(|a| a.object["metadata"]["labels"].clone());
        assert_eq!(out, Some(json!({"a": "1"})));
    }
}
