//! A timeout or a Ctrl-C stops the command on the host too, not just the local ssh; and
//! the number of commands at once on a host stays under sshd's MaxSessions.

use rok_plan_lab::appliance::ApplianceOptions;

use crate::support::{Lab, signal_job, state_of, step};
use crate::{appliances, appliances_with, on_host, ssh_args, with_ssh};

/// The processes on the host whose command line contains `what` (the host has its own
/// PID namespace, so this sees the host's processes only).
fn processes(hosts: &rok_plan_lab::appliance::ApplianceLab, host: &str, what: &str) -> String {
    on_host(
        hosts,
        host,
        &format!("ps -eo args | grep -F -- '{what}' | grep -v grep || true"),
    )
}

fn wait_for_file(path: &std::path::Path) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !path.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

const LONG: &str = r#"
[plan]
name = "long"
[[step]]
id = "long"
type = "ssh"
host = "rok-node-1"
run = "sleep 311 & sleep 312 & echo up > /etc/rok/long-up; wait"
timeout = "TIMEOUT"
"#;

#[test]
fn a_timeout_kills_the_whole_command_on_the_host() {
    let hosts = appliances(1);
    let lab = Lab::with_plan(&LONG.replace("TIMEOUT", "2s"));
    let ssh = ssh_args(&hosts);
    lab.run(&with_ssh(&["execute", "plan.toml"], &ssh)).code(1);
    let status = lab.status();
    assert_eq!(state_of(&status, "long"), "failed");
    assert!(
        step(&status, "long")["last_error"]
            .as_str()
            .unwrap_or("")
            .contains("timed out"),
        "{status:#}"
    );
    assert_eq!(
        processes(&hosts, "rok-node-1", "sleep 31"),
        "",
        "the command outlived its timeout"
    );
}

#[test]
fn ctrl_c_kills_the_command_on_the_host_and_the_run_can_resume() {
    let hosts = appliances(1);
    let lab = Lab::with_plan(&LONG.replace("TIMEOUT", "10m"));
    let ssh = ssh_args(&hosts);
    let child = lab.spawn_job(&with_ssh(&["execute", "plan.toml", "--grace", "1s"], &ssh));
    wait_for_file(&hosts.etc_rok("rok-node-1").join("long-up"));
    assert_ne!(processes(&hosts, "rok-node-1", "sleep 311"), "");
    signal_job(&child, libc::SIGINT);
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        processes(&hosts, "rok-node-1", "sleep 31"),
        "",
        "Ctrl-C left the command running on the host"
    );
    assert_eq!(processes(&hosts, "rok-node-1", "rok-plan."), "");
}

#[test]
fn commands_at_once_on_a_host_stay_under_its_max_sessions() {
    let mut options = ApplianceOptions::nodes(1);
    options.max_sessions = 3;
    let hosts = appliances_with(options);
    let mut plan = String::from("[plan]\nname = \"wide\"\n");
    for i in 0..9 {
        plan.push_str(&format!(
            "[[step]]\nid = \"s{i}\"\ntype = \"ssh\"\nhost = \"rok-node-1\"\nrun = \"sleep 0.3\"\n"
        ));
    }
    let lab = Lab::with_plan(&plan);
    let ssh = ssh_args(&hosts);
    lab.run(&with_ssh(
        &[
            "execute",
            "plan.toml",
            "--parallel",
            "9",
            "--ssh-max-sessions",
            "3",
        ],
        &ssh,
    ))
    .code(0);
    let status = lab.status();
    for i in 0..9 {
        assert_eq!(state_of(&status, &format!("s{i}")), "succeeded");
    }
}
