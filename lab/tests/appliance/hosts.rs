//! The appliances as hosts: names, isolation, host keys, power off and on, clean-up.

use std::time::{Duration, Instant};

use rok_plan_lab::appliance::{KnownHostEntry, V0_12};

use crate::support::{alive, lab, lab_with, ok, port_open, processes_mentioning, ssh};

#[test]
fn each_appliance_has_its_hostname_etc_rok_and_tools() {
    let lab = lab(3);
    for h in lab.hosts() {
        assert_eq!(ok(&lab, &h, "hostname").trim(), h);
        // The plans' `$(hostname)` and `command -v` checks.
        assert_eq!(ok(&lab, &h, "echo $(hostname)").trim(), h);
        ok(&lab, &h, "command -v rok-cluster-upgrade-v0.12.0");
        assert!(ok(&lab, &h, "cat /etc/rok/daemons.conf").contains("[s3d.0]"));
    }
    // /etc/rok is per host, and not the machine's.
    ok(&lab, "rok-node-1", "echo one > /etc/rok/mark");
    assert_eq!(ok(&lab, "rok-node-1", "cat /etc/rok/mark").trim(), "one");
    assert_eq!(
        ssh(&lab, "rok-node-2", "test -e /etc/rok/mark")
            .status
            .code(),
        Some(1)
    );
    assert!(!std::path::Path::new("/etc/rok/mark").exists());
    assert_eq!(
        std::fs::read_to_string(lab.etc_rok("rok-node-1").join("mark")).unwrap(),
        "one\n"
    );
    // The machine's shell start-up files are hidden (an empty ~/.bashrc).
    assert_eq!(ok(&lab, "rok-node-1", "wc -c < ~/.bashrc").trim(), "0");
    // The appliance sees only its own processes.
    let ps = ok(&lab, "rok-node-2", "ls /proc | grep -c '^[0-9]'");
    assert!(ps.trim().parse::<u32>().unwrap() < 20, "{ps}");
}

#[test]
fn ssh_commands_are_fast() {
    let lab = lab(1);
    ok(&lab, "rok-node-1", "true");
    let start = Instant::now();
    for _ in 0..3 {
        ok(&lab, "rok-node-1", "rok-config get >/dev/null");
    }
    let each = start.elapsed() / 3;
    assert!(
        each < Duration::from_secs(2),
        "an ssh command took {each:?}"
    );
}

#[test]
fn an_unknown_or_changed_host_key_is_refused_under_strict_checking() {
    let lab = lab_with(3, |o| {
        o.known_hosts
            .insert("rok-node-2".into(), KnownHostEntry::Missing);
        o.known_hosts
            .insert("rok-node-3".into(), KnownHostEntry::Wrong);
    });
    ok(&lab, "rok-node-1", "true");
    let unknown = ssh(&lab, "rok-node-2", "true");
    assert_eq!(unknown.status.code(), Some(255));
    let err = String::from_utf8_lossy(&unknown.stderr);
    assert!(err.contains("Host key verification failed"), "{err}");
    let changed = ssh(&lab, "rok-node-3", "true");
    assert_eq!(changed.status.code(), Some(255));
    let err = String::from_utf8_lossy(&changed.stderr);
    assert!(
        err.contains("REMOTE HOST IDENTIFICATION HAS CHANGED"),
        "{err}"
    );
    // Correct entries again: both work.
    lab.set_known_host("rok-node-2", KnownHostEntry::Correct)
        .unwrap();
    lab.set_known_host("rok-node-3", KnownHostEntry::Correct)
        .unwrap();
    ok(&lab, "rok-node-2", "true");
    ok(&lab, "rok-node-3", "true");
}

