//! JSON merge patch (RFC 7386), strategic merge patch (merge keys, `$patch` directives) and
//! JSON patch (RFC 6902).

use serde_json::{Map, Value};

use super::status::ApiError;

/// The list merge key of a field, from the Kubernetes OpenAPI (`x-kubernetes-patch-merge-key`).
/// Lists without one (`tolerations`, node `taints`, `args`, ...) are replaced whole.
pub fn merge_key(field: &str) -> Option<&'static str> {
    Some(match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "env"
        | "volumes"
        | "imagePullSecrets" => "name",
        "volumeMounts" => "mountPath",
        "volumeDevices" => "devicePath",
        "ports" => "containerPort",
        "conditions" => "type",
        "hostAliases" => "ip",
        "ownerReferences" => "uid",
        "addresses" => "type",
        _ => return None,
    })
}

/// The key of a keyed list element; `ports` of a Service are keyed by `port`.
pub fn element_key(field: &str, elem: &Value) -> Option<(String, Value)> {
    let key = merge_key(field)?;
    let key =
        if field == "ports" && elem.get("containerPort").is_none() && elem.get("port").is_some() {
            "port"
        } else {
            key
        };
    elem.get(key).map(|v| (key.to_string(), v.clone()))
}

/// Lists of scalars that strategic merge treats as sets.
fn merges_primitives(field: &str) -> bool {
    matches!(field, "finalizers")
}

/// Applies an RFC 7386 JSON merge patch.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(p) => {
            if !target.is_object() {
                *target = Value::Object(Map::new());
            }
            if let Value::Object(t) = target {
                for (k, v) in p {
                    if v.is_null() {
                        t.remove(k);
                    } else {
                        merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
                    }
                }
            }
        }
        other => *target = other.clone(),
    }
}

/// Applies a strategic merge patch.
pub fn strategic_merge(target: &mut Value, patch: &Value) -> Result<(), ApiError> {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return Ok(());
    };
    if p.get("$patch").and_then(Value::as_str) == Some("replace") {
        let mut p = p.clone();
        p.remove("$patch");
        *target = Value::Object(p);
        return Ok(());
    }
    if p.get("$patch").and_then(Value::as_str) == Some("delete") {
        *target = Value::Null;
        return Ok(());
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Value::Object(t) = target else {
        return Ok(());
    };
    for (k, v) in p {
        if k.starts_with("$setElementOrder/") || k.starts_with("$retainKeys") || k == "$patch" {
            continue;
        }
        if let Some(field) = k.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(cur)), Value::Array(del)) = (t.get_mut(field), v) {
                cur.retain(|x| !del.contains(x));
            }
            continue;
        }
        if v.is_null() {
            t.remove(k);
            continue;
        }
        match v {
            Value::Array(items) => {
                let cur = t.entry(k.clone()).or_insert(Value::Array(Vec::new()));
                merge_list(k, cur, items)?;
            }
            Value::Object(_) => strategic_merge(t.entry(k.clone()).or_insert(Value::Null), v)?,
            _ => {
                t.insert(k.clone(), v.clone());
            }
        }
    }
    Ok(())
}

fn merge_list(field: &str, cur: &mut Value, items: &[Value]) -> Result<(), ApiError> {
    if items
        .iter()
        .any(|i| i.get("$patch").and_then(Value::as_str) == Some("replace"))
    {
        *cur = Value::Array(
            items
                .iter()
                .filter(|i| i.get("$patch").is_none())
                .cloned()
                .collect(),
        );
        return Ok(());
    }
    if !cur.is_array() {
        *cur = Value::Array(Vec::new());
    }
    let Value::Array(list) = cur else {
        return Ok(());
    };
    if merges_primitives(field) {
        for i in items {
            if !list.contains(i) {
                list.push(i.clone());
            }
        }
        return Ok(());
    }
    if merge_key(field).is_none() {
        *list = items.to_vec();
        return Ok(());
    }
    for item in items {
        let Some((key, kv)) = element_key(field, item) else {
            return Err(ApiError::bad_request(format!(
                "map: {item} does not contain declared merge key: {}",
                merge_key(field).unwrap_or_default()
            )));
        };
        let pos = list.iter().position(|e| e.get(&key) == Some(&kv));
        let delete = item.get("$patch").and_then(Value::as_str) == Some("delete");
        match (pos, delete) {
            (Some(i), true) => {
                list.remove(i);
            }
            (None, true) => {}
            (Some(i), false) => strategic_merge(&mut list[i], item)?,
            (None, false) => {
                let mut fresh = Value::Null;
                strategic_merge(&mut fresh, item)?;
                list.push(fresh);
            }
        }
    }
    Ok(())
}

