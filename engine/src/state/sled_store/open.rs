//! Opening sled without ever damaging a store that is not sound.
//!
//! sled 0.34 has no read-only open (sled#1517), and its recovery *writes*: it overwrites a
//! `conf` of 8 bytes or less, zeroes log segments it cannot read and the tail after the last
//! record it can, writes a new snapshot and deletes the old ones. On a damaged store that is
//! a silent "repair" that destroys what was there. So an existing store is first checked
//! (cheap structural checks, then a trial open of a *copy* in the temp directory, which must
//! show our format marker); only a store that passes is opened in place. sled can also panic
//! on damaged files (sled#1410): every call into it goes through [`guard`].

use std::cell::Cell;
use std::fs;
use std::io::{ErrorKind, Read};
use std::path::{Path, PathBuf};
use std::sync::Once;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::state::StoreError;

use super::clean;

/// The tree holding the format marker.
pub(super) const META_TREE: &str = "meta";
/// The marker's key.
pub(super) const FORMAT_KEY: &str = "format";
/// The marker's value: written when the store is created, required to open it.
pub(super) const FORMAT: &str = r#"{"v":1,"store":"rok-plan","backend":"sled-0.34"}"#;
/// Present while a store is being created: a `db` next to it holds no runs yet.
const CREATING: &str = "db.creating";
/// How long to wait for sled's own flock on `db/db` once we hold our lock: sled's drop does
/// not release it at once (sled#1289), so a reopen in the same process may briefly find it.
const SLED_LOCK_WAIT: Duration = Duration::from_secs(5);

