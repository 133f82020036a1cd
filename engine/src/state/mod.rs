//! The state store: every run and every step instance's state, checkpointed.
//!
//! The executor is the only writer. A step's `running` is committed (durable) before its
//! side effect starts; its result before any dependent starts. Records are versioned JSON
//! (`{"v":1,...}`) under fixed keys, so backends can be swapped.

mod lock;
mod memory;
mod records;
mod sled_store;

pub use lock::{LockHolder, StoreLock};
pub use memory::MemoryStore;
pub use records::{
    ApprovalRecord, Mutation, OutputRecord, RunOutcome, RunRecord, RunSnapshot, StepRecord,
    StepState,
};
pub use sled_store::SledStore;

use std::path::PathBuf;

/// Why the store cannot be used. Every variant leaves the store's files as they were.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another live process holds the store.
    #[error("the state store `{path}` is in use by {holder}")]
    Locked {
        /// The store directory.
        path: PathBuf,
        /// Who holds it.
        holder: LockHolder,
    },
    /// The lock was taken on another host and cannot be checked; `--force-unlock` takes it over.
    #[error(
        "the state store `{path}` is locked by {holder}, which cannot be checked from here (possibly stale)"
    )]
    PossiblyStale {
        /// The store directory.
        path: PathBuf,
        /// Who took it.
        holder: LockHolder,
    },
    /// The files cannot be read as a store (they are left untouched).
    #[error("the state store `{path}` is corrupt or unreadable: {detail}")]
    Corrupt {
        /// The store directory.
        path: PathBuf,
        /// What was found.
        detail: String,
    },
    /// An I/O error.
    #[error("state store `{path}`: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A record that cannot be decoded (written by a newer rok-plan, or damaged).
    #[error("state store record `{key}` cannot be read: {detail}")]
    Codec {
        /// The record's key.
        key: String,
        /// What is wrong.
        detail: String,
    },
}

/// Where runs are kept. Synchronous and object-safe; the executor calls it from
/// `spawn_blocking`.
pub trait RunStore: Send + Sync + 'static {
    /// Applies `mutations` atomically. When this returns `Ok`, they are durable: a crash
    /// (SIGKILL) right after does not lose them.
    ///
    /// # Errors
    /// [`StoreError`] when they could not be written; nothing was applied then.
    fn commit(&self, mutations: &[Mutation]) -> Result<(), StoreError>;

    /// Appends step output. Durable no later than the next [`RunStore::commit`].
    ///
    /// # Errors
    /// [`StoreError`] when it could not be written.
    fn append_output(&self, chunks: &[OutputRecord]) -> Result<(), StoreError>;

    /// A run with its step instances and approvals.
    ///
    /// # Errors
    /// [`StoreError`] when the records cannot be read.
    fn load_run(&self, run_id: &str) -> Result<Option<RunSnapshot>, StoreError>;

    /// Every run, oldest first.
    ///
    /// # Errors
    /// [`StoreError`] when the records cannot be read.
    fn list_runs(&self) -> Result<Vec<RunRecord>, StoreError>;

    /// The recorded output of one instance, every attempt, in order.
    ///
    /// # Errors
    /// [`StoreError`] when the records cannot be read.
    fn read_output(&self, run_id: &str, instance_id: &str)
    -> Result<Vec<OutputRecord>, StoreError>;
}