/// Applies an RFC 6902 JSON patch.
pub fn json_patch(target: &mut Value, ops: &Value) -> Result<(), ApiError> {
    let bad = |m: String| ApiError::new(422, "Invalid", m);
    for op in ops
        .as_array()
        .ok_or_else(|| ApiError::bad_request("json patch must be an array"))?
    {
        let path = op["path"].as_str().unwrap_or_default();
        let kind = op["op"].as_str().unwrap_or_default();
        let (parent, last) = match path.rsplit_once('/') {
            Some(x) => x,
            None => return Err(bad(format!("invalid JSON patch path {path:?}"))),
        };
        let last = last.replace("~1", "/").replace("~0", "~");
        let value = op.get("value").cloned().unwrap_or(Value::Null);
        if kind == "test" {
            if target.pointer(path) != Some(&value) {
                return Err(bad(format!("testing value {path} failed")));
            }
            continue;
        }
        let from_value = match kind {
            "move" | "copy" => {
                let from = op["from"].as_str().unwrap_or_default();
                let v = target
                    .pointer(from)
                    .cloned()
                    .ok_or_else(|| bad(format!("missing value at {from}")))?;
                if kind == "move" {
                    remove_at(target, from);
                }
                Some(v)
            }
            _ => None,
        };
        let container = target
            .pointer_mut(parent)
            .ok_or_else(|| bad(format!("doc is missing path: {path}")))?;
        match (kind, container) {
            ("remove", c) => {
                if !remove_in(c, &last) {
                    return Err(bad(format!("doc is missing path: {path}")));
                }
            }
            ("add" | "replace" | "move" | "copy", Value::Object(m)) => {
                m.insert(last, from_value.unwrap_or(value));
            }
            ("add" | "replace" | "move" | "copy", Value::Array(a)) => {
                let v = from_value.unwrap_or(value);
                if last == "-" {
                    a.push(v);
                } else {
                    let i: usize = last
                        .parse()
                        .map_err(|_| bad(format!("invalid index {last}")))?;
                    if kind == "replace" && i < a.len() {
                        a[i] = v;
                    } else if i <= a.len() {
                        a.insert(i, v);
                    } else {
                        return Err(bad(format!("index {i} out of bounds")));
                    }
                }
            }
            _ => return Err(bad(format!("unexpected op {kind:?} at {path}"))),
        }
    }
    Ok(())
}

fn remove_at(target: &mut Value, path: &str) {
    if let Some((parent, last)) = path.rsplit_once('/')
        && let Some(c) = target.pointer_mut(parent)
    {
        remove_in(c, last);
    }
}

fn remove_in(c: &mut Value, last: &str) -> bool {
    match c {
        Value::Object(m) => m.remove(last).is_some(),
        Value::Array(a) => match last.parse::<usize>() {
            Ok(i) if i < a.len() => {
                a.remove(i);
                true
            }
            _ => false,
        },
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strategic_merge_merges_containers_by_name_and_deletes() {
        let mut pod = json!({"spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "y"}]}});
        let patch = json!({"spec": {"containers": [{"name": "a", "image": "x2"}, {"name": "b", "$patch": "delete"}]}});
        assert!(strategic_merge(&mut pod, &patch).is_ok());
        assert_eq!(
            pod,
            json!({"spec": {"containers": [{"name": "a", "image": "x2"}]}})
        );
    }

    #[test]
    fn merge_patch_removes_nulls() {
        let mut o = json!({"a": {"b": 1, "c": 2}});
        merge_patch(&mut o, &json!({"a": {"b": null, "d": [1]}}));
        assert_eq!(o, json!({"a": {"c": 2, "d": [1]}}));
    }
}
