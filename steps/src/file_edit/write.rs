//! Replacing a file's content atomically, keeping its mode and owner, and only if it is
//! still what was read.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Why the file was not written.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WriteError {
    /// An I/O error.
    #[error("{what} `{}`: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Someone else changed the file after it was read.
    #[error("`{}` changed while it was being edited; nothing was written (run the step again to edit the new content)", .0.display())]
    Changed(PathBuf),
}

fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> WriteError + use<> {
    let path = path.to_path_buf();
    move |source| WriteError::Io { what, path, source }
}

/// Reads `path` as text.
pub(crate) fn read(path: &Path) -> Result<String, WriteError> {
    let mut text = String::new();
    File::open(path)
        .and_then(|mut f| f.read_to_string(&mut text))
        .map_err(io("cannot read", path))?;
    Ok(text)
}

/// Writes `new` to `path` in place of `old` (what was read): a temporary file beside it,
/// fsync'ed, with the original's mode and owner, renamed over it, the directory fsync'ed.
/// `before_rename` runs just before the final check (tests use it to change the file).
pub(crate) fn replace(
    path: &Path,
    old: &str,
    new: &str,
    backup: Option<&Path>,
    before_rename: impl FnOnce(),
) -> Result<(), WriteError> {
    let meta = std::fs::metadata(path).map_err(io("cannot stat", path))?;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.rok-plan-{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(meta.permissions().mode())
            .open(&tmp)
            .map_err(io("cannot create", &tmp))?;
        f.write_all(new.as_bytes())
            .map_err(io("cannot write", &tmp))?;
        // Keep the owner (when we may: root, or the same owner anyway).
        let _ = std::os::unix::fs::fchown(&f, Some(meta.uid()), Some(meta.gid()));
        f.set_permissions(meta.permissions())
            .map_err(io("cannot set the mode of", &tmp))?;
        f.sync_all().map_err(io("cannot sync", &tmp))?;
        if let Some(b) = backup {
            std::fs::write(b, old).map_err(io("cannot write the backup", b))?;
            let _ = std::fs::set_permissions(b, meta.permissions());
        }
        before_rename();
        // The last look: a file that is not what was read is not overwritten.
        if read(path)? != old {
            return Err(WriteError::Changed(path.to_path_buf()));
        }
        std::fs::rename(&tmp, path).map_err(io("cannot replace", path))?;
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
