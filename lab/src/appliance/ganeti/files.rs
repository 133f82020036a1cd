//! The files of a physical Ganeti host that the procedure edits: the `*kvm*` scripts in
//! `/usr/bin`, `/etc/ganeti/rok/rok.conf` and `/etc/default/snf-image`, all pointing at
//! the RokE master's OpenStore with `tcp:` endpoints before the upgrade (seed 003:
//! `sed -i 's/tcp:/http:/g' /usr/bin/*kvm* /etc/ganeti/rok/rok.conf /etc/default/snf-image`).
//!
//! They live in the upper layers of the overlays the host mounts over `/usr/bin` and
//! `/etc`, so the lab reads and checks them from outside, even while the host is off.

use std::path::{Path, PathBuf};

use super::super::error::ApplianceError;
use super::super::paths::LabPaths;

/// The `*kvm*` scripts of a physical host, by file name in `/usr/bin`.
pub const KVM_SCRIPTS: &[&str] = &["kvm", "kvm-ifup-rok"];

/// `/etc/ganeti/rok/rok.conf`, relative to `/etc`.
pub const ROK_CONF: &str = "ganeti/rok/rok.conf";

/// `/etc/default/snf-image`, relative to `/etc`.
pub const SNF_IMAGE: &str = "default/snf-image";

/// Where the file a physical host sees at `path` (absolute, under `/usr/bin` or `/etc`)
/// lives in the lab directory; `None` for other paths (they are the machine's own).
pub(crate) fn host_file(paths: &LabPaths, pnode: &str, path: &str) -> Option<PathBuf> {
    if let Some(rest) = path.strip_prefix("/usr/bin/") {
        return Some(paths.pnode_usr_bin(pnode).join(rest));
    }
    path.strip_prefix("/etc/")
        .map(|rest| paths.pnode_etc(pnode).join(rest))
}

/// The three places the procedure edits, as the host sees them.
pub fn edited_paths() -> Vec<String> {
    let mut v: Vec<String> = KVM_SCRIPTS
        .iter()
        .map(|s| format!("/usr/bin/{s}"))
        .collect();
    v.push(format!("/etc/{ROK_CONF}"));
    v.push(format!("/etc/{SNF_IMAGE}"));
    v
}

fn write(path: &Path, text: &str, mode: u32) -> Result<(), ApplianceError> {
    use std::os::unix::fs::PermissionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| ApplianceError::io(dir, e))?;
    }
    std::fs::write(path, text).map_err(|e| ApplianceError::io(path, e))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| ApplianceError::io(path, e))
}

/// Writes the pre-upgrade files of `pnode` (endpoints of the RokE master `roke`, a host
/// name) and empties its overlay work directories.
pub(crate) fn write_initial_files(
    paths: &LabPaths,
    pnode: &str,
    roke: &str,
) -> Result<(), ApplianceError> {
    for dir in [paths.pnode_usr_bin(pnode), paths.pnode_etc(pnode)] {
        // A fresh disk: files of an earlier lab in this directory go.
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(|e| ApplianceError::io(&dir, e))?;
        }
        std::fs::create_dir_all(&dir).map_err(|e| ApplianceError::io(&dir, e))?;
    }
    let work = paths.pnode_overlay_work(pnode);
    if work.exists() {
        std::fs::remove_dir_all(&work).map_err(|e| ApplianceError::io(&work, e))?;
    }
    for sub in ["usr-bin", "etc"] {
        let d = work.join(sub);
        std::fs::create_dir_all(&d).map_err(|e| ApplianceError::io(&d, e))?;
    }
    let bin = paths.pnode_usr_bin(pnode);
    write(
        &bin.join("kvm"),
        &format!(
            "#!/bin/sh\n# KVM wrapper of the Rok Ganeti integration on {pnode} (simulated by rok-plan-lab)\n\
             ROK_OPENSTORE_ENDPOINT=tcp://{roke}:7400\nexport ROK_OPENSTORE_ENDPOINT\n\
             exec qemu-system-x86_64 -enable-kvm \"$@\"\n"
        ),
        0o755,
    )?;
    write(
        &bin.join("kvm-ifup-rok"),
        &format!(
            "#!/bin/sh\n# Rok network hook of KVM instances on {pnode} (simulated by rok-plan-lab)\n\
             OPENSTORE_CONTROLLER=tcp://{roke}:7402\n\
             echo \"rok: $1 up, controller $OPENSTORE_CONTROLLER\"\n"
        ),
        0o755,
    )?;
    let etc = paths.pnode_etc(pnode);
    write(
        &etc.join(ROK_CONF),
        &format!(
            "# Rok storage for Ganeti instances on {pnode}\n[openstore]\n\
             endpoint = tcp://{roke}:7400\ncontroller = tcp://{roke}:7402\n"
        ),
        0o644,
    )?;
    write(
        &etc.join(SNF_IMAGE),
        &format!(
            "# snf-image defaults on {pnode}\nIMAGE_DIR=/var/lib/snf-image\n\
             ROK_OPENSTORE_URL=\"tcp://{roke}:7401\"\n"
        ),
        0o644,
    )
}

/// The lines that still hold a `tcp:` endpoint in the edited files of `pnode`, as
/// `PATH: LINE` (a missing file counts as one such line: it was lost, not fixed).
pub(crate) fn tcp_endpoints(paths: &LabPaths, pnode: &str) -> Vec<String> {
    let mut left = Vec::new();
    for path in edited_paths() {
        let Some(file) = host_file(paths, pnode, &path) else {
            continue;
        };
        match std::fs::read_to_string(&file) {
            Ok(text) => left.extend(
                text.lines()
                    .filter(|l| l.contains("tcp:"))
                    .map(|l| format!("{path}: {l}")),
            ),
            Err(e) => left.push(format!("{path}: cannot read: {e}")),
        }
    }
    left
}
