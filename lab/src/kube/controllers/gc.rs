//! The garbage collector: dependents whose owners are all gone are deleted (background);
//! owners deleted in the foreground wait for their dependents, then lose the
//! `foregroundDeletion` finalizer.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use super::super::ops::DeleteOpts;
use super::super::store::{ObjRef, owner_uids};
use super::super::world::World;

fn foreground(o: &Value) -> bool {
    o["metadata"]["deletionTimestamp"].is_string()
        && o["metadata"]["finalizers"]
            .as_array()
            .is_some_and(|f| f.iter().any(|x| x == "foregroundDeletion"))
}

/// The live object with this uid.
fn live<'a>(w: &'a World, uid: &str) -> Option<&'a Value> {
    w.store.by_uid(uid).and_then(|r| w.store.get_ref(r))
}

/// Looks at the objects the changes concern: dependents whose owners are all gone, or one of
/// whose owners is being deleted in the foreground, are deleted; foreground owners left without
/// dependents lose the `foregroundDeletion` finalizer.
pub(super) fn run(w: &mut World) {
    let owners = std::mem::take(&mut w.dirty.gc_owners);
    let mut check: BTreeSet<ObjRef> = std::mem::take(&mut w.dirty.gc_dependents);
    for uid in &owners {
        check.extend(w.store.dependents(uid).cloned());
    }
    let mut doomed: Vec<(String, String, Value, bool)> = Vec::new();
    for r in &check {
        let Some(o) = w.store.get_ref(r) else {
            continue;
        };
        if o["metadata"]["deletionTimestamp"].is_string() {
            continue;
        }
        let uids: Vec<&str> = owner_uids(o).collect();
        if uids.is_empty() {
            continue;
        }
        let all_gone = uids.iter().all(|u| live(w, u).is_none());
        let foreground_owner = uids.iter().any(|u| live(w, u).is_some_and(foreground));
        if all_gone || foreground_owner {
            doomed.push((r.gr.0.clone(), r.gr.1.clone(), o.clone(), foreground_owner));
        }
    }
    for (group, plural, o, in_foreground) in doomed {
        let opts = DeleteOpts {
            propagation: in_foreground.then(|| "Foreground".to_string()),
            ..DeleteOpts::default()
        };
        super::delete_with(w, &group, &plural, &o, opts);
    }
    // Foreground owners without dependents lose their finalizer.
    let mut done: Vec<(String, String, Value)> = Vec::new();
    for uid in &owners {
        if w.store.has_dependents(uid) {
            continue;
        }
        if let Some(r) = w.store.by_uid(uid)
            && let Some(o) = w.store.get_ref(r)
            && foreground(o)
        {
            done.push((r.gr.0.clone(), r.gr.1.clone(), o.clone()));
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