thread_local! {
    static QUIET: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f`, turning a panic into [`StoreError::Corrupt`]. The panic message is not printed
/// (the error carries it): a panic hook that defers to the previous one, except on a
/// thread inside `guard`, is installed once.
pub(super) fn guard<T>(
    path: &Path,
    f: impl FnOnce() -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !QUIET.with(Cell::get) {
                previous(info);
            }
        }));
    });
    let was = QUIET.with(|q| q.replace(true));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    QUIET.with(|q| q.set(was));
    result.unwrap_or_else(|payload| {
        let msg = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        Err(StoreError::Corrupt {
            path: path.to_path_buf(),
            detail: format!("the database engine failed reading it ({msg})"),
        })
    })
}

/// Maps a sled error: I/O stays I/O, anything else means the files are not a sound store.
pub(super) fn sled_error(path: &Path, e: sled::Error) -> StoreError {
    match e {
        sled::Error::Io(source) => StoreError::Io {
            path: path.to_path_buf(),
            source,
        },
        sled::Error::Corruption { at, .. } => StoreError::Corrupt {
            path: path.to_path_buf(),
            detail: match at {
                Some(at) => format!("sled found damaged data in its log (at {at:?})"),
                None => "sled found damaged data in its log or snapshot".into(),
            },
        },
        other => StoreError::Corrupt {
            path: path.to_path_buf(),
            detail: other.to_string(),
        },
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn corrupt(path: &Path, detail: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        path: path.to_path_buf(),
        detail: detail.into(),
    }
}

/// Opens (creating when absent) the sled database `<dir>/db`. The caller holds the lock.
pub(super) fn open_db(dir: &Path) -> Result<sled::Db, StoreError> {
    let db_path = dir.join("db");
    // Following a symlink: `db` may be moved elsewhere on purpose.
    match fs::metadata(&db_path) {
        Err(e) if e.kind() == ErrorKind::NotFound => create(dir),
        Err(e) => Err(io(&db_path)(e)),
        Ok(m) if !m.is_dir() => Err(corrupt(
            &db_path,
            "`db` is not a directory, so it is not a rok-plan store",
        )),
        Ok(_) => {
            if fs::symlink_metadata(dir.join(CREATING)).is_ok() {
                // Our own creation was interrupted before the marker was durable: nothing
                // but an empty database can be there.
                fs::remove_dir_all(&db_path).map_err(io(&db_path))?;
                return create(dir);
            }
            preflight(&db_path)?;
            let expected = clean::read(dir)?;
            verify_copy(&db_path, expected.as_ref())?;
            clean::remove(dir)?;
            let db = open_sled(&db_path, false)?;
            check_marker(&db, &db_path)?;
            Ok(db)
        }
    }
}

/// Whether `<dir>` holds a store (a `db` entry, sound or not).
pub(super) fn store_exists(dir: &Path) -> Result<bool, StoreError> {
    let db_path = dir.join("db");
    match fs::symlink_metadata(&db_path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io(&db_path)(e)),
    }
}

fn create(dir: &Path) -> Result<sled::Db, StoreError> {
    let creating = dir.join(CREATING);
    let db_path = dir.join("db");
    fs::File::create(&creating)
        .and_then(|f| f.sync_all())
        .map_err(io(&creating))?;
    sync_dir(dir)?;
    let db = open_sled(&db_path, false)?;
    guard(&db_path, || {
        for tree in [META_TREE, "runs", "steps", "approvals", "output"] {
            let t = db.open_tree(tree).map_err(|e| sled_error(&db_path, e))?;
            if tree == META_TREE {
                t.insert(FORMAT_KEY, FORMAT)
                    .map_err(|e| sled_error(&db_path, e))?;
            }
        }
        db.flush().map_err(|e| sled_error(&db_path, e))?;
        Ok(())
    })?;
    sync_file(&db_path.join("db"))?;
    sync_dir(&db_path)?;
    fs::remove_file(&creating).map_err(io(&creating))?;
    sync_dir(dir)?;
    Ok(db)
}

/// fdatasync of a file (sled's flush only does `sync_file_range`, which does not flush the
/// disk's cache or the file's size).
pub(super) fn sync_file(path: &Path) -> Result<(), StoreError> {
    fs::File::open(path)
        .and_then(|f| f.sync_data())
        .map_err(io(path))
}

fn sync_dir(path: &Path) -> Result<(), StoreError> {
    fs::File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(io(path))
}

/// Cheap checks of what sled would otherwise "repair": `conf` must be sound (sled rewrites
/// one of 8 bytes or less and only warns about a bad checksum), the log `db` must be a
/// non-empty file, and everything must be readable.
fn preflight(db_path: &Path) -> Result<(), StoreError> {
    let entries = fs::read_dir(db_path).map_err(io(db_path))?;
    for entry in entries {
        let entry = entry.map_err(io(db_path))?;
        // Reading every entry's type finds unreadable or odd entries before sled does.
        entry.file_type().map_err(io(&entry.path()))?;
    }
    // sled writes snapshots into the directory while opening: a directory it cannot
    // write would fail half-way through.
    writable(db_path)?;
    let conf = db_path.join("conf");
    let bytes = match fs::read(&conf) {
        Ok(b) => b,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            return Err(corrupt(db_path, "sled's `conf` file is missing"));
        }
        Err(e) => return Err(io(&conf)(e)),
    };
    if bytes.len() <= 8 {
        return Err(corrupt(db_path, "sled's `conf` file is truncated"));
    }
    let (body, crc) = bytes.split_at(bytes.len() - 4);
    let mut expected = [0u8; 4];
    expected.copy_from_slice(crc);
    if crc32(body) != u32::from_le_bytes(expected) {
        return Err(corrupt(db_path, "sled's `conf` file fails its checksum"));
    }
    let log = db_path.join("db");
    let meta = match fs::symlink_metadata(&log) {
        Ok(m) => m,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            return Err(corrupt(db_path, "sled's log file `db` is missing"));
        }
        Err(e) => return Err(io(&log)(e)),
    };
    if !meta.is_file() || meta.len() == 0 {
        return Err(corrupt(
            db_path,
            "sled's log file `db` is empty or not a file",
        ));
    }
    // sled needs it readable and writable; find out without changing it.
    fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&log)
        .and_then(|mut f| f.read(&mut [0u8; 1]))
        .map_err(io(&log))?;
    Ok(())
}

fn writable(path: &Path) -> Result<(), StoreError> {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c_path) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return Err(corrupt(path, "the path contains a NUL byte"));
    };
    // SAFETY: a valid NUL-terminated path; access only reads it.
    if unsafe { libc::access(c_path.as_ptr(), libc::R_OK | libc::W_OK | libc::X_OK) } != 0 {
        return Err(io(path)(std::io::Error::last_os_error()));
    }
    Ok(())
}

/// Opens a copy of the database in the temp directory and requires the format marker:
/// whatever sled's recovery does, it does to the copy.
/// With `expected` (the store was closed cleanly), the records read back must be exactly
/// those it held then.
fn verify_copy(db_path: &Path, expected: Option<&clean::Contents>) -> Result<(), StoreError> {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let scratch = std::env::temp_dir().join(format!(
        "rok-plan-verify-{}-{nanos}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let result = copy_dir(db_path, &scratch).and_then(|()| {
        let db = open_sled(&scratch, true)?;
        check_marker(&db, &scratch)?;
        if let Some(expected) = expected {
            let found = clean::contents(&db, &scratch)?;
            if found != *expected {
                let what = if found.records() == expected.records() {
                    "their contents read back differently".to_string()
                } else {
                    format!("{} read back", found.records())
                };
                return Err(corrupt(
                    &scratch,
                    format!(
                        "it was closed cleanly holding {} records, but {what}: its files were \
                         damaged since (sled alone would keep what comes before the damage)",
                        expected.records(),
                    ),
                ));
            }
        }
        Ok(())
    });
    // sled removes a temporary database when its last handle goes; this is in case it
    // failed before that.
    let _ = fs::remove_dir_all(&scratch);
    // Errors name the store, not the scratch copy.
    result.map_err(|e| match e {
        StoreError::Corrupt { detail, .. } => corrupt(db_path, detail),
        StoreError::Codec { detail, .. } => corrupt(db_path, detail),
        StoreError::Io { path, source } if path.starts_with(&scratch) => {
            corrupt(db_path, format!("reading a trial copy failed: {source}"))
        }
        other => other,
    })
}

fn copy_dir(from: &Path, to: &Path) -> Result<(), StoreError> {
    fs::create_dir(to).map_err(io(to))?;
    for entry in fs::read_dir(from).map_err(io(from))? {
        let entry = entry.map_err(io(from))?;
        let src: PathBuf = entry.path();
        let dst = to.join(entry.file_name());
        let kind = entry.file_type().map_err(io(&src))?;
        if kind.is_dir() {
            copy_dir(&src, &dst)?;
        } else if kind.is_file() {
            fs::copy(&src, &dst).map_err(io(&src))?;
        } else {
            return Err(corrupt(
                from,
                format!("unexpected entry `{}`", src.display()),
            ));
        }
    }
    Ok(())
}

fn open_sled(path: &Path, temporary: bool) -> Result<sled::Db, StoreError> {
    let deadline = Instant::now() + SLED_LOCK_WAIT;
    loop {
        let config = sled::Config::new().path(path).temporary(temporary);
        let result = guard(path, || config.open().map_err(|e| sled_error(path, e)));
        match result {
            // We hold our own lock, so sled's is only held by a handle of ours being
            // dropped (sled#1289) or a process that is exiting: wait for it.
            Err(StoreError::Io { ref source, .. })
                if source.to_string().contains("could not acquire lock")
                    && Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(10));
            }
            other => return other,
        }
    }
}

fn check_marker(db: &sled::Db, path: &Path) -> Result<(), StoreError> {
    guard(path, || {
        let names = db.tree_names();
        // `open_tree` would create the tree: look before touching.
        if !names.iter().any(|n| n.as_ref() == META_TREE.as_bytes()) {
            return Err(corrupt(
                path,
                "it is not a rok-plan store (no format marker); it was left as it is",
            ));
        }
        let meta = db.open_tree(META_TREE).map_err(|e| sled_error(path, e))?;
        match meta.get(FORMAT_KEY).map_err(|e| sled_error(path, e))? {
            Some(v) if v.as_ref() == FORMAT.as_bytes() => Ok(()),
            Some(v) => Err(corrupt(
                path,
                format!(
                    "unknown store format {}; it was left as it is",
                    String::from_utf8_lossy(&v)
                ),
            )),
            None => Err(corrupt(
                path,
                "it is not a rok-plan store (no format marker); it was left as it is",
            )),
        }
    })
}

/// CRC-32 (IEEE), as sled's `conf` checksum (crc32fast) computes it.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(super::crc32(b"123456789"), 0xCBF4_3926);
    }
}
