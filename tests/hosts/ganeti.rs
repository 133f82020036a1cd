//! plans/rok-v0.11.toml with its Ganeti branch, end to end against the lab's appliances on
//! a simulated Ganeti cluster: `rok-cluster-upgrade-ganeti` (a Python script) runs in the
//! detached tmux session the plan starts, the run pauses at `ganeti-migrate-back`, the
//! test answers the script in that session as an operator would, then approves.
//!
//! The plan names its tmux socket (`-L rok-plan-ganeti`); each test gives rok-plan and its
//! own tmux commands a TMUX_TMPDIR of its own, so the socket is per test, and kills that
//! tmux server when it ends, also when it fails.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use rok_plan_lab::appliance::{ApplianceLab, ApplianceOptions, V0_10, V0_11};
use serde_json::Value;

use crate::appliance_plans::{runs_of, shipped};
use crate::support::{Lab, Out, state_of, wait_with_deadline};
use crate::{appliances_with, ssh_args};

/// The plan's tmux socket name and session.
const SOCKET: &str = "rok-plan-ganeti";
const SESSION: &str = "upgrade-master";

/// How long one rok-plan command may take: `check-master-boot` may have to wait for the
/// script's re-install, which its retry does after 30 s.
const RUN_LIMIT: Duration = Duration::from_secs(150);

/// A tmux server directory for one test; dropping it kills the server on the plan's
/// socket there (the script's session with it).
struct Tmux {
    dir: tempfile::TempDir,
}

