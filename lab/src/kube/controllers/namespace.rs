//! The namespace controller: a Terminating namespace is emptied, then removed.

use super::super::store::gr;
use super::super::world::World;

/// Reconciles the queued namespaces.
pub(super) fn run(w: &mut World, keys: Vec<super::dirty::Key>) {
    for key in keys {
        let Some(ns) = super::get_key(w, "", "namespaces", &key) else {
            continue;
        };
        if !ns["metadata"]["deletionTimestamp"].is_string() {
            continue;
        }
        let name = ns["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let mut left = 0;
        let types: Vec<_> = w
            .kinds
            .types()
            .iter()
            .filter(|t| t.namespaced)
            .cloned()
            .collect();
        for t in types {
            for o in w.store.list_owned(&gr(&t), Some(&name)) {
                left += 1;
                if !o["metadata"]["deletionTimestamp"].is_string() {
                    super::delete(w, &t.group, &t.plural, &o);
                }
            }
        }
        if left == 0 {
            w.store.remove(&World::gr("", "namespaces"), "", &name);
        }
    }
}
