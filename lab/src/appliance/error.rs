//! What can go wrong when starting, driving or reading an appliance lab.

use std::path::PathBuf;

/// An error of the appliance lab (its processes, files and controls).
#[derive(Debug, thiserror::Error)]
pub enum ApplianceError {
    /// The lab creates mount, UTS and PID namespaces, which needs root.
    #[error(
        "the appliance lab needs root: every simulated appliance runs in its own mount, UTS and PID namespace (unshare, bind mounts, hostname); run the tests as root"
    )]
    NotRoot,
    /// The options make no sense (no nodes, a bad host name, an unknown host...).
    #[error("invalid appliance lab options: {0}")]
    InvalidOptions(String),
    /// A file of the lab could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A file of the lab holds something this version cannot read.
    #[error("{path}: {message}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// An external program (ssh-keygen, unshare, sshd) failed or could not be started.
    #[error("{program}: {message}")]
    Program {
        /// The program.
        program: String,
        /// What happened (its stderr, or why it could not run).
        message: String,
    },
    /// The `lab` binary, which provides the simulated Rok tools, was not found.
    #[error(
        "cannot find the `lab` binary that provides the simulated Rok tools (build it with `cargo build -p rok-plan-lab --bin lab`, or set ROK_LAB_BIN); tried: {tried}"
    )]
    LabBinaryNotFound {
        /// Every path that was tried, comma separated.
        tried: String,
    },
    /// An sshd did not accept connections in time, or exited while starting.
    #[error("appliance {host}: sshd did not come up: {message}")]
    SshdNotReady {
        /// The appliance.
        host: String,
        /// Why (the tail of its log, or a timeout).
        message: String,
    },
    /// No appliance has that name.
    #[error("no appliance named {0:?} in this lab")]
    UnknownHost(String),
    /// `rok-cluster-upgrade-ganeti` cannot do a step in the simulated Ganeti cluster's
    /// current state (not the RokE master, no host to evacuate to, a host is down...).
    #[error("{0}")]
    GanetiRefused(String),
    /// A version string is not `MAJOR.MINOR.PATCH`.
    #[error("not a version (MAJOR.MINOR.PATCH): {0:?}")]
    BadVersion(String),
}

impl ApplianceError {
    /// An [`ApplianceError::Io`] for `path`.
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}
