//! [`ApplianceLab`]: starts the appliances (keys, configuration, namespaces, sshd), keeps
//! their processes, and powers them off on drop.

use std::collections::BTreeMap;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::binary::lab_binary;
use super::control::LabDir;
use super::error::ApplianceError;
use super::ganeti::write_ganeti_files;
use super::host::{BootSpec, HostKind, HostProcess, answers_ssh, free_port, log_tail, start_time};
use super::initial::{daemons_conf, initial_state};
use super::install::{install_tools, write_etc_rok};
use super::keys;
use super::manifest::{Manifest, ManifestHost};
use super::options::{ApplianceOptions, KnownHostEntry};
use super::params;
use super::paths::LabPaths;
use super::ssh_files::{self, HostEntry};
use super::state::{LabState, StateStore};
use super::user::{LoginUser, is_root, login_user};
use super::version::Version;

/// One host of a running lab: an appliance or a physical Ganeti host.
#[derive(Debug)]
struct Appliance {
    name: String,
    /// A physical Ganeti host, not an appliance.
    pnode: bool,
    port: u16,
    process: Mutex<Option<HostProcess>>,
}

/// A set of simulated Rok appliances, each a real sshd on 127.0.0.1 in its own mount,
/// UTS and PID namespaces, reachable as `ssh -F lab.ssh_config() NAME`; with
/// [`ApplianceOptions::ganeti`], also the physical Ganeti hosts they run on (same kind of
/// hosts, see [`pnodes`](Self::pnodes)).
///
/// Dropping it powers every appliance off (no process of the lab is left, the ports are
/// closed) and removes the directory if the lab made it; the appliances also die with
/// the process that started them, unless [`ApplianceOptions::detach`] is set.
/// File-level controls (state, faults, journal) come from [`LabDir`] through `Deref`.
#[derive(Debug)]
pub struct ApplianceLab {
    dir: LabDir,
    options: ApplianceOptions,
    hosts: Vec<Appliance>,
    user: LoginUser,
    lab_bin: PathBuf,
    known_hosts: Mutex<BTreeMap<String, KnownHostEntry>>,
    /// Kept for its Drop (removes the directory), after the hosts are down.
    tempdir: Option<tempfile::TempDir>,
    /// [`ApplianceLab::detach`] was called: drop leaves everything as it is.
    detached: bool,
}

impl Deref for ApplianceLab {
    type Target = LabDir;

    fn deref(&self) -> &LabDir {
        &self.dir
    }
}

fn validate(opts: &ApplianceOptions) -> Result<(), ApplianceError> {
    let bad = |m: String| Err(ApplianceError::InvalidOptions(m));
    if opts.hosts.is_empty() {
        return bad("no appliances (hosts is empty)".into());
    }
    for (i, h) in opts.hosts.iter().enumerate() {
        let ok = !h.is_empty()
            && h.len() <= 63
            && h.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !h.starts_with('-');
        if !ok {
            return bad(format!("{h:?} is not a hostname (letters, digits, '-')"));
        }
        if opts.hosts[..i].contains(h) {
            return bad(format!("{h} is named twice"));
        }
    }
    let unknown = |list: Vec<&String>| list.into_iter().find(|h| !opts.hosts.contains(h)).cloned();
    if let Some(h) = unknown(opts.s3d_host_list().iter().collect()) {
        return bad(format!("s3d host {h} is not one of the hosts"));
    }
    if let Some(h) = unknown(opts.known_hosts.keys().collect()) {
        return bad(format!(
            "known_hosts names {h}, which is not one of the hosts"
        ));
    }
    if let Some(c) = &opts.initial_master_candidates
        && let Some(h) = unknown(c.iter().collect())
    {
        return bad(format!("master candidate {h} is not one of the hosts"));
    }
    if let Some(g) = &opts.ganeti {
        if g.pnodes.len() < 2 {
            return bad(
                "a Ganeti cluster needs at least 2 physical hosts (the upgrade script evacuates the first onto the others)"
                    .into(),
            );
        }
        for (i, p) in g.pnodes.iter().enumerate() {
            let ok = !p.is_empty()
                && p.len() <= 63
                && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !p.starts_with('-');
            if !ok {
                return bad(format!("{p:?} is not a hostname (letters, digits, '-')"));
            }
            if g.pnodes[..i].contains(p) || opts.hosts.contains(p) {
                return bad(format!("{p} is named twice"));
            }
        }
    }
    if opts.max_sessions == 0 {
        return bad("max_sessions must be at least 1".into());
    }
    Ok(())
}

