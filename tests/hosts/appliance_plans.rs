//! The shipped appliance plans, end to end on a 4-node lab: the master is pinned and
//! upgraded first, every BOOT-disk swap pauses the run, the slaves upgrade one at a time,
//! and the cluster ends upgraded.

use rok_plan_lab::appliance::{ApplianceLab, Invocation, V0_12};

use crate::support::{Lab, state_of};
use crate::{appliances, execute_shipped, ssh_args, strs, with_ssh};

/// A shipped plan, by its path in the repository.
pub(crate) fn shipped(plan: &str) -> String {
    format!("{}/plans/{plan}", env!("CARGO_MANIFEST_DIR"))
}

/// The invocations of `command` in the journal, in start order.
pub(crate) fn runs_of(hosts: &ApplianceLab, command: &str) -> Vec<Invocation> {
    let mut v: Vec<Invocation> = hosts
        .journal()
        .expect("the journal")
        .into_iter()
        .filter(|i| i.is(command))
        .collect();
    v.sort_by_key(|i| i.started_ms);
    v
}

/// The instances awaiting approval, from `status`.
fn awaiting(lab: &Lab) -> Vec<String> {
    lab.status()["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter(|s| s["state"] == "awaiting_approval")
        .map(|s| s["instance"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// Every slave has lost master capability (v0.12's pinning).
fn assert_master_pinned(hosts: &ApplianceLab) {
    let state = hosts.state().expect("the lab state");
    for slave in hosts.slaves() {
        let key = format!("cluster.members.{slave}.master_capable");
        assert_eq!(
            state.cluster.config.get(&key).map(String::as_str),
            Some("False"),
            "{slave} lost master capability"
        );
    }
}

/// Checks the end state of a v0.12 upgrade on every host, and the order of the upgrades.
pub(crate) fn assert_upgraded_to_v0_12(hosts: &ApplianceLab) {
    let state = hosts.state().expect("the lab state");
    assert_eq!(state.cluster.version, V0_12, "the cluster's shared state");
    for node in &state.nodes {
        assert_eq!(node.version, V0_12, "node {}", node.name);
    }
    let master = hosts.master().to_string();
    assert_eq!(state.cluster.master, master, "the master stayed the master");
    assert_master_pinned(hosts);
    // Each node upgraded exactly once; the master before any slave; slaves one at a time.
    let upgrades = runs_of(hosts, "rok-cluster-upgrade-v0.12.0 upgrade-node");
    let order: Vec<&str> = upgrades.iter().map(|i| i.host.as_str()).collect();
    let mut expected = vec![master.as_str()];
    let slaves = hosts.slaves();
    expected.extend(slaves.iter().map(String::as_str));
    assert_eq!(
        order, expected,
        "upgrade-node: once per host, master first, slaves in order"
    );
    for pair in upgrades.windows(2) {
        let ended = pair[0].ended_ms.expect("the upgrade ended");
        assert!(
            ended <= pair[1].started_ms,
            "{} and {} overlapped",
            pair[0].host,
            pair[1].host
        );
    }
    let cluster = runs_of(hosts, "rok-cluster-upgrade-v0.12.0 upgrade-cluster");
    assert_eq!(cluster.len(), 1);
    assert_eq!(cluster[0].host, master);
}

#[test]
fn v0_12_pauses_at_every_boot_disk_swap_and_upgrades_master_first_then_each_slave_alone() {
    let hosts = appliances(4);
    let lab = Lab::new();
    let ssh = ssh_args(&hosts);
    let args = execute_shipped(&hosts, "0.12", &[]);
    let out = lab.run(&strs(&args));
    out.code(3);
    assert_eq!(awaiting(&lab), ["swap-boot-master"]);
    assert!(
        runs_of(&hosts, "rok-cluster-upgrade-v0.12.0").is_empty(),
        "nothing upgraded before the swap"
    );
    // The master is pinned before its BOOT disk is swapped.
    assert_master_pinned(&hosts);

    // The operator approves each swap as it comes: the master's, then each slave's alone.
    let id = lab.run_id();
    let mut approved = vec!["swap-boot-master".to_string()];
    let mut pauses = 1;
    loop {
        let last = approved.last().cloned().unwrap_or_default();
        let out = lab.run(&with_ssh(&["resume", &id, "--approve", &last], &ssh));
        match out.code {
            Some(0) => break,
            Some(3) => {
                let waiting = awaiting(&lab);
                assert_eq!(waiting.len(), 1, "one BOOT disk at a time: {waiting:?}");
                pauses += 1;
                approved.push(waiting[0].clone());
            }
            _ => panic!("resume failed:\n{}", out.all()),
        }
    }
    assert_eq!(
        approved,
        [
            "swap-boot-master",
            "slaves/rok-node-2/swap-boot-disk",
            "slaves/rok-node-3/swap-boot-disk",
            "slaves/rok-node-4/swap-boot-disk"
        ]
    );
    assert_eq!(pauses, 4);
    assert_upgraded_to_v0_12(&hosts);
    let state = hosts.state().unwrap();
    assert!(
        state.cluster.maps.iter().all(|m| m.format == 4),
        "maps upgraded: {:?}",
        state.cluster.maps
    );
    assert_eq!(
        state
            .cluster
            .applied_config
            .get("composer.map_version")
            .map(String::as_str),
        Some("4")
    );
    assert!(
        !state.cluster.map_backups.is_empty(),
        "backups kept (delete_map_backups = false)"
    );
    assert_eq!(state_of(&lab.status(), "delete-map-backups"), "skipped");
}

#[test]
fn v0_12_with_yes_and_the_s3_and_backup_branches_on() {
    let hosts = appliances(4);
    let lab = Lab::new();
    let args = execute_shipped(
        &hosts,
        "0.12",
        &[
            "--yes",
            "--set",
            "s3_assume_no_versioning=true",
            "--set",
            "s3d_hosts=rok-node-1,rok-node-3",
            "--set",
            "delete_map_backups=true",
        ],
    );
    lab.run(&strs(&args)).code(0);
    assert_upgraded_to_v0_12(&hosts);
    let state = hosts.state().unwrap();
    assert!(
        state.cluster.map_backups.is_empty(),
        "backups deleted after verify"
    );
    for host in ["rok-node-1", "rok-node-3"] {
        let conf = hosts.daemons_conf(host).unwrap();
        assert!(
            conf.contains("assume-no-versioning = true"),
            "{host}: {conf}"
        );
    }
    for host in ["rok-node-2", "rok-node-4"] {
        assert!(
            !hosts
                .daemons_conf(host)
                .unwrap()
                .contains("assume-no-versioning"),
            "{host}"
        );
    }
}

#[test]
fn v0_11_from_v0_10_pins_upgrades_migrates_the_gateway_and_enables_etcd_auth() {
    let mut options = rok_plan_lab::appliance::ApplianceOptions::nodes(4);
    options.boot_image = rok_plan_lab::appliance::V0_11;
    let hosts = crate::appliances_with(options);
    let lab = Lab::new();
    let args = execute_shipped(&hosts, "0.11", &["--yes"]);
    lab.run(&strs(&args)).code(0);

    let state = hosts.state().unwrap();
    assert_eq!(state.cluster.version, rok_plan_lab::appliance::V0_11);
    assert!(
        state
            .nodes
            .iter()
            .all(|n| n.version == rok_plan_lab::appliance::V0_11),
        "{:?}",
        state.nodes
    );
    assert!(
        state.cluster.etcd_auth,
        "enable-etcd-auth ran after every node"
    );
    assert!(
        !state.cluster.gateway_migrations.is_empty(),
        "the Gateway's migrations were applied"
    );
    for host in hosts.hosts() {
        let conf = hosts.daemons_conf(&host).unwrap();
        assert!(
            !conf.contains("tcp://") && conf.contains("http://"),
            "{host}: {conf}"
        );
    }
    let upgrades = runs_of(&hosts, "rok-cluster-upgrade-v0.11.0 upgrade-node");
    let order: Vec<&str> = upgrades.iter().map(|i| i.host.as_str()).collect();
    assert_eq!(
        order,
        ["rok-node-1", "rok-node-2", "rok-node-3", "rok-node-4"]
    );
    for pair in upgrades.windows(2) {
        assert!(pair[0].ended_ms.unwrap_or(u64::MAX) <= pair[1].started_ms);
    }
    let etcd = runs_of(&hosts, "rok-cluster-upgrade-v0.11.0 enable-etcd-auth");
    assert_eq!(etcd.len(), 1);
    assert!(etcd[0].started_ms >= upgrades.last().and_then(|i| i.ended_ms).unwrap_or(u64::MAX));
    // The Gateway runs again after its migration.
    let gunicorn = crate::on_host(&hosts, "rok-node-1", "pgrep -c gunicorn || true");
    assert_eq!(gunicorn.trim(), "1");
}

#[test]
fn a_wrong_master_stops_the_v0_11_run_before_anything_changes() {
    let mut options = rok_plan_lab::appliance::ApplianceOptions::nodes(3);
    options.boot_image = rok_plan_lab::appliance::V0_11;
    let hosts = crate::appliances_with(options);
    let lab = Lab::new();
    // rok-node-2 is not the master.
    let args = execute_shipped(
        &hosts,
        "0.11",
        &[
            "--yes",
            "--set",
            "master=rok-node-2",
            "--set",
            "slaves=rok-node-1,rok-node-3",
        ],
    );
    lab.run(&strs(&args)).code(1);
    assert_eq!(state_of(&lab.status(), "find_master"), "failed");
    let changes: Vec<Invocation> = hosts
        .journal()
        .unwrap()
        .into_iter()
        .filter(|i| i.is("rok-config set") || i.argv[0].starts_with("rok-cluster-upgrade"))
        .collect();
    assert!(changes.is_empty(), "nothing was changed: {changes:?}");
}

#[test]
fn a_slave_missing_from_the_parameters_stops_v0_12_at_the_pinning_check() {
    let hosts = appliances(3);
    let lab = Lab::new();
    // rok-node-3 is forgotten: it stays master capable.
    let args = execute_shipped(&hosts, "0.12", &["--yes", "--set", "slaves=rok-node-2"]);
    lab.run(&strs(&args)).code(1);
    let status = lab.status();
    assert_eq!(state_of(&status, "verify-master-pinned"), "failed");
    assert_eq!(state_of(&status, "upgrade-cluster"), "pending");
    assert!(runs_of(&hosts, "rok-cluster-upgrade-v0.12.0").is_empty());
}
