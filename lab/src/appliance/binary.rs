//! Finding the `lab` binary, which is also every simulated Rok tool (a multi-call program:
//! each appliance's bin directory holds symlinks to it named after the tools).

use std::path::{Path, PathBuf};

use super::error::ApplianceError;

/// The environment variable that names the `lab` binary explicitly.
pub const LAB_BIN_ENV: &str = "ROK_LAB_BIN";

/// The `lab` binary: `$ROK_LAB_BIN`, else this executable if it is `lab`, else `lab` next
/// to it or one directory up (integration tests run from `target/debug/deps/`, and
/// `cargo nextest run --workspace` / `cargo test` build the workspace's binaries).
pub fn lab_binary() -> Result<PathBuf, ApplianceError> {
    let mut tried = Vec::new();
    if let Some(p) = std::env::var_os(LAB_BIN_ENV) {
        let p = PathBuf::from(p);
        if is_executable(&p) {
            return Ok(p);
        }
        tried.push(format!("${LAB_BIN_ENV}={}", p.display()));
    }
    match std::env::current_exe() {
        Ok(exe) => {
            if exe.file_name().is_some_and(|n| n == "lab") {
                return Ok(exe);
            }
            tried.push(format!("{} (this program)", exe.display()));
            if let Some(dir) = exe.parent() {
                for candidate in [dir.join("../lab"), dir.join("lab")] {
                    if is_executable(&candidate) {
                        return Ok(candidate.canonicalize().unwrap_or(candidate));
                    }
                    tried.push(candidate.display().to_string());
                }
            }
        }
        Err(e) => tried.push(format!("the current executable ({e})")),
    }
    Err(ApplianceError::LabBinaryNotFound {
        tried: tried.join(", "),
    })
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}
