//! ed25519 keys made with ssh-keygen: host keys, the lab's client key, and the wrong keys
//! that `known_hosts` gets for changed-host-key tests.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::error::ApplianceError;

/// Makes every key in `keys` (private key path, comment) at once, skipping keys that
/// already exist (a lab directory reused by `up` keeps its host keys).
pub(crate) fn generate(keys: &[(PathBuf, String)]) -> Result<(), ApplianceError> {
    let mut running = Vec::new();
    for (path, comment) in keys.iter().filter(|(p, _)| !p.exists()) {
        let child = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
            .arg(path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| ApplianceError::Program {
                program: "ssh-keygen".into(),
                message: e.to_string(),
            })?;
        running.push((path, child));
    }
    for (path, child) in running {
        let out = child
            .wait_with_output()
            .map_err(|e| ApplianceError::Program {
                program: "ssh-keygen".into(),
                message: e.to_string(),
            })?;
        if !out.status.success() {
            return Err(ApplianceError::Program {
                program: "ssh-keygen".into(),
                message: format!(
                    "{}: {}",
                    path.display(),
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
            });
        }
    }
    Ok(())
}

/// The public half of the key at `private` as `TYPE BASE64` (no comment).
pub(crate) fn public_key(private: &Path) -> Result<String, ApplianceError> {
    let path = PathBuf::from(format!("{}.pub", private.display()));
    let text = std::fs::read_to_string(&path).map_err(|e| ApplianceError::io(&path, e))?;
    let mut fields = text.split_whitespace();
    match (fields.next(), fields.next()) {
        (Some(kind), Some(b64)) => Ok(format!("{kind} {b64}")),
        _ => Err(ApplianceError::Corrupt {
            path,
            message: "not an ssh public key".into(),
        }),
    }
}
