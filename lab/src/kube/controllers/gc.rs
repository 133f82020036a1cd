//! The garbage collector: dependents whose owners are all gone are deleted (background);
//! owners deleted in the foreground wait for their dependents, then lose the
//! `foregroundDeletion` finalizer.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use super::super::store::gr;
use super::super::world::World;

fn foreground(o: &Value) -> bool {
    o["metadata"]["deletionTimestamp"].is_string()
        && o["metadata"]["finalizers"]
            .as_array()
            .is_some_and(|f| f.iter().any(|x| x == "foregroundDeletion"))
}

/// One pass.
pub(super) fn run(w: &mut World) {
    // Nothing was deleted since the last scan: no dependent can have lost its owner.
    if w.gc_seen == Some(w.store.deletions()) {
        return;
    }
    w.gc_seen = Some(w.store.deletions());
    let types: Vec<_> = w.kinds.types().to_vec();
    // uid -> whether that object is being deleted in the foreground.
    let mut live: BTreeMap<String, bool> = BTreeMap::new();
    for t in &types {
        for o in w.store.list(&gr(t), None) {
            if let Some(uid) = o["metadata"]["uid"].as_str() {
                live.insert(uid.to_string(), foreground(o));
            }
        }
    }
    let mut owners_with_dependents: BTreeSet<String> = BTreeSet::new();
    let mut doomed: Vec<(String, String, Value)> = Vec::new();
    for t in &types {
        for o in w.store.list(&gr(t), None) {
            let Some(refs) = o["metadata"]["ownerReferences"].as_array() else {
                continue;
            };
            if refs.is_empty() {
                continue;
            }
            let uids: Vec<&str> = refs.iter().filter_map(|r| r["uid"].as_str()).collect();
            owners_with_dependents.extend(uids.iter().map(|u| u.to_string()));
            let all_gone = uids.iter().all(|u| !live.contains_key(*u));
            let foreground_owner = uids.iter().any(|u| live.get(*u) == Some(&true));
            if (all_gone || foreground_owner) && !o["metadata"]["deletionTimestamp"].is_string() {
                doomed.push((t.group.clone(), t.plural.clone(), o.clone()));
            }
        }
    }
    for (group, plural, o) in doomed {
        super::delete(w, &group, &plural, &o);
    }
    // Foreground owners without dependents lose their finalizer.
    let mut done: Vec<(String, String, Value)> = Vec::new();
    for t in &types {
        for o in w.store.list(&gr(t), None) {
            let uid = o["metadata"]["uid"].as_str().unwrap_or_default();
            if foreground(o) && !owners_with_dependents.contains(uid) {
                done.push((t.group.clone(), t.plural.clone(), o.clone()));
            }
        }
    }
    for (group, plural, mut o) in done {
        let kept: Vec<Value> = o["metadata"]["finalizers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|x| *x != "foregroundDeletion")
            .cloned()
            .collect();
        o["metadata"]["finalizers"] = json!(kept);
        super::put_main(w, &group, &plural, o);
    }
}