#[test]
fn a_stopped_host_refuses_connections_drops_sessions_and_comes_back() {
    let lab = lab(2);
    let port = lab.port("rok-node-2").unwrap();
    // A running command whose host is powered off: its connection drops.
    let mut running = lab.ssh("rok-node-2").arg("sleep 60").spawn().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    lab.stop_host("rok-node-2").unwrap();
    let dropped_at = Instant::now();
    let status = running.wait().unwrap();
    assert_eq!(status.code(), Some(255));
    assert!(dropped_at.elapsed() < Duration::from_secs(10));
    assert!(!port_open(port));
    let refused = ssh(&lab, "rok-node-2", "true");
    assert_eq!(refused.status.code(), Some(255));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("Connection refused"), "{err}");
    assert!(!lab.is_up("rok-node-2").unwrap());
    assert!(ok(&lab, "rok-node-1", "rok-cluster-ctl member-list").contains("down"));
    // The other host is untouched; the stopped one comes back with its disks.
    ok(&lab, "rok-node-1", "true");
    lab.start_host("rok-node-2").unwrap();
    assert_eq!(ok(&lab, "rok-node-2", "hostname").trim(), "rok-node-2");
    assert!(lab.state().unwrap().node("rok-node-2").unwrap().up);
}

#[test]
fn a_new_boot_image_brings_its_upgrade_tool() {
    let lab = lab_with(2, |o| o.boot_image = rok_plan_lab::appliance::V0_11);
    assert_eq!(
        ssh(&lab, "rok-node-2", "command -v rok-cluster-upgrade-v0.12.0")
            .status
            .code(),
        Some(1)
    );
    lab.set_boot_image("rok-node-2", V0_12).unwrap();
    ok(&lab, "rok-node-2", "command -v rok-cluster-upgrade-v0.12.0");
    assert_eq!(
        ssh(&lab, "rok-node-2", "command -v rok-cluster-upgrade-v0.11.0")
            .status
            .code(),
        Some(1)
    );
    assert_eq!(
        lab.state().unwrap().node("rok-node-2").unwrap().boot_image,
        V0_12
    );
}

#[test]
fn drop_leaves_no_process_and_closes_every_port() {
    let lab = lab(3);
    let dir = lab.dir().to_path_buf();
    let ports: Vec<u16> = lab.hosts().iter().map(|h| lab.port(h).unwrap()).collect();
    let pids: Vec<u32> = lab
        .manifest()
        .unwrap()
        .hosts
        .iter()
        .map(|h| h.unshare_pid.unwrap())
        .collect();
    // A process that left sshd's session and process group, as the product's remote
    // commands do (setsid), and the Gateway's daemon.
    ok(
        &lab,
        "rok-node-2",
        "setsid sleep 600 </dev/null >/dev/null 2>&1 & echo started",
    );
    let needle = dir.to_string_lossy().into_owned();
    assert!(!processes_mentioning(&needle).is_empty());
    drop(lab);
    for pid in pids {
        assert!(!alive(pid), "unshare {pid} still runs");
    }
    for port in ports {
        assert!(!port_open(port), "port {port} is still open");
    }
    assert_eq!(processes_mentioning(&needle), Vec::<u32>::new());
    assert!(ok_no_sleep_600(), "the setsid'd sleep survived");
    assert!(!dir.exists(), "the temporary lab directory is removed");
}

fn ok_no_sleep_600() -> bool {
    processes_mentioning("sleep\u{0}600").is_empty()
}

#[test]
fn the_appliances_die_with_the_process_that_started_them() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("lab");
    let mut up = std::process::Command::new(env!("CARGO_BIN_EXE_lab"))
        .args(["appliances", "up", "--nodes", "2", "--dir"])
        .arg(&dir)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let manifest = loop {
        let m = rok_plan_lab::appliance::LabDir::open(&dir).and_then(|l| l.manifest());
        if let Ok(m) = m
            && m.hosts.iter().all(|h| h.unshare_pid.is_some())
        {
            break m;
        }
        assert!(Instant::now() < deadline, "the lab did not come up");
        std::thread::sleep(Duration::from_millis(20));
    };
    let ports: Vec<u16> = manifest.hosts.iter().map(|h| h.port).collect();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ports.iter().all(|p| port_open(*p)) {
        assert!(Instant::now() < deadline, "the sshds did not come up");
        std::thread::sleep(Duration::from_millis(20));
    }
    up.kill().unwrap();
    up.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while ports.iter().any(|p| port_open(*p))
        || !processes_mentioning(&dir.to_string_lossy()).is_empty()
    {
        assert!(
            Instant::now() < deadline,
            "the appliances outlived their lab process"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
