//! The operator's ssh settings for a run (flags, not the plan).

use std::path::PathBuf;
use std::time::Duration;

/// How unknown host keys are treated. A changed key is refused by both.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HostKeyChecking {
    /// The host key must already be in known_hosts (`StrictHostKeyChecking=yes`).
    #[default]
    Strict,
    /// An unknown host key is recorded in known_hosts (`StrictHostKeyChecking=accept-new`).
    AcceptNew,
}

impl HostKeyChecking {
    /// The word of the plan field `host_key_checking` and of the run's settings.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Strict => "yes",
            Self::AcceptNew => "accept-new",
        }
    }

    /// Parses a plan's `host_key_checking` value.
    pub fn parse(word: &str) -> Option<Self> {
        match word {
            "yes" => Some(Self::Strict),
            "accept-new" => Some(Self::AcceptNew),
            _ => None,
        }
    }
}

/// ssh settings for every `ssh` step (and `file.edit` with `host`) of a run.
#[derive(Clone, Debug)]
pub struct SshOptions {
    /// An ssh_config file used instead of `~/.ssh/config` (`ssh -F`).
    pub config_file: Option<PathBuf>,
    /// The default host key policy; a step's `host_key_checking` may only loosen it to
    /// `accept-new` where the plan says so.
    pub host_key_checking: HostKeyChecking,
    /// Commands at once per host. sshd refuses sessions beyond its `MaxSessions`
    /// (default 10) on one connection, so stay below it.
    pub max_sessions_per_host: usize,
    /// Where master connections keep their control sockets (default: a directory under
    /// the system's temporary directory; the socket path must stay under 108 bytes).
    pub control_dir: Option<PathBuf>,
    /// How long a master connection stays up with nothing running on it. Bounds how long
    /// a master outlives a run killed with SIGKILL; the next command reconnects.
    pub idle_timeout: Duration,
    /// How long connecting may take.
    pub connect_timeout: Duration,
    /// After a cancel (timeout, Ctrl-C), how long the remote command gets between SIGTERM
    /// and SIGKILL.
    pub kill_grace: Duration,
}

impl Default for SshOptions {
    fn default() -> Self {
        Self {
            config_file: None,
            host_key_checking: HostKeyChecking::Strict,
            max_sessions_per_host: 8,
            control_dir: None,
            idle_timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(20),
            kill_grace: Duration::from_secs(5),
        }
    }
}
