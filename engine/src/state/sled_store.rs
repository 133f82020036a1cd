//! The store on sled. (Placeholder signatures; the implementation is being written.)

use std::path::Path;

use super::{Mutation, OutputRecord, RunRecord, RunSnapshot, RunStore, StoreError, StoreLock};

/// Runs kept in a sled database in a directory (default `.rok-plan`).
#[derive(Debug)]
pub struct SledStore {
    _lock: StoreLock,
}

impl SledStore {
    /// Opens the store in `dir`, creating it when absent, after taking its lock.
    ///
    /// # Errors
    /// [`StoreError`]: locked, possibly stale, corrupt (files left untouched), I/O.
    pub fn open(dir: &Path, force_unlock: bool) -> Result<Self, StoreError> {
        Ok(Self {
            _lock: StoreLock::acquire(dir, force_unlock)?,
        })
    }
}

impl RunStore for SledStore {
    fn commit(&self, _: &[Mutation]) -> Result<(), StoreError> {
        unimplemented!("being written")
    }
    fn append_output(&self, _: &[OutputRecord]) -> Result<(), StoreError> {
        unimplemented!("being written")
    }
    fn load_run(&self, _: &str) -> Result<Option<RunSnapshot>, StoreError> {
        unimplemented!("being written")
    }
    fn list_runs(&self) -> Result<Vec<RunRecord>, StoreError> {
        unimplemented!("being written")
    }
    fn read_output(&self, _: &str, _: &str) -> Result<Vec<OutputRecord>, StoreError> {
        unimplemented!("being written")
    }
}
