//! One multiplexed master connection per host, shared by every step on that host.

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use openssh::{ControlPersist, KnownHosts, Session, SessionBuilder};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::error::connect_error;
use super::options::{HostKeyChecking, SshOptions};

/// A session to run one command on, and the permit that keeps the host under its
/// session limit while it runs.
pub(crate) struct Lease {
    pub(crate) session: Arc<Session>,
    _permit: OwnedSemaphorePermit,
}

/// One host's master connection (made on first use, remade when it went away).
struct HostSlot {
    master: tokio::sync::Mutex<Option<Arc<Session>>>,
    permits: Arc<Semaphore>,
}

/// The master connections of a run.
pub(crate) struct SessionPool {
    options: SshOptions,
    hosts: Mutex<HashMap<(String, HostKeyChecking), Arc<HostSlot>>>,
    /// Set when the run is over: a connection finished afterwards is closed at once.
    closed: AtomicBool,
}

impl SessionPool {
    pub(crate) fn new(options: SshOptions) -> Self {
        Self {
            options,
            hosts: Mutex::default(),
            closed: AtomicBool::new(false),
        }
    }

    pub(crate) fn options(&self) -> &SshOptions {
        &self.options
    }

    fn slot(&self, host: &str, checking: HostKeyChecking) -> Result<Arc<HostSlot>, String> {
        let mut hosts = self
            .hosts
            .lock()
            .map_err(|_| "ssh: the session table is poisoned".to_string())?;
        Ok(hosts
            .entry((host.to_string(), checking))
            .or_insert_with(|| {
                Arc::new(HostSlot {
                    master: tokio::sync::Mutex::new(None),
                    permits: Arc::new(Semaphore::new(self.options.max_sessions_per_host.max(1))),
                })
            })
            .clone())
    }

    /// Opens the master connection to `host` unless one is up. Errors are left for the
    /// step that needs the host to report (it connects again).
    pub(crate) async fn warm(&self, host: &str, checking: HostKeyChecking) {
        let Ok(slot) = self.slot(host, checking) else {
            return;
        };
        let mut master = slot.master.lock().await;
        if master.is_some() || self.closed.load(Ordering::SeqCst) {
            return;
        }
        if let Ok(session) = self.connect(host, checking).await {
            if self.closed.load(Ordering::SeqCst) {
                let _ = session.close().await;
            } else {
                *master = Some(Arc::new(session));
            }
        }
    }

    /// A session on `host`, waiting while the host already runs its share of commands.
    pub(crate) async fn lease(
        &self,
        host: &str,
        checking: HostKeyChecking,
    ) -> Result<Lease, String> {
        let slot = self.slot(host, checking)?;
        let permit = slot
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| "ssh: the session limit is closed".to_string())?;
        let mut master = slot.master.lock().await;
        if let Some(session) = master.as_ref()
            && session.check().await.is_ok()
        {
            return Ok(Lease {
                session: session.clone(),
                _permit: permit,
            });
        }
        // Gone (idle timeout, dropped link) or never made: (re)connect.
        let session = Arc::new(self.connect(host, checking).await?);
        *master = Some(session.clone());
        Ok(Lease {
            session,
            _permit: permit,
        })
    }

    async fn connect(&self, host: &str, checking: HostKeyChecking) -> Result<Session, String> {
        let o = &self.options;
        let root = match &o.control_dir {
            Some(d) => d.clone(),
            None => default_control_dir(),
        };
        create_private_dir(&root).map_err(|e| {
            format!(
                "ssh {host}: cannot create the control directory {}: {e}",
                root.display()
            )
        })?;
        // One directory per process: openssh's own history cleaning would remove the
        // directories of connections being made at the same moment by other steps.
        remove_dead_runs(&root);
        let dir = root.join(std::process::id().to_string());
        create_private_dir(&dir).map_err(|e| {
            format!(
                "ssh {host}: cannot create the control directory {}: {e}",
                dir.display()
            )
        })?;
        let mut b = SessionBuilder::default();
        b.known_hosts_check(match checking {
            HostKeyChecking::Strict => KnownHosts::Strict,
            HostKeyChecking::AcceptNew => KnownHosts::Add,
        })
        .control_directory(&dir)
        .connect_timeout(o.connect_timeout)
        .server_alive_interval(std::time::Duration::from_secs(15))
        .control_persist(ControlPersist::IdleFor(
            NonZeroUsize::new(
                usize::try_from(o.idle_timeout.as_secs())
                    .unwrap_or(60)
                    .max(1),
            )
            .unwrap_or(NonZeroUsize::MIN),
        ));
        if let Some(cfg) = &o.config_file {
            b.config_file(cfg);
        }
        b.connect_mux(host)
            .await
            .map_err(|e| connect_error(host, &e))
    }

    /// Closes every master connection (the run is over).
    pub(crate) async fn close_all(&self) {
        self.closed.store(true, Ordering::SeqCst);
        let slots: Vec<Arc<HostSlot>> = match self.hosts.lock() {
            Ok(mut hosts) => hosts.drain().map(|(_, s)| s).collect(),
            Err(_) => return,
        };
        for slot in slots {
            let session = slot.master.lock().await.take();
            if let Some(session) = session
                && let Ok(session) = Arc::try_unwrap(session)
            {
                // A master that cannot be closed exits on its own after the idle timeout.
                let _ = session.close().await;
            }
        }
    }
}

/// `$TMPDIR/rok-plan-ssh-UID`: short enough for a unix socket path, private to the user.
fn default_control_dir() -> std::path::PathBuf {
    // SAFETY: getuid(2) cannot fail and has no memory effects.
    let uid = unsafe { libc::getuid() };
    std::env::temp_dir().join(format!("rok-plan-ssh-{uid}"))
}

/// Removes the control directories of processes that are gone (a run killed with
/// SIGKILL); their masters exit by themselves once idle.
fn remove_dead_runs(root: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<libc::pid_t>().ok())
        else {
            continue;
        };
        // SAFETY: kill(2) with signal 0 only checks that the process exists.
        let alive = unsafe { libc::kill(pid, 0) } == 0
            || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
        if !alive {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

fn create_private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let meta = std::fs::metadata(dir)?;
    // SAFETY: as above.
    let uid = unsafe { libc::getuid() };
    if meta.uid() != uid {
        return Err(std::io::Error::other(
            "it belongs to another user (control sockets must be private)",
        ));
    }
    if meta.permissions().mode() & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}