fn create_dir(p: &Path) -> Result<(), ApplianceError> {
    std::fs::create_dir_all(p).map_err(|e| ApplianceError::io(p, e))
}

fn write(p: &Path, text: &str) -> Result<(), ApplianceError> {
    std::fs::write(p, text).map_err(|e| ApplianceError::io(p, e))
}

/// `/etc/rok` must exist on the machine to be a mount point; made empty if absent.
fn ensure_mount_point(p: &Path) -> Result<(), ApplianceError> {
    match std::fs::create_dir(p) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(ApplianceError::io(p, e)),
    }
}

impl ApplianceLab {
    /// Starts the appliances and returns once every sshd accepts connections.
    pub fn start(options: ApplianceOptions) -> Result<Self, ApplianceError> {
        if !is_root() {
            return Err(ApplianceError::NotRoot);
        }
        validate(&options)?;
        let lab_bin = lab_binary()?;
        let user = login_user()?;
        let (tempdir, root) = match &options.dir {
            Some(d) => {
                create_dir(d)?;
                (
                    None,
                    d.canonicalize().map_err(|e| ApplianceError::io(d, e))?,
                )
            }
            None => {
                let t = tempfile::Builder::new()
                    .prefix("rok-lab-")
                    .tempdir()
                    .map_err(|e| ApplianceError::io(std::env::temp_dir(), e))?;
                let root = t.path().to_path_buf();
                (Some(t), root)
            }
        };
        let paths = LabPaths::new(root);
        if let Ok(old) = Manifest::read(&paths)
            && old.hosts.iter().any(|h| {
                h.unshare_pid
                    .is_some_and(|p| start_time(p) == h.unshare_start_time)
            })
        {
            return Err(ApplianceError::InvalidOptions(format!(
                "a lab is already running in {} (stop it with `lab appliances down --dir {}`)",
                paths.root().display(),
                paths.root().display()
            )));
        }
        ensure_mount_point(Path::new("/etc/rok"))?;
        let pnodes = options.pnode_list();
        for h in options.hosts.iter().chain(&pnodes) {
            create_dir(&paths.host_dir(h))?;
        }
        write(&paths.empty_file(), "")?;
        let mut wanted = vec![(paths.client_key(), "rok-lab-client".to_string())];
        for h in options.hosts.iter().chain(&pnodes) {
            wanted.push((paths.host_key(h), format!("root@{h}")));
            wanted.push((paths.wrong_host_key(h), format!("not-{h}")));
        }
        keys::generate(&wanted)?;
        write(
            &paths.authorized_keys(),
            &format!("{}\n", keys::public_key(&paths.client_key())?),
        )?;
        // A fresh world: state, faults and journal of an earlier run of this directory go.
        for stale in [paths.faults(), paths.journal()] {
            let _ = std::fs::remove_file(stale);
        }
        let state = initial_state(&options);
        StateStore::new(paths.clone()).replace(&state)?;
        for h in &options.hosts {
            write_etc_rok(
                &paths,
                h,
                &daemons_conf(&options, h, options.starting_version()),
            )?;
            install_tools(&paths, h, options.first_boot_image(h), &lab_bin)?;
        }
        if let Some(g) = &options.ganeti {
            write_ganeti_files(&paths, &options, g, &lab_bin)?;
        }
        write(&paths.plan_params("0.11"), &params::v0_11(&options, &paths))?;
        write(&paths.plan_params("0.12"), &params::v0_12(&options))?;

        let mut hosts = Vec::new();
        for (h, pnode) in options
            .hosts
            .iter()
            .map(|h| (h, false))
            .chain(pnodes.iter().map(|p| (p, true)))
        {
            hosts.push(Appliance {
                name: h.clone(),
                pnode,
                port: free_port()?,
                process: Mutex::new(None),
            });
        }
        let mut lab = Self {
            dir: LabDir::from_paths(paths),
            known_hosts: Mutex::new(options.known_hosts.clone()),
            options,
            hosts,
            user,
            lab_bin,
            tempdir,
            detached: false,
        };
        lab.boot_all()?;
        lab.write_client_files()?;
        lab.write_manifest()?;
        Ok(lab)
    }

