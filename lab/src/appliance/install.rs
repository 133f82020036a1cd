//! What an appliance's disks hold: its `/etc/rok` (daemons.conf) and its
//! `/usr/local/sbin` with the simulated Rok tools of its BOOT image.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::error::ApplianceError;
use super::paths::{LabPaths, TOOL_CONTEXT_FILE};
use super::version::Version;

/// The tools every image has; plus `rok-cluster-upgrade-vIMAGE`.
pub const COMMON_TOOLS: &[&str] = &[
    "rok-cluster-ctl",
    "rok-config",
    "rok-composer-tool",
    "rok-cluster-gc",
    "rok-gw-manage",
    "rok-gw-service",
    "gunicorn",
];

/// The tools of a physical Ganeti host (first on PATH: its own `/usr/local/sbin`).
pub const PNODE_TOOLS: &[&str] = &["apt-get"];

/// What a tool reads to know where it runs (the hidden file in the bin directory).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolContext {
    /// The lab directory (state, faults, journal).
    pub lab_dir: std::path::PathBuf,
    /// The appliance the tool runs on.
    pub host: String,
}

/// Fills the bin directory of `host` with symlinks to `lab_bin` for the tools of `image`
/// (replacing those of an earlier image) and writes the tool context.
pub(crate) fn install_tools(
    paths: &LabPaths,
    host: &str,
    image: Version,
    lab_bin: &Path,
) -> Result<(), ApplianceError> {
    let bin = paths.bin_dir(host);
    std::fs::create_dir_all(&bin).map_err(|e| ApplianceError::io(&bin, e))?;
    let entries = std::fs::read_dir(&bin).map_err(|e| ApplianceError::io(&bin, e))?;
    for entry in entries.flatten() {
        let p = entry.path();
        if p.is_symlink() {
            std::fs::remove_file(&p).map_err(|e| ApplianceError::io(&p, e))?;
        }
    }
    let upgrade = image.upgrade_tool();
    for tool in COMMON_TOOLS.iter().copied().chain([upgrade.as_str()]) {
        let link = bin.join(tool);
        std::os::unix::fs::symlink(lab_bin, &link).map_err(|e| ApplianceError::io(&link, e))?;
    }
    let ctx = ToolContext {
        lab_dir: paths.root().to_path_buf(),
        host: host.to_string(),
    };
    super::state::write_json_atomic(&bin.join(TOOL_CONTEXT_FILE), &ctx)
}

/// Fills the bin directory of the physical Ganeti host `pnode` with its tools.
pub(crate) fn install_pnode_tools(
    paths: &LabPaths,
    pnode: &str,
    lab_bin: &Path,
) -> Result<(), ApplianceError> {
    let bin = paths.bin_dir(pnode);
    if bin.exists() {
        std::fs::remove_dir_all(&bin).map_err(|e| ApplianceError::io(&bin, e))?;
    }
    std::fs::create_dir_all(&bin).map_err(|e| ApplianceError::io(&bin, e))?;
    for tool in PNODE_TOOLS {
        let link = bin.join(tool);
        std::os::unix::fs::symlink(lab_bin, &link).map_err(|e| ApplianceError::io(&link, e))?;
    }
    let ctx = ToolContext {
        lab_dir: paths.root().to_path_buf(),
        host: pnode.to_string(),
    };
    super::state::write_json_atomic(&bin.join(TOOL_CONTEXT_FILE), &ctx)
}

/// Writes `/etc/rok/daemons.conf` of a new host.
pub(crate) fn write_etc_rok(
    paths: &LabPaths,
    host: &str,
    daemons_conf: &str,
) -> Result<(), ApplianceError> {
    let dir = paths.etc_rok(host);
    std::fs::create_dir_all(&dir).map_err(|e| ApplianceError::io(&dir, e))?;
    let file = dir.join("daemons.conf");
    std::fs::write(&file, daemons_conf).map_err(|e| ApplianceError::io(&file, e))
}
