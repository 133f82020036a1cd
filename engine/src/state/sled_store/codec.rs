//! Keys and values of the sled trees: versioned JSON under fixed, `\0`-separated keys.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::state::StoreError;

/// The record version this build writes and the newest it reads.
pub(super) const VERSION: u64 = 1;

/// `<a>\0<b>…`: ids never contain NUL, so a prefix scan of `<run>\0` finds only that run's
/// records (and not those of a run whose id merely starts the same).
pub(super) fn key(parts: &[&str]) -> Vec<u8> {
    let mut k = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            k.push(0);
        }
        k.extend_from_slice(p.as_bytes());
    }
    k
}

/// The prefix of every key under `parts`.
pub(super) fn prefix(parts: &[&str]) -> Vec<u8> {
    let mut k = key(parts);
    k.push(0);
    k
}

/// An output key: big-endian seq, so that sled's byte order is seq order.
pub(super) fn output_key(run_id: &str, instance_id: &str, seq: u64) -> Vec<u8> {
    let mut k = prefix(&[run_id, instance_id]);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// A key as shown in errors: `tree/part/part` (a trailing 8-byte seq shown as a number).
pub(super) fn show_key(tree: &str, key: &[u8]) -> String {
    let (text, seq) = if tree == "output" && key.len() >= 8 {
        let (head, tail) = key.split_at(key.len() - 8);
        let mut seq = [0u8; 8];
        seq.copy_from_slice(tail);
        (head, Some(u64::from_be_bytes(seq)))
    } else {
        (key, None)
    };
    let mut shown = format!(
        "{tree}/{}",
        String::from_utf8_lossy(text).replace('\0', "/")
    );
    if let Some(seq) = seq {
        shown = format!("{}{seq}", shown.trim_end_matches('/').to_string() + "/");
    }
    shown
}

/// JSON with a `v` field (added when the record type has none, e.g. output chunks).
pub(super) fn encode<T: Serialize>(
    tree: &str,
    key: &[u8],
    record: &T,
) -> Result<Vec<u8>, StoreError> {
    let codec = |e: serde_json::Error| StoreError::Codec {
        key: show_key(tree, key),
        detail: e.to_string(),
    };
    let mut value = serde_json::to_value(record).map_err(codec)?;
    if let Some(obj) = value.as_object_mut() {
        obj.entry("v").or_insert(serde_json::Value::from(VERSION));
    }
    serde_json::to_vec(&value).map_err(codec)
}

/// Reads a record; one that is not JSON, has the wrong shape, or was written by a newer
/// rok-plan (`v` above [`VERSION`]) is [`StoreError::Codec`] naming its key.
pub(super) fn decode<T: DeserializeOwned>(
    tree: &str,
    key: &[u8],
    bytes: &[u8],
) -> Result<T, StoreError> {
    let codec = |detail: String| StoreError::Codec {
        key: show_key(tree, key),
        detail,
    };
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| codec(format!("not JSON: {e}")))?;
    let v = value
        .get("v")
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(1);
    if v > VERSION {
        return Err(codec(format!(
            "record version {v} was written by a newer rok-plan (this one reads up to {VERSION})"
        )));
    }
    serde_json::from_value(value).map_err(|e| codec(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_shown_readably() {
        assert_eq!(show_key("steps", &key(&["r1", "a[0]"])), "steps/r1/a[0]");
        assert_eq!(
            show_key("output", &output_key("r1", "a", 7)),
            "output/r1/a/7"
        );
    }

    #[test]
    fn newer_versions_are_refused() {
        let err = decode::<serde_json::Value>("runs", b"r1", br#"{"v":2}"#);
        assert!(matches!(err, Err(StoreError::Codec { key, .. }) if key == "runs/r1"));
    }
}
