//! Field paths as plans write them (`.status.version`,
//! `.spec.template.spec.containers[0].image`, `.metadata.labels["app.kubernetes.io/name"]`)
//! read out of an object's JSON.

use serde_json::Value;

/// The value at `path` in `obj`, if there is one.
pub(crate) fn lookup<'a>(obj: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = obj;
    for step in parse(path)? {
        cur = match step {
            Step::Key(k) => cur.get(k.as_str())?,
            Step::Index(i) => cur.get(i)?,
        };
    }
    Some(cur)
}

/// The value as text: strings bare, `null` as "", the rest as JSON.
pub(crate) fn as_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Checks that `path` is well-formed, for errors before any request.
pub(crate) fn is_valid(path: &str) -> bool {
    parse(path).is_some()
}

enum Step {
    Key(String),
    Index(usize),
}

fn parse(path: &str) -> Option<Vec<Step>> {
    let mut steps = Vec::new();
    let mut rest = path.trim();
    rest = rest.strip_prefix('.').unwrap_or(rest);
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('[') {
            let end = after.find(']')?;
            let inner = after[..end].trim();
            if let Some(quoted) = inner
                .strip_prefix('"')
                .and_then(|s| s.strip_suffix('"'))
                .or_else(|| inner.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')))
            {
                steps.push(Step::Key(quoted.to_string()));
            } else {
                steps.push(Step::Index(inner.parse().ok()?));
            }
            rest = &after[end + 1..];
            rest = rest.strip_prefix('.').unwrap_or(rest);
            continue;
        }
        let end = rest.find(['.', '[']).unwrap_or(rest.len());
        if end == 0 {
            return None;
        }
        steps.push(Step::Key(rest[..end].to_string()));
        rest = &rest[end..];
        rest = rest.strip_prefix('.').unwrap_or(rest);
    }
    Some(steps)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_keys_indexes_and_quoted_keys() {
        let o = json!({"spec": {"containers": [{"image": "a:1"}]}, "metadata": {"labels": {"app.k8s.io/name": "x"}}, "status": {"n": 3}});
        assert_eq!(
            lookup(&o, ".spec.containers[0].image").map(as_text),
            Some("a:1".into())
        );
        assert_eq!(
            lookup(&o, ".metadata.labels[\"app.k8s.io/name\"]").map(as_text),
            Some("x".into())
        );
        assert_eq!(lookup(&o, "status.n").map(as_text), Some("3".into()));
        assert!(lookup(&o, ".spec.containers[1]").is_none());
        assert!(!is_valid(".a[x"));
    }
}