impl Tmux {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("a TMUX_TMPDIR"),
        }
    }

    fn tmpdir(&self) -> &Path {
        self.dir.path()
    }

    /// `tmux -L rok-plan-ganeti ARGS` on this test's server.
    fn run(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .env("TMUX_TMPDIR", self.tmpdir())
            .args(["-L", SOCKET])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("tmux runs (Debian package tmux)")
    }

    fn has_session(&self) -> bool {
        self.run(&["has-session", "-t", SESSION]).status.success()
    }

    /// What the script's pane shows (wrapped lines joined).
    fn pane(&self) -> String {
        String::from_utf8_lossy(
            &self
                .run(&["capture-pane", "-p", "-J", "-t", SESSION])
                .stdout,
        )
        .into_owned()
    }

    /// Waits until the pane shows `text`.
    #[track_caller]
    fn wait_for(&self, text: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let pane = self.pane();
            if pane.contains(text) {
                return pane;
            }
            assert!(
                Instant::now() < deadline,
                "{text:?} never appeared in the tmux pane:\n{pane}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}

/// The appliances (v0.11 image) on a Ganeti cluster, and the secrets the script expects.
struct World {
    hosts: ApplianceLab,
    lab: Lab,
    tmux: Tmux,
    roke_password: String,
    rapi_password: String,
}

impl World {
    fn new(appliances: usize, pnodes: usize) -> Self {
        // The plan runs `python scripts/rok-cluster-upgrade-ganeti` (the seed's command)
        // in a tmux session: both must be on PATH.
        for (program, package) in [("python", "python-is-python3"), ("tmux", "tmux")] {
            let found = Command::new(program)
                .arg("-V")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            assert!(
                found,
                "`{program}` is not on PATH (Debian package {package})"
            );
        }
        let mut options = ApplianceOptions::nodes(appliances).with_ganeti(pnodes);
        options.boot_image = V0_11;
        let hosts = appliances_with(options);
        let g = hosts.options().ganeti.clone().expect("a Ganeti cluster");
        Self {
            hosts,
            lab: Lab::new(),
            tmux: Tmux::new(),
            roke_password: g.roke_password,
            rapi_password: g.rapi_password,
        }
    }

    /// `rok-plan ARGS --ssh-config LAB` with the secrets exported and this test's tmux
    /// directory, to its end (at most [`RUN_LIMIT`]).
    fn rok_plan(&self, args: &[&str], env: &[(&str, &str)]) -> Out {
        let mut all: Vec<String> = args.iter().map(|a| (*a).to_string()).collect();
        all.extend(ssh_args(&self.hosts));
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        let mut cmd = self.lab.cmd(&all);
        cmd.env("TMUX_TMPDIR", self.tmux.tmpdir())
            .env("ROKE_PASSWORD", &self.roke_password)
            .env("RAPI_PASSWORD", &self.rapi_password)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let child = cmd.spawn().expect("rok-plan starts");
        let (mut out, _) = wait_with_deadline(child, RUN_LIMIT);
        out.command = format!("rok-plan {}", args.join(" "));
        out
    }

    fn execute(&self, extra: &[&str]) -> Out {
        let plan = shipped("rok-v0.11.toml");
        let params = self.hosts.plan_params("0.11").display().to_string();
        let mut args = vec!["execute", plan.as_str(), "--params", params.as_str()];
        args.extend(extra);
        self.rok_plan(&args, &[])
    }

    /// The appliances' manual steps other than the Ganeti one, approved in advance.
    fn approvals(&self) -> Vec<String> {
        let mut v = vec![
            "--approve".to_string(),
            "review-openstore-master".to_string(),
        ];
        for s in self.hosts.slaves() {
            for step in ["swap-boot-disk", "review-openstore"] {
                v.push("--approve".into());
                v.push(format!("slaves/{s}/{step}"));
            }
        }
        v
    }

    /// The operator's side of Ganeti step 5: confirm in the script's session, wait for
    /// it to end well, end the session.
    fn confirm_migration(&self) {
        self.tmux.wait_for("[y/N]");
        let sent = self.tmux.run(&["send-keys", "-t", SESSION, "y", "Enter"]);
        assert!(sent.status.success(), "send-keys: {sent:?}");
        let pane = self
            .tmux
            .wait_for("rok-cluster-upgrade-ganeti exited with status");
        assert!(
            pane.contains("rok-cluster-upgrade-ganeti exited with status 0"),
            "{pane}"
        );
        assert!(
            self.tmux
                .run(&["kill-session", "-t", SESSION])
                .status
                .success()
        );
    }

    /// Every step instance of the run, from `status`.
    fn instances(&self) -> Vec<String> {
        self.lab.status()["steps"]
            .as_array()
            .expect("steps")
            .iter()
            .map(|s| s["instance"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    /// Asserts that no output of rok-plan shows either password.
    #[track_caller]
    fn assert_no_secret_in(&self, what: &str, text: &str) {
        for secret in [&self.roke_password, &self.rapi_password] {
            assert!(
                !text.contains(secret.as_str()),
                "a password in {what}:\n{text}"
            );
        }
    }
}

fn awaiting(status: &Value) -> Vec<String> {
    status["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter(|s| s["state"] == "awaiting_approval")
        .map(|s| s["instance"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn v0_11_on_ganeti_pauses_for_the_script_upgrades_the_physical_hosts_and_every_appliance() {
    let w = World::new(3, 3);
    let approvals = w.approvals();
    let extra: Vec<&str> = approvals.iter().map(String::as_str).collect();

    // Up to Ganeti step 5: the script waits for its confirmation, the master and its
    // physical host are upgraded, nothing else is.
    let out = w.execute(&extra);
    out.code(3);
    let status = w.lab.status();
    assert_eq!(awaiting(&status), ["ganeti-migrate-back"], "{}", out.all());
    assert_eq!(state_of(&status, "swap-boot-master"), "skipped");
    assert!(w.tmux.has_session(), "the script's session runs");
    let pane = w.tmux.wait_for("[y/N]");
    assert!(pane.contains("ganeti-1 is evacuated"), "{pane}");
    let state = w.hosts.state().unwrap();
    let script = &state.ganeti.upgrade_script;
    assert_eq!(script.runs, 1);
    assert_eq!(script.master_reinstalled, Some(V0_11));
    assert!(!script.migrated_back);
    assert_eq!(state.node("rok-node-1").unwrap().version, V0_11);
    assert_eq!(state.node("rok-node-2").unwrap().version, V0_10);
    let master_pnode = state.ganeti.pnode("ganeti-1").unwrap();
    assert!(master_pnode.packages.values().all(|v| *v == V0_11));
    let left = w.hosts.pnode_tcp_endpoints("ganeti-1");
    if !left.is_empty() {
        let id = w.lab.run_id();
        let logs: Vec<String> = ["kvm-scripts", "rok-conf", "snf-image"]
            .iter()
            .map(|s| {
                w.lab
                    .run(&["logs", &id, &format!("ganeti-master-pnode-{s}")])
                    .all()
            })
            .collect();
        let seen = crate::on_host(
            &w.hosts,
            "ganeti-1",
            "ls -la /etc/ganeti/rok /etc/default/snf-image*; cat /etc/ganeti/rok/rok.conf",
        );
        let upper = w.hosts.pnode_file("ganeti-1", "/etc/ganeti/rok").unwrap();
        let listing = std::fs::read_dir(&upper)
            .map(|d| d.flatten().map(|e| e.file_name()).collect::<Vec<_>>());
        panic!(
            "ganeti-1: tcp: left: {left:?}\nhost sees:\n{seen}\nupper: {listing:?}\n{}\n{}",
            w.lab.run(&["status", &id]).all(),
            logs.join("\n---\n")
        );
    }
    for other in ["ganeti-2", "ganeti-3"] {
        assert!(!w.hosts.pnode_tcp_endpoints(other).is_empty(), "{other}");
        assert!(runs_of(&w.hosts, "apt-get").iter().all(|i| i.host != other));
    }

    w.confirm_migration();
    let id = w.lab.run_id();
    let mut resume = vec!["resume", id.as_str(), "--approve", "ganeti-migrate-back"];
    resume.extend(approvals.iter().map(String::as_str));
    let out = w.rok_plan(&resume, &[]);
    out.code(0);

    let state = w.hosts.state().unwrap();
    assert_eq!(state.cluster.version, V0_11);
    assert!(
        state.nodes.iter().all(|n| n.version == V0_11),
        "{:?}",
        state.nodes
    );
    assert!(state.cluster.etcd_auth, "etcd auth enabled");
    let script = &state.ganeti.upgrade_script;
    assert_eq!(script.runs, 1, "the script ran once");
    assert!(script.migrated_back, "the instances were migrated back");
    assert_eq!(script.master_pnode_ready_at_migration, Some(true));
    assert!(
        state.ganeti.all_instances_home(),
        "{:?}",
        state.ganeti.instances
    );
    for p in w.hosts.pnodes() {
        let pnode = state.ganeti.pnode(&p).unwrap();
        assert!(
            ["rok-common", "rok-base"]
                .iter()
                .all(|name| pnode.packages.get(*name) == Some(&V0_11)),
            "{p}: {:?}",
            pnode.packages
        );
        let left = w.hosts.pnode_tcp_endpoints(&p);
        if !left.is_empty() {
            let id = w.lab.run_id();
            let logs: Vec<String> = ["packages", "kvm-scripts", "rok-conf", "snf-image"]
                .iter()
                .map(|step| {
                    w.lab
                        .run(&["logs", &id, &format!("ganeti-hosts/{p}/{step}")])
                        .all()
                })
                .collect();
            let status = w.lab.run(&["status", &id]).all();
            panic!(
                "{p}: tcp: left: {left:?}\n{status}\n{}",
                logs.join("\n---\n")
            );
        }
        let kvm = crate::on_host(
            &w.hosts,
            &p,
            "grep -c http: /usr/bin/*kvm* /etc/ganeti/rok/rok.conf /etc/default/snf-image",
        );
        assert_eq!(kvm.lines().count(), 4, "{p}: {kvm}");
    }
    // The other physical hosts come after the last slave, one at a time.
    let upgrades = runs_of(&w.hosts, "rok-cluster-upgrade-v0.11.0 upgrade-node");
    let last_slave = upgrades.last().and_then(|i| i.ended_ms).unwrap_or(u64::MAX);
    let apt = runs_of(&w.hosts, "apt-get");
    let order: Vec<&str> = apt.iter().map(|i| i.host.as_str()).collect();
    assert_eq!(order, ["ganeti-1", "ganeti-2", "ganeti-3"]);
    assert!(apt[1].started_ms >= last_slave && apt[2].started_ms >= last_slave);

    // The passwords appear in no output, status or log.
    let id = w.lab.run_id();
    for inst in w.instances() {
        let logs = w.lab.run(&["logs", &id, &inst]);
        w.assert_no_secret_in(&format!("logs {inst}"), &logs.all());
    }
    for format in ["human", "json"] {
        let status = w.lab.run(&["--output", format, "status", &id]);
        w.assert_no_secret_in("status", &status.all());
    }
    w.assert_no_secret_in("the run's output", &out.all());
}

/// PIDs of processes whose argv contains every one of `words` and whose environment
/// has `env_entry` (`NAME=VALUE`).
fn processes_with(words: &[&str], env_entry: &str) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let argv = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let args: Vec<&[u8]> = argv.split(|b| *b == 0).collect();
            let env = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
            words.iter().all(|w| args.contains(&w.as_bytes()))
                && env.split(|b| *b == 0).any(|e| e == env_entry.as_bytes())
        })
        .collect()
}

#[test]
fn a_resume_after_a_crash_while_the_script_started_does_not_start_it_twice() {
    let w = World::new(2, 2);
    let tmux_env = format!("TMUX_TMPDIR={}", w.tmux.tmpdir().display());
    // rok-plan dies (SIGKILL) while the step's `tmux new-session` waits for the lock a
    // client takes to start the tmux server (held here); once it is released, the server,
    // the session and the script start without rok-plan knowing: the step is left in
    // doubt with its effect done. (The check before the attempt, `has-session`, does not
    // take that lock: it finds no server and fails at once.)
    // SAFETY: getuid(2) has no preconditions.
    let uid = unsafe { libc::getuid() };
    let socket_dir = w.tmux.tmpdir().join(format!("tmux-{uid}"));
    std::fs::create_dir(&socket_dir).expect("tmux's socket directory");
    std::fs::set_permissions(
        &socket_dir,
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .expect("tmux's socket directory is private");
    let lock = std::fs::File::create(socket_dir.join(format!("{SOCKET}.lock")))
        .expect("tmux's start-up lock");
    lock.lock().expect("the lock is free");

    let plan = shipped("rok-v0.11.toml");
    let params = w.hosts.plan_params("0.11").display().to_string();
    let approvals = w.approvals();
    let mut args = vec!["execute", plan.as_str(), "--params", params.as_str()];
    args.extend(approvals.iter().map(String::as_str));
    let ssh = ssh_args(&w.hosts);
    args.extend(ssh.iter().map(String::as_str));
    let mut child = w
        .lab
        .cmd(&args)
        .env("TMUX_TMPDIR", w.tmux.tmpdir())
        .env("ROKE_PASSWORD", &w.roke_password)
        .env("RAPI_PASSWORD", &w.rapi_password)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("rok-plan starts");
    let deadline = Instant::now() + Duration::from_secs(60);
    while processes_with(&["new-session", SESSION], &tmux_env).is_empty() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let ps = Command::new("ps").args(["-eo", "pid,stat,args"]).output();
            let ps = ps.map(|o| String::from_utf8_lossy(&o.stdout).into_owned());
            panic!(
                "the step never ran `tmux new-session`:\n{}\n{}",
                w.lab.run(&["status"]).all(),
                ps.unwrap_or_default()
            );
        }
        assert!(
            child.try_wait().expect("rok-plan runs").is_none(),
            "rok-plan ended before the step"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().expect("SIGKILL rok-plan");
    let _ = child.wait();
    drop(lock);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !w.tmux.has_session() {
        assert!(
            Instant::now() < deadline,
            "the script's session never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    w.tmux.wait_for("[y/N]");
    assert_eq!(
        state_of(&w.lab.status(), "ganeti-start-upgrade-script"),
        "running"
    );

    // The resume asks the step's check, which finds the session: the step is
    // `satisfied` without running, and no second script starts.
    let id = w.lab.run_id();
    let mut resume = vec!["resume", id.as_str()];
    resume.extend(approvals.iter().map(String::as_str));
    let out = w.rok_plan(&resume, &[]);
    out.code(3);
    let status = w.lab.status();
    assert_eq!(awaiting(&status), ["ganeti-migrate-back"], "{}", out.all());
    assert_eq!(
        state_of(&status, "ganeti-start-upgrade-script"),
        "satisfied"
    );
    let sessions =
        String::from_utf8_lossy(&w.tmux.run(&["list-sessions", "-F", "#S"]).stdout).into_owned();
    assert_eq!(sessions.trim(), SESSION);
    assert_eq!(w.hosts.state().unwrap().ganeti.upgrade_script.runs, 1);
    assert_eq!(
        w.tmux
            .pane()
            .matches("connected to the Ganeti RAPI")
            .count(),
        1
    );

    // And the run ends as the other test's does.
    w.confirm_migration();
    let mut resume = vec!["resume", id.as_str(), "--approve", "ganeti-migrate-back"];
    resume.extend(approvals.iter().map(String::as_str));
    w.rok_plan(&resume, &[]).code(0);
    let state = w.hosts.state().unwrap();
    assert_eq!(state.ganeti.upgrade_script.runs, 1);
    assert!(state.ganeti.upgrade_script.migrated_back);
    assert!(state.nodes.iter().all(|n| n.version == V0_11));
}
