//! The store's lock: one process drives a store at a time, and the lock names its holder.
//!
//! The lock is our own file `<dir>/lock`, taken with an OS file lock (`flock`) *before* sled
//! is opened, so that a second process gets a clear "in use by …" instead of sled's opaque
//! I/O error. The OS releases an flock when its holder dies, so a run killed by SIGKILL (or a
//! machine that lost power) leaves a store that is taken again at once, with no unlock step.
//! The file's content (the holder, as JSON) is only information: the flock is the lock.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

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

impl LockHolder {
    /// This process, now.
    pub fn this_process() -> Self {
        let started_at_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        Self {
            host: Self::host_name(),
            pid: std::process::id(),
            started_at_ms,
        }
    }

    /// This machine's host name (as `uname -n`), or `unknown` when it cannot be read.
    pub fn host_name() -> String {
        let mut buf = [0u8; 256];
        // SAFETY: the buffer is valid for `len` bytes; gethostname writes at most that many.
        let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
        if rc != 0 {
            return "unknown".into();
        }
        // A name that fills the buffer may come without its NUL: take what is there.
        let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        let name = String::from_utf8_lossy(&buf[..end]).into_owned();
        if name.is_empty() {
            "unknown".into()
        } else {
            name
        }
    }

    /// Who is recorded in a lock file's content; `None` for an empty (released) or
    /// unreadable one.
    fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        if text.is_empty() {
            return None;
        }
        serde_json::from_str(text).ok()
    }

    /// Stands in for a holder that has not written its name yet (or wrote garbage).
    fn unknown() -> Self {
        Self {
            host: "unknown".into(),
            pid: 0,
            started_at_ms: 0,
        }
    }
}

/// A held lock; released when dropped (and by the OS when the process dies).
#[derive(Debug)]
pub struct StoreLock {
    file: File,
    path: PathBuf,
}

impl StoreLock {
    /// Takes the lock of the store in `dir` (which must exist), and records this process as
    /// its holder.
    ///
    /// A lock file that names a process on this host whose flock is free (it died, e.g.
    /// SIGKILL) is simply taken. One that names another host is reported as possibly stale,
    /// because that host's process cannot be checked from here: on a shared filesystem the
    /// flock may not be seen across machines.
    ///
    /// # Errors
    /// [`StoreError::Locked`] naming the holder, [`StoreError::PossiblyStale`] for a lock
    /// taken on another host (unless `force_unlock`), [`StoreError::Io`].
    pub fn acquire(dir: &Path, force_unlock: bool) -> Result<Self, StoreError> {
        let path = dir.join("lock");
        let io = |source| StoreError::Io {
            path: path.clone(),
            source,
        };
        // Never truncate on open: the content names the current holder, if any.
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        // A holder that died on this host may still have its flock held for a moment by a
        // child it was spawning (the descriptor table is copied until `exec` closes it):
        // that lock is in transition, not in use, so it is waited for briefly.
        let deadline = std::time::Instant::now() + Duration::from_secs(2);
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(std::fs::TryLockError::WouldBlock) => {
                    let holder = read_live_holder(&path);
                    let dead_here = holder.host == LockHolder::this_process().host
                        && !process_alive(holder.pid);
                    if dead_here && std::time::Instant::now() < deadline {
                        std::thread::sleep(Duration::from_millis(20));
                        continue;
                    }
                    return Err(StoreError::Locked {
                        path: dir.to_path_buf(),
                        holder,
                    });
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
            }
        }
        let me = LockHolder::this_process();
        if let Some(previous) = read_holder(&mut file).map_err(io)? {
            // Same host: the flock was free, so that process is gone (or it is this one,
            // through another handle, which the flock would have refused). Take it.
            if previous.host != me.host && !force_unlock {
                // Dropping `file` releases the flock; the file is left as it was.
                return Err(StoreError::PossiblyStale {
                    path: dir.to_path_buf(),
                    holder: previous,
                });
            }
        }
        write_holder(&mut file, &me).map_err(io)?;
        Ok(Self { file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for StoreLock {
    fn drop(&mut self) {
        // A clean release clears the holder, so that a later process on another host does
        // not see a possibly stale lock. Closing the file releases the flock.
        let _ = self.file.set_len(0);
        let _ = self.file.sync_data();
    }
}

/// Whether a process with this pid exists on this host.
fn process_alive(pid: u32) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    // SAFETY: kill(2) with signal 0 only checks that the process exists.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

fn read_holder(file: &mut File) -> std::io::Result<Option<LockHolder>> {
    file.seek(SeekFrom::Start(0))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    // Content that is not a holder (garbage, not UTF-8) names nobody: the flock decides.
    Ok(LockHolder::parse(&String::from_utf8_lossy(&bytes)))
}

fn write_holder(file: &mut File, holder: &LockHolder) -> std::io::Result<()> {
    let json = serde_json::to_string(holder).map_err(std::io::Error::other)?;
    file.set_len(0)?;
    file.seek(SeekFrom::Start(0))?;
    file.write_all(json.as_bytes())?;
    file.write_all(b"\n")?;
    // Durable, so that after a power loss the file still says who had the store.
    file.sync_data()
}

/// The holder of a lock we could not take. It may be between taking the flock and writing
/// its name, so an empty file is read again a few times before giving up.
fn read_live_holder(path: &Path) -> LockHolder {
    for _ in 0..20 {
        if let Ok(text) = std::fs::read_to_string(path)
            && let Some(holder) = LockHolder::parse(&text)
        {
            return holder;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    LockHolder::unknown()
}