    fn boot_spec(&self, name: &str, kind: HostKind) -> BootSpec {
        BootSpec {
            host: name.to_string(),
            home: self.user.home.clone(),
            kind,
            attached: !self.options.detach,
        }
    }

    /// What `a` boots as, given the state (the Gateway runs where the state says).
    fn kind_of(a: &Appliance, state: &LabState) -> HostKind {
        if a.pnode {
            HostKind::Pnode
        } else {
            HostKind::Appliance {
                gateway: state.node(&a.name).is_some_and(|n| n.gateway),
            }
        }
    }

    fn write_sshd_config(&self, name: &str, port: u16) -> Result<(), ApplianceError> {
        let paths = self.dir.paths();
        write(
            &paths.sshd_config(name),
            &ssh_files::sshd_config(
                paths,
                name,
                port,
                self.options.max_sessions,
                &self.options.sshd_log_level,
            ),
        )
    }

    /// Boots every host at once, then waits for all; a host whose port was taken in the
    /// meantime gets another one.
    fn boot_all(&mut self) -> Result<(), ApplianceError> {
        let state = self.state()?;
        for a in &self.hosts {
            self.write_sshd_config(&a.name, a.port)?;
            let p = HostProcess::boot(
                self.dir.paths(),
                &self.boot_spec(&a.name, Self::kind_of(a, &state)),
            )?;
            *lock(&a.process) = Some(p);
        }
        let deadline = Instant::now() + self.options.ready_timeout;
        let mut pending: Vec<usize> = (0..self.hosts.len()).collect();
        let mut port_retries = 3;
        while !pending.is_empty() {
            let mut still = Vec::new();
            for i in pending {
                let name = self.hosts[i].name.clone();
                let port = self.hosts[i].port;
                if answers_ssh(port) {
                    continue;
                }
                let exited = lock(&self.hosts[i].process)
                    .as_mut()
                    .is_none_or(HostProcess::has_exited);
                if exited {
                    let log = log_tail(&self.dir.paths().sshd_log(&name));
                    if log.contains("Address already in use") && port_retries > 0 {
                        port_retries -= 1;
                        let port = free_port()?;
                        self.hosts[i].port = port;
                        self.write_sshd_config(&name, port)?;
                        let p = HostProcess::boot(
                            self.dir.paths(),
                            &self.boot_spec(&name, Self::kind_of(&self.hosts[i], &state)),
                        )?;
                        *lock(&self.hosts[i].process) = Some(p);
                    } else {
                        return Err(ApplianceError::SshdNotReady {
                            host: name,
                            message: format!("it exited: {log}"),
                        });
                    }
                } else if Instant::now() > deadline {
                    return Err(ApplianceError::SshdNotReady {
                        host: name.clone(),
                        message: format!(
                            "no answer on 127.0.0.1:{port} after {:?}: {}",
                            self.options.ready_timeout,
                            log_tail(&self.dir.paths().sshd_log(&name))
                        ),
                    });
                }
                still.push(i);
            }
            pending = still;
            if !pending.is_empty() {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        self.dir.update_state(|s| set_all_up(s, true))
    }

    fn write_client_files(&self) -> Result<(), ApplianceError> {
        let paths = self.dir.paths();
        let known = lock(&self.known_hosts).clone();
        let mut entries = Vec::new();
        for a in &self.hosts {
            let real = keys::public_key(&paths.host_key(&a.name))?;
            let wrong = keys::public_key(&paths.wrong_host_key(&a.name))?;
            entries.push(HostEntry {
                name: a.name.clone(),
                port: a.port,
                known_key: ssh_files::known_key(
                    known.get(&a.name).copied().unwrap_or_default(),
                    &real,
                    &wrong,
                ),
            });
        }
        write(
            &paths.ssh_config(),
            &ssh_files::ssh_config(paths, &self.user.name, &entries),
        )?;
        write(&paths.known_hosts(), &ssh_files::known_hosts(&entries))
    }

    fn write_manifest(&self) -> Result<(), ApplianceError> {
        let hosts = self
            .hosts
            .iter()
            .map(|a| {
                let pid = lock(&a.process).as_ref().map(HostProcess::pid);
                ManifestHost {
                    name: a.name.clone(),
                    port: a.port,
                    unshare_pid: pid,
                    unshare_start_time: pid.and_then(start_time),
                }
            })
            .collect();
        Manifest {
            hosts,
            lab_bin: self.lab_bin.clone(),
            user: self.user.name.clone(),
            detached: self.options.detach,
        }
        .write(self.dir.paths())
    }

    fn appliance(&self, name: &str) -> Result<&Appliance, ApplianceError> {
        self.hosts
            .iter()
            .find(|a| a.name == name)
            .ok_or_else(|| ApplianceError::UnknownHost(name.to_string()))
    }

    /// The options the lab was started with.
    pub fn options(&self) -> &ApplianceOptions {
        &self.options
    }

    /// The appliances' names, the initial master first.
    pub fn hosts(&self) -> Vec<String> {
        self.hosts
            .iter()
            .filter(|a| !a.pnode)
            .map(|a| a.name.clone())
            .collect()
    }

    /// The physical Ganeti hosts' names, the RokE master's first (none without Ganeti).
    pub fn pnodes(&self) -> Vec<String> {
        self.hosts
            .iter()
            .filter(|a| a.pnode)
            .map(|a| a.name.clone())
            .collect()
    }

    /// The initial master (the first host).
    pub fn master(&self) -> &str {
        &self.hosts[0].name
    }

    /// Every other host, in order (the plans' `slaves`).
    pub fn slaves(&self) -> Vec<String> {
        self.hosts[1..]
            .iter()
            .filter(|a| !a.pnode)
            .map(|a| a.name.clone())
            .collect()
    }

    /// The port of `host`'s sshd on 127.0.0.1.
    pub fn port(&self, host: &str) -> Result<u16, ApplianceError> {
        Ok(self.appliance(host)?.port)
    }

    /// The `known_hosts` file the ssh_config uses.
    pub fn known_hosts(&self) -> PathBuf {
        self.dir.paths().known_hosts()
    }

    /// The plan parameters file for `release` (`"0.11"` or `"0.12"`).
    pub fn plan_params(&self, release: &str) -> PathBuf {
        self.dir.paths().plan_params(release)
    }

    /// `ssh -F SSH_CONFIG -o StrictHostKeyChecking=yes HOST`: add the command to run.
    pub fn ssh(&self, host: &str) -> Command {
        let mut c = Command::new("ssh");
        c.arg("-F").arg(self.ssh_config()).args([
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "ConnectTimeout=10",
            host,
        ]);
        c
    }

    /// Powers `host` off: sshd and every process on it are killed (connections drop,
    /// new ones are refused). Its disks (state, /etc/rok) stay.
    pub fn stop_host(&self, host: &str) -> Result<(), ApplianceError> {
        let a = self.appliance(host)?;
        if let Some(mut p) = lock(&a.process).take() {
            p.kill();
        }
        self.dir.update_state(|s| set_up(s, host, false))?;
        self.write_manifest()
    }

    /// Powers `host` on again (same port, same keys) and waits for its sshd.
    pub fn start_host(&self, host: &str) -> Result<(), ApplianceError> {
        let a = self.appliance(host)?;
        let mut slot = lock(&a.process);
        if slot.is_some() {
            return Ok(());
        }
        let kind = Self::kind_of(a, &self.state()?);
        let mut p = HostProcess::boot(self.dir.paths(), &self.boot_spec(host, kind))?;
        let deadline = Instant::now() + self.options.ready_timeout;
        while !answers_ssh(a.port) {
            if p.has_exited() || Instant::now() > deadline {
                p.kill();
                return Err(ApplianceError::SshdNotReady {
                    host: host.to_string(),
                    message: log_tail(&self.dir.paths().sshd_log(host)),
                });
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        *slot = Some(p);
        drop(slot);
        self.dir.update_state(|s| set_up(s, host, true))?;
        self.write_manifest()
    }

    /// Power cycle: [`stop_host`](Self::stop_host) then [`start_host`](Self::start_host).
    pub fn restart_host(&self, host: &str) -> Result<(), ApplianceError> {
        self.stop_host(host)?;
        self.start_host(host)
    }

    /// Whether `host` is powered on.
    pub fn is_up(&self, host: &str) -> Result<bool, ApplianceError> {
        Ok(lock(&self.appliance(host)?.process).is_some())
    }

    /// Puts another appliance image on `host`'s BOOT disk (the manual BOOT swap): its
    /// tools become those of `image` at once, upgrade tool included.
    pub fn set_boot_image(&self, host: &str, image: Version) -> Result<(), ApplianceError> {
        if self.appliance(host)?.pnode {
            return Err(ApplianceError::UnknownHost(host.to_string()));
        }
        install_tools(self.dir.paths(), host, image, &self.lab_bin)?;
        self.dir.update_state(|s| {
            if let Some(n) = s.node_mut(host) {
                n.boot_image = image;
            }
        })
    }

    /// Changes what `known_hosts` says about `host`.
    pub fn set_known_host(&self, host: &str, entry: KnownHostEntry) -> Result<(), ApplianceError> {
        self.appliance(host)?;
        lock(&self.known_hosts).insert(host.to_string(), entry);
        self.write_client_files()
    }

    /// Powers every appliance off now (what drop does).
    pub fn shutdown(&self) {
        let mut running: Vec<HostProcess> = self
            .hosts
            .iter()
            .filter_map(|a| lock(&a.process).take())
            .collect();
        for p in &mut running {
            p.kill();
        }
        let _ = self.dir.update_state(|s| set_all_up(s, false));
        let _ = self.write_manifest();
    }

    /// Leaves the appliances running after this handle is gone (they must have been
    /// started with [`ApplianceOptions::detach`] to outlive this process); returns the
    /// lab directory, which is kept.
    pub fn detach(mut self) -> PathBuf {
        for a in &self.hosts {
            if let Some(p) = lock(&a.process).take() {
                p.forget();
            }
        }
        if let Some(t) = self.tempdir.take() {
            let _ = t.keep();
        }
        self.detached = true;
        self.dir.dir().to_path_buf()
    }
}

impl Drop for ApplianceLab {
    fn drop(&mut self) {
        if !self.detached {
            self.shutdown();
        }
    }
}

/// Locks a mutex, ignoring poisoning: the data (process handles) stays usable after a
/// panicking test thread.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Powers off the lab in `dir` started by another process (`lab appliances down`): kills
/// the processes its manifest names, if they are still the same processes.
pub fn down(dir: &Path) -> Result<(), ApplianceError> {
    let lab = LabDir::open(dir)?;
    let mut manifest = lab.manifest()?;
    for h in &mut manifest.hosts {
        if let Some(pid) = h.unshare_pid
            && start_time(pid).is_some()
            && start_time(pid) == h.unshare_start_time
        {
            super::host::kill_host_tree(pid, false);
            super::host::wait_gone(pid, Duration::from_secs(10));
            if start_time(pid) == h.unshare_start_time {
                super::host::kill_host_tree(pid, true);
                super::host::wait_gone(pid, Duration::from_secs(5));
            }
        }
        h.unshare_pid = None;
        h.unshare_start_time = None;
    }
    manifest.write(lab.paths())?;
    lab.update_state(|s| set_all_up(s, false))
}

/// Records whether the host (appliance or physical host) called `host` is powered on.
fn set_up(s: &mut LabState, host: &str, up: bool) {
    if let Some(n) = s.node_mut(host) {
        n.up = up;
    }
    if let Some(p) = s.ganeti.pnode_mut(host) {
        p.up = up;
    }
}

/// Records every host as powered on (or off).
fn set_all_up(s: &mut LabState, up: bool) {
    s.nodes.iter_mut().for_each(|n| n.up = up);
    s.ganeti.pnodes.iter_mut().for_each(|p| p.up = up);
}
