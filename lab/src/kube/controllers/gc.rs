//! The garbage collector: dependents whose owners are all gone are deleted (background);
//! owners deleted in the foreground wait for their dependents, then lose the
//! `foregroundDeletion` finalizer.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::super::store::gr;
use super::super::world::World;

/// One pass.
pub(super) fn run(w: &mut World) {
    let types: Vec<_> = w.kinds.types().to_vec();
    // uid -> (group, plural, object) of every object.
    let mut by_uid: BTreeMap<String, (String, String, Value)> = BTreeMap::new();
    for t in &types {
        for o in w.store.list(&gr(t), None) {
            if let Some(uid) = o["metadata"]["uid"].as_str() {
                by_uid.insert(
                    uid.to_string(),
                    (t.group.clone(), t.plural.clone(), o.clone()),
                );
            }
        }
    }
    let mut has_dependents: BTreeMap<String, bool> = BTreeMap::new();
    for (group, plural, o) in by_uid.values() {
        let Some(refs) = o["metadata"]["ownerReferences"].as_array() else {
            continue;
        };
        if refs.is_empty() {
            continue;
        }
        let owners: Vec<Option<&(String, String, Value)>> = refs
            .iter()
            .map(|r| by_uid.get(r["uid"].as_str().unwrap_or_default()))
            .collect();
        for r in refs {
            has_dependents.insert(r["uid"].as_str().unwrap_or_default().to_string(), true);
        }
        let all_gone = owners.iter().all(Option::is_none);
        let foreground_owner = owners.iter().flatten().any(|(_, _, ow)| {
            ow["metadata"]["deletionTimestamp"].is_string()
                && ow["metadata"]["finalizers"]
                    .as_array()
                    .is_some_and(|f| f.iter().any(|x| x == "foregroundDeletion"))
        });
        if (all_gone || foreground_owner) && !o["metadata"]["deletionTimestamp"].is_string() {
            super::delete(w, group, plural, o);
        }
    }
    for (uid, (group, plural, o)) in &by_uid {
        let fg = o["metadata"]["deletionTimestamp"].is_string()
            && o["metadata"]["finalizers"]
                .as_array()
                .is_some_and(|f| f.iter().any(|x| x == "foregroundDeletion"));
        if fg && !has_dependents.contains_key(uid) {
            let mut o = o.clone();
            let kept: Vec<Value> = o["metadata"]["finalizers"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|x| *x != "foregroundDeletion")
                .cloned()
                .collect();
            o["metadata"]["finalizers"] = json!(kept);
            super::put_main(w, group, plural, o);
        }
    }
}
