//! The clean-close record `<dir>/db.clean`: how many records the store held and a digest
//! of them, written when a store is dropped and removed when it is next opened.
//!
//! Why: damage to sled's log after its last snapshot looks to sled exactly like a write
//! torn by a crash, and sled then silently keeps only what comes before it. After a
//! *clean* close nothing can be torn, so if the records read back differ from this record,
//! the files were damaged since, and the store is refused instead. After a crash there is
//! no record (it is removed at open, before anything is written), and sled's recovery is
//! trusted as it must be.

use std::fs;
use std::io::{ErrorKind, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::state::StoreError;

use super::open::{guard, sled_error};

const CLEAN: &str = "db.clean";
const TREES: [&str; 5] = ["meta", "runs", "steps", "approvals", "output"];

/// What a store held when it was closed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Contents {
    v: u32,
    records: u64,
    /// FNV-1a 64 over every tree's name, keys and values, in key order (stable across
    /// builds, unlike std's hasher).
    digest: String,
}

impl Contents {
    /// How many records.
    pub(super) fn records(&self) -> u64 {
        self.records
    }
}

/// Reads every record of the fixed trees.
pub(super) fn contents(db: &sled::Db, path: &Path) -> Result<Contents, StoreError> {
    guard(path, || {
        let mut hash = Fnv::default();
        let mut records = 0u64;
        for name in TREES {
            let tree = db.open_tree(name).map_err(|e| sled_error(path, e))?;
            hash.bytes(name.as_bytes());
            for item in tree.iter() {
                let (k, v) = item.map_err(|e| sled_error(path, e))?;
                hash.bytes(&k);
                hash.bytes(&v);
                records += 1;
            }
        }
        Ok(Contents {
            v: 1,
            records,
            digest: format!("{:016x}", hash.0),
        })
    })
}

/// The record left by the last clean close, if any.
pub(super) fn read(dir: &Path) -> Result<Option<Contents>, StoreError> {
    let path = dir.join(CLEAN);
    match fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| StoreError::Corrupt {
                path: path.clone(),
                detail: format!("the clean-close record cannot be read: {e}"),
            }),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(source) => Err(StoreError::Io { path, source }),
    }
}

/// Writes the record (atomically: a temporary file renamed over it).
pub(super) fn write(dir: &Path, contents: &Contents) -> Result<(), StoreError> {
    let path = dir.join(CLEAN);
    let tmp = dir.join("db.clean.tmp");
    let io = |source| StoreError::Io {
        path: path.clone(),
        source,
    };
    let json = serde_json::to_vec(contents).map_err(|e| io(std::io::Error::other(e)))?;
    let mut f = fs::File::create(&tmp).map_err(io)?;
    f.write_all(&json).map_err(io)?;
    f.sync_all().map_err(io)?;
    fs::rename(&tmp, &path).map_err(io)?;
    fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io)
}

/// Removes the record (the store is open from now on), durably: a crash later must not
/// leave a record that no longer describes the store.
pub(super) fn remove(dir: &Path) -> Result<(), StoreError> {
    let path = dir.join(CLEAN);
    match fs::remove_file(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(source) => return Err(StoreError::Io { path, source }),
    }
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| StoreError::Io {
            path: dir.to_path_buf(),
            source,
        })
}

struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    /// Hashes the length first, so that boundaries between keys and values count.
    fn bytes(&mut self, bytes: &[u8]) {
        for b in (bytes.len() as u64).to_le_bytes().iter().chain(bytes) {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}
