//! One running appliance: `unshare` makes its mount, UTS and PID namespaces, a shell
//! inside sets the hostname and bind-mounts the host's own `/etc/rok`, `/usr/local/sbin`
//! and empty shell start-up files, then becomes sshd (PID 1 of the namespace). Killing
//! that PID 1 makes the kernel kill everything else in the namespace, including commands
//! that left sshd's process group with setsid, which is how a host is powered off.

use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::error::ApplianceError;
use super::paths::LabPaths;
use super::spawner;

/// The shell that runs as the namespace's first process. Arguments: $1 hostname, $2 the
/// host's /etc/rok, $3 its bin dir, $4 the empty file, $5 the login user's home, $6 the
/// sshd_config, $7 "gateway" when it starts the simulated Gateway.
const BOOT_SCRIPT: &str = r#"set -e
hostname "$1"
# sshd's privilege separation directory, as the Debian package makes it.
[ -d /run/sshd ] || mkdir -p /run/sshd
mount --bind "$2" /etc/rok
mount --bind "$3" /usr/local/sbin
# The login shell reads these for every ssh command (bash does for sshd); they are
# the machine's, not the appliance's, and cost time the lab must not measure.
for f in "$5/.bashrc" "$5/.profile" "$5/.bash_profile" "$5/.bash_login"; do
  if [ -f "$f" ]; then mount --bind "$4" "$f"; fi
done
if [ "$7" = gateway ]; then
  setsid /usr/local/sbin/gunicorn </dev/null >/dev/null 2>&1 &
fi
exec /usr/sbin/sshd -D -e -f "$6"
"#;

/// The shell that runs as a physical Ganeti host's first process. Arguments: $1 hostname,
/// $2 the lab's upper layer for /usr/bin, $3 for /etc, $4 the overlays' work directory,
/// $5 its bin dir, $6 the empty file, $7 the login user's home, $8 the sshd_config.
/// The overlays show the machine's /usr/bin and /etc with the host's own files on top;
/// what the host changes there lands in the lab directory. (Mounts under the machine's
/// /etc, such as a container's /etc/hosts, are hidden by the overlay: sshd does not
/// resolve names, UseDNS no.)
const PNODE_BOOT_SCRIPT: &str = r#"set -e
hostname "$1"
[ -d /run/sshd ] || mkdir -p /run/sshd
mount -t overlay rok-lab-usr-bin -o "lowerdir=/usr/bin,upperdir=$2,workdir=$4/usr-bin" /usr/bin
mount -t overlay rok-lab-etc -o "lowerdir=/etc,upperdir=$3,workdir=$4/etc" /etc
mount --bind "$5" /usr/local/sbin
for f in "$7/.bashrc" "$7/.profile" "$7/.bash_profile" "$7/.bash_login"; do
  if [ -f "$f" ]; then mount --bind "$6" "$f"; fi
done
exec /usr/sbin/sshd -D -e -f "$8"
"#;

/// What kind of host boots.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HostKind {
    /// A Rok appliance; `gateway`: it starts the simulated Gateway.
    Appliance {
        /// It starts the simulated Gateway.
        gateway: bool,
    },
    /// A physical Ganeti host.
    Pnode,
}

/// Where a host runs, and who logs in.
#[derive(Clone, Debug)]
pub(crate) struct BootSpec {
    pub(crate) host: String,
    pub(crate) home: PathBuf,
    pub(crate) kind: HostKind,
    pub(crate) attached: bool,
}

/// The `unshare` process of a running host.
#[derive(Debug)]
pub(crate) struct HostProcess {
    /// Our child when started by this process; `None` after a detach.
    child: Option<Child>,
    pid: u32,
}

/// A process's start time (field 22 of /proc/PID/stat), to tell it from a reused PID.
pub(crate) fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_comm = &stat[stat.rfind(')')? + 2..];
    after_comm.split_whitespace().nth(19)?.parse().ok()
}

fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_comm = &stat[stat.rfind(')')? + 2..];
    after_comm.split_whitespace().nth(1)?.parse().ok()
}

fn is_gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // A zombie whose parent does not reap it (a detached unshare under a container's
        // init) runs nothing.
        Ok(stat) => stat
            .rfind(')')
            .and_then(|i| stat.get(i + 2..i + 3))
            .is_some_and(|state| state == "Z"),
    }
}

/// The children of `pid` (the namespace's PID 1 is unshare's only child).
fn children_of(pid: u32) -> Vec<u32> {
    let listed = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"));
    if let Ok(text) = listed {
        return text
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect();
    }
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| parent_of(*p) == Some(pid))
        .collect()
}

