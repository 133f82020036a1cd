//! `lab appliances up --detach | state | fail | down` from a shell.

use std::process::Command;

use crate::support::{alive, port_open};

fn lab_cmd(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_lab"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn up_detached_then_fail_state_and_down() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("lab");
    let dir_s = dir.to_str().unwrap();
    let up = lab_cmd(&[
        "appliances",
        "up",
        "--nodes",
        "2",
        "--dir",
        dir_s,
        "--detach",
    ]);
    // Whatever happens next, stop what `up` left running.
    struct Down(String);
    impl Drop for Down {
        fn drop(&mut self) {
            let _ = lab_cmd(&["appliances", "down", "--dir", &self.0]);
        }
    }
    let _down = Down(dir_s.to_string());
    assert!(
        up.status.success(),
        "{}",
        String::from_utf8_lossy(&up.stderr)
    );
    let stdout = String::from_utf8_lossy(&up.stdout);
    let ssh_config = dir.join("ssh_config");
    assert!(
        stdout.contains(&format!("ssh_config: {}", ssh_config.display())),
        "{stdout}"
    );
    assert!(stdout.contains("master: rok-node-1"), "{stdout}");
    let params = std::fs::read_to_string(dir.join("params-rok-v0.12.toml")).unwrap();
    assert!(
        params.contains("master = \"rok-node-1\"") && params.contains("slaves = [\"rok-node-2\"]"),
        "{params}"
    );

    let ssh = |host: &str, cmd: &str| {
        Command::new("ssh")
            .arg("-F")
            .arg(&ssh_config)
            .args(["-o", "StrictHostKeyChecking=yes", host, cmd])
            .output()
            .unwrap()
    };
    assert_eq!(
        String::from_utf8_lossy(&ssh("rok-node-2", "hostname").stdout).trim(),
        "rok-node-2"
    );

    let fail = lab_cmd(&[
        "appliances",
        "fail",
        "--dir",
        dir_s,
        "--host",
        "rok-node-1",
        "--command",
        "rok-cluster-ctl member-list",
    ]);
    assert!(
        fail.status.success(),
        "{}",
        String::from_utf8_lossy(&fail.stderr)
    );
    assert_eq!(
        ssh("rok-node-1", "rok-cluster-ctl member-list")
            .status
            .code(),
        Some(1)
    );
    assert_eq!(
        ssh("rok-node-1", "rok-cluster-ctl member-list")
            .status
            .code(),
        Some(0)
    );

    let state = lab_cmd(&["appliances", "state", "--dir", dir_s]);
    let doc: serde_json::Value = serde_json::from_slice(&state.stdout).unwrap();
    assert_eq!(doc["cluster"]["master"], "rok-node-1");
    assert_eq!(doc["nodes"][1]["up"], true);
    let journal = lab_cmd(&["appliances", "state", "--dir", dir_s, "--journal"]);
    let doc: serde_json::Value = serde_json::from_slice(&journal.stdout).unwrap();
    assert_eq!(doc.as_array().unwrap().len(), 2);

    let manifest = rok_plan_lab::appliance::LabDir::open(&dir)
        .unwrap()
        .manifest()
        .unwrap();
    let down = lab_cmd(&["appliances", "down", "--dir", dir_s]);
    assert!(
        down.status.success(),
        "{}",
        String::from_utf8_lossy(&down.stderr)
    );
    for h in manifest.hosts {
        assert!(!port_open(h.port), "{} still listens", h.name);
        assert!(!alive(h.unshare_pid.unwrap()));
    }
}

#[test]
fn without_root_up_says_that_it_needs_root() {
    if !std::path::Path::new("/usr/bin/setpriv").exists() {
        eprintln!("skipped: no setpriv to drop root");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new("/usr/bin/setpriv")
        .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_lab"))
        .args(["appliances", "up", "--nodes", "1", "--dir"])
        .arg(tmp.path().join("lab"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("the appliance lab needs root"), "{err}");
}
