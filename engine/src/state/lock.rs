//! The store's lock: one process drives a store at a time, and the lock names its holder.
//! (Placeholder signatures; the implementation is being written.)

use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::StoreError;

/// Who holds a store: written into the lock file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockHolder {
    /// Host name.
    pub host: String,
    /// Process id.
    pub pid: u32,
    /// When it took the lock (unix ms).
    pub started_at_ms: u64,
}

impl fmt::Display for LockHolder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let since = humantime::format_rfc3339_seconds(
            std::time::UNIX_EPOCH + std::time::Duration::from_millis(self.started_at_ms),
        );
        write!(
            f,
            "process {} on host `{}` (since {since})",
            self.pid, self.host
        )
    }
}

/// A held lock; released when dropped (and by the OS when the process dies).
#[derive(Debug)]
pub struct StoreLock {
    _file: std::fs::File,
}

impl StoreLock {
    /// Takes the lock of the store in `dir`.
    ///
    /// # Errors
    /// [`StoreError::Locked`] naming the holder, [`StoreError::PossiblyStale`] for a lock
    /// taken on another host (unless `force_unlock`), [`StoreError::Io`].
    pub fn acquire(dir: &Path, force_unlock: bool) -> Result<Self, StoreError> {
        let _ = (dir, force_unlock);
        Err(StoreError::Io {
            path: dir.to_path_buf(),
            source: std::io::Error::other("not yet implemented"),
        })
    }
}