/// Kills the host whose `unshare` is `pid`: SIGKILL to the namespace's PID 1, after
/// which the kernel kills the rest of the namespace before PID 1 is reaped, and unshare
/// exits once it has reaped it. With `force` (or no PID 1 to find), unshare and its
/// process group get SIGKILL too.
pub(crate) fn kill_host_tree(pid: u32, force: bool) {
    let pid_t = |p: u32| libc::pid_t::try_from(p).unwrap_or(libc::pid_t::MAX);
    let inits = children_of(pid);
    for init in &inits {
        // SAFETY: kill with a valid signal has no memory effects.
        unsafe { libc::kill(pid_t(*init), libc::SIGKILL) };
    }
    if force || inits.is_empty() {
        // SAFETY: as above; a negative pid names the process group unshare leads.
        unsafe {
            libc::kill(-pid_t(pid), libc::SIGKILL);
            libc::kill(pid_t(pid), libc::SIGKILL);
        }
    }
}

impl HostProcess {
    /// Boots the host: starts its namespace and sshd (does not wait for sshd).
    pub(crate) fn boot(paths: &LabPaths, spec: &BootSpec) -> Result<Self, ApplianceError> {
        let log_path = paths.sshd_log(&spec.host);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| ApplianceError::io(&log_path, e))?;
        let log_err = log
            .try_clone()
            .map_err(|e| ApplianceError::io(&log_path, e))?;
        let mut cmd = Command::new("unshare");
        cmd.args([
            "--mount",
            "--uts",
            "--pid",
            "--fork",
            "--kill-child",
            "--mount-proc",
            "--propagation",
            "private",
            "--",
            "/bin/sh",
            "-c",
        ]);
        match spec.kind {
            HostKind::Appliance { gateway } => {
                cmd.args([BOOT_SCRIPT, "rok-lab-boot"])
                    .arg(&spec.host)
                    .arg(paths.etc_rok(&spec.host))
                    .arg(paths.bin_dir(&spec.host))
                    .arg(paths.empty_file())
                    .arg(&spec.home)
                    .arg(paths.sshd_config(&spec.host))
                    .arg(if gateway { "gateway" } else { "" });
            }
            HostKind::Pnode => {
                cmd.args([PNODE_BOOT_SCRIPT, "rok-lab-boot"])
                    .arg(&spec.host)
                    .arg(paths.pnode_usr_bin(&spec.host))
                    .arg(paths.pnode_etc(&spec.host))
                    .arg(paths.pnode_overlay_work(&spec.host))
                    .arg(paths.bin_dir(&spec.host))
                    .arg(paths.empty_file())
                    .arg(&spec.home)
                    .arg(paths.sshd_config(&spec.host));
            }
        }
        cmd.stdin(Stdio::null()).stdout(log).stderr(log_err);
        let child = spawner::spawn(cmd, spec.attached).map_err(|e| ApplianceError::Program {
            program: "unshare".into(),
            message: e.to_string(),
        })?;
        Ok(Self {
            pid: child.id(),
            child: Some(child),
        })
    }

    /// The unshare process's PID.
    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }

    /// Whether the host's processes are gone already (sshd exited by itself).
    pub(crate) fn has_exited(&mut self) -> bool {
        match &mut self.child {
            Some(c) => !matches!(c.try_wait(), Ok(None)),
            None => is_gone(self.pid),
        }
    }

    /// Powers the host off: every process of it is gone when this returns.
    pub(crate) fn kill(&mut self) {
        kill_host_tree(self.pid, false);
        if !self.wait_exit(Duration::from_secs(10)) {
            kill_host_tree(self.pid, true);
            self.wait_exit(Duration::from_secs(10));
        }
    }

    fn wait_exit(&mut self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            let gone = match &mut self.child {
                Some(c) => !matches!(c.try_wait(), Ok(None)),
                None => is_gone(self.pid),
            };
            if gone {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Leaves the host running; it no longer belongs to this handle.
    pub(crate) fn forget(mut self) {
        self.child = None;
    }
}

/// Waits until `pid` has exited (or is a zombie), at most `limit`.
pub(crate) fn wait_gone(pid: u32, limit: Duration) {
    let deadline = Instant::now() + limit;
    while !is_gone(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Whether an sshd answers on `port` with its `SSH-` banner.
pub(crate) fn answers_ssh(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    let mut buf = [0u8; 4];
    s.read_exact(&mut buf).is_ok() && &buf == b"SSH-"
}

/// The last lines of a log, for error messages.
pub(crate) fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(5)..].join(" | ")
}

/// A port on 127.0.0.1 that is free right now (never 22: the kernel hands out ephemeral
/// ports).
pub(crate) fn free_port() -> Result<u16, ApplianceError> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| ApplianceError::Program {
        program: "bind 127.0.0.1:0".into(),
        message: e.to_string(),
    })?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(|e| ApplianceError::Program {
            program: "bind 127.0.0.1:0".into(),
            message: e.to_string(),
        })
}
