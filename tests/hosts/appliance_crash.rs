//! The crash test of the executor, on the v0.12 plan against real hosts: rok-plan is
//! killed with SIGKILL at many points of the run (the fault hook kills it right after its
//! Nth durable commit, with the rolling node upgrade in flight), then resumed until the
//! run is done. A step left in doubt is decided the way an operator would: by looking at
//! the host (the lab's journal of tool invocations) once the command there has ended.
//! Every host ends upgraded, and no `upgrade-node` ran twice on a host unless the first
//! one had failed or been killed.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rok_plan_lab::appliance::{ApplianceLab, Invocation};

use crate::appliance_plans::{assert_upgraded_to_v0_12, runs_of};
use crate::support::Lab;
use crate::{appliances, execute_shipped, ssh_args, strs, with_ssh};

/// The tool command and host an in-doubt instance of the v0.12 plan ran.
fn command_of(instance: &str, master: &str) -> Option<(&'static str, String)> {
    let upgrade_node = "rok-cluster-upgrade-v0.12.0 upgrade-node";
    match instance {
        "upgrade-cluster" => Some(("rok-cluster-upgrade-v0.12.0 upgrade-cluster", master.into())),
        "upgrade-master-node" => Some((upgrade_node, master.into())),
        "map-upgrade" => Some(("rok-composer-tool map-upgrade", master.into())),
        _ => {
            let host = instance
                .strip_prefix("slaves/")?
                .strip_suffix("/upgrade-node")?;
            Some((upgrade_node, host.to_string()))
        }
    }
}

/// The last invocation of `command` on `host`, once it has ended (a command left running
/// by the killed rok-plan finishes on the host); `None` if it never started.
fn settled(hosts: &ApplianceLab, command: &str, host: &str) -> Option<Invocation> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let last = runs_of(hosts, command)
            .into_iter()
            .rfind(|i| i.host == host);
        match last {
            Some(i) if i.ended_ms.is_none() && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50));
            }
            other => return other,
        }
    }
}

fn in_doubt(lab: &Lab) -> Vec<String> {
    lab.status()["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter(|s| s["state"] == "running")
        .map(|s| s["instance"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// Kills rok-plan after its `n`th commit, then resumes (deciding in-doubt steps from the
/// hosts) until the run succeeds. Returns how many runs of each command were reruns
/// rok-plan was told to make, by host.
fn crash_and_resume(hosts: &ApplianceLab, n: u64) -> BTreeMap<String, usize> {
    let lab = Lab::new();
    let ssh = ssh_args(hosts);
    let owned = execute_shipped(hosts, "0.12", &["--yes"]);
    let args = strs(&owned);
    let mut cmd = lab.cmd(&args);
    cmd.env("ROK_PLAN_TEST_KILL_AFTER_COMMITS", n.to_string());
    let first = lab.run_cmd(cmd, &args);
    let mut reruns: BTreeMap<String, usize> = BTreeMap::new();
    if first.code == Some(0) {
        return reruns;
    }
    assert_eq!(
        first.code,
        None,
        "killed by the fault hook:\n{}",
        first.all()
    );
    let id = lab.run_id();
    let master = hosts.master().to_string();
    let mut decisions: Vec<String> = Vec::new();
    for _ in 0..10 {
        let mut resume: Vec<&str> = vec!["resume", &id, "--yes"];
        resume.extend(decisions.iter().map(String::as_str));
        let out = lab.run(&with_ssh(&resume, &ssh));
        match out.code {
            Some(0) => return reruns,
            Some(3) => {
                decisions.clear();
                for instance in in_doubt(&lab) {
                    let (command, host) = command_of(&instance, &master).unwrap_or_else(|| {
                        panic!("unexpected step in doubt: {instance}\n{}", out.all())
                    });
                    match settled(hosts, command, &host) {
                        Some(i) if i.exit_code == Some(0) => {
                            decisions.push("--assume-done".into());
                        }
                        _ => {
                            *reruns.entry(format!("{host} {command}")).or_default() += 1;
                            decisions.push("--rerun".into());
                        }
                    }
                    decisions.push(instance);
                }
                assert!(
                    !decisions.is_empty(),
                    "exit 3 without a step in doubt:\n{}",
                    out.all()
                );
            }
            _ => panic!("resume after a kill at commit {n} failed:\n{}", out.all()),
        }
    }
    panic!("the run did not finish after 10 resumes (kill at commit {n})");
}

#[test]
fn sigkill_anywhere_in_the_v0_12_run_then_resume_upgrades_every_host_once() {
    // A slow upgrade-node, so that kills land while it runs on a host.
    for n in [2, 5, 9, 14, 20, 27, 33, 40, 48, 57] {
        let hosts = appliances(4);
        hosts
            .delay(
                "",
                "rok-cluster-upgrade-v0.12.0 upgrade-node",
                Duration::from_millis(300),
            )
            .unwrap();
        let reruns = crash_and_resume(&hosts, n);
        if reruns.is_empty() {
            assert_upgraded_to_v0_12(&hosts);
        } else {
            // A command that failed or was killed on its host was run again: the cluster
            // still ends upgraded, and each host has exactly one successful upgrade-node.
            let state = hosts.state().unwrap();
            assert!(
                state
                    .nodes
                    .iter()
                    .all(|node| node.version == rok_plan_lab::appliance::V0_12)
            );
            for host in hosts.hosts() {
                let ok = runs_of(&hosts, "rok-cluster-upgrade-v0.12.0 upgrade-node")
                    .into_iter()
                    .filter(|i| i.host == host && i.exit_code == Some(0))
                    .count();
                assert_eq!(ok, 1, "{host} (kill at commit {n}, reruns {reruns:?})");
            }
        }
    }
}
