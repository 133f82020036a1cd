//! Helpers for tests of the state store, shared by test files (`mod store_support;`).
#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Every file under `dir` (recursively) whose raw bytes contain `needle`. This is how tests
/// show that a secret never reached the store: search the bytes, not the decoded records.
pub fn files_containing(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for (path, bytes) in read_tree(dir) {
        if let Some(bytes) = bytes
            && !needle.is_empty()
            && bytes.windows(needle.len()).any(|w| w == needle)
        {
            found.push(dir.join(path));
        }
    }
    found
}

/// Every entry under `dir`, relative path → contents (`None` for a directory), skipping
/// the names in `skip` at the top level. Two equal trees are byte for byte the same.
pub fn tree_without(dir: &Path, skip: &[&str]) -> BTreeMap<PathBuf, Option<Vec<u8>>> {
    read_tree(dir)
        .into_iter()
        .filter(|(p, _)| {
            !p.components()
                .next()
                .is_some_and(|c| skip.iter().any(|s| c.as_os_str() == *s))
        })
        .collect()
}

fn read_tree(dir: &Path) -> BTreeMap<PathBuf, Option<Vec<u8>>> {
    fn walk(root: &Path, at: &Path, out: &mut BTreeMap<PathBuf, Option<Vec<u8>>>) {
        let Ok(entries) = std::fs::read_dir(at) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let rel = path.strip_prefix(root).unwrap_or(&path).to_path_buf();
            if path.is_dir() {
                out.insert(rel, None);
                walk(root, &path, out);
            } else {
                out.insert(rel, Some(std::fs::read(&path).unwrap_or_default()));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}
