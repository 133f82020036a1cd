//! The v0.12 tools' preconditions (seed 002), one by one, through ssh.

use rok_plan_lab::appliance::V0_12;

use crate::support::{lab, lab_with, ok, refused, ssh};

const UP: &str = "rok-cluster-upgrade-v0.12.0";

fn pin(lab: &rok_plan_lab::appliance::ApplianceLab) {
    ok(
        lab,
        "rok-node-1",
        "rok-config set cluster.members.rok-node-2.master_capable=False cluster.members.rok-node-3.master_capable=False",
    );
}

#[test]
fn member_list_shows_the_master_and_config_get_the_master_capability() {
    let lab = lab(3);
    let list = ok(&lab, "rok-node-2", "rok-cluster-ctl member-list");
    let lines: Vec<&str> = list.lines().collect();
    assert!(lines[0].starts_with("NAME"), "{list}");
    assert!(lines[1].starts_with("rok-node-1  master"), "{list}");
    assert!(lines[2].starts_with("rok-node-2  slave"), "{list}");
    let get = ok(&lab, "rok-node-2", "rok-config get | grep master_capable");
    assert_eq!(
        get,
        "cluster.members.rok-node-1.master_capable=True\n\
         cluster.members.rok-node-2.master_capable=True\n\
         cluster.members.rok-node-3.master_capable=True\n\
         host.master_capable=True\n"
    );
    // `host.` keys are this node's.
    ok(
        &lab,
        "rok-node-2",
        "rok-config set host.master_capable=False",
    );
    assert!(
        ok(&lab, "rok-node-1", "rok-config get")
            .contains("cluster.members.rok-node-2.master_capable=False")
    );
    refused(
        &lab,
        "rok-node-1",
        "rok-config set cluster.members.rok-node-9.master_capable=False",
        "no cluster member named rok-node-9",
    );
    refused(
        &lab,
        "rok-node-1",
        "rok-config set cluster.members.rok-node-2.master_capable=no",
        "not True or False",
    );
    refused(
        &lab,
        "rok-node-1",
        "rok-config set cluster.master_candidates=rok-node-1.rok-prod",
        "unknown configuration key",
    );
    refused(
        &lab,
        "rok-node-1",
        "rok-config set no.such.key=1",
        "unknown configuration key",
    );
    assert_eq!(
        ssh(&lab, "rok-node-1", "rok-config frobnicate")
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn the_seed_one_liner_unpins_every_other_node() {
    let lab = lab(3);
    ok(
        &lab,
        "rok-node-1",
        r#"for i in $(rok-config get | grep master_capable | grep -v $(hostname)| grep -v "^host"); do rok-config set $(echo $i | sed 's/True/False/'); done"#,
    );
    let get = ok(
        &lab,
        "rok-node-1",
        "rok-config get | grep '^cluster.*master_capable'",
    );
    assert_eq!(
        get,
        "cluster.members.rok-node-1.master_capable=True\n\
         cluster.members.rok-node-2.master_capable=False\n\
         cluster.members.rok-node-3.master_capable=False\n"
    );
}

#[test]
fn upgrade_cluster_runs_only_on_a_pinned_master_and_once() {
    let lab = lab(3);
    refused(
        &lab,
        "rok-node-2",
        &format!("{UP} upgrade-cluster"),
        "must run on the master node (rok-node-1)",
    );
    refused(
        &lab,
        "rok-node-1",
        &format!("{UP} upgrade-cluster"),
        "not the only master-capable node",
    );
    pin(&lab);
    ok(&lab, "rok-node-1", &format!("{UP} upgrade-cluster"));
    assert_eq!(lab.state().unwrap().cluster.version, V0_12);
    refused(
        &lab,
        "rok-node-1",
        &format!("{UP} upgrade-cluster"),
        "already at v0.12.0",
    );
    assert_eq!(
        ssh(&lab, "rok-node-1", &format!("{UP} enable-etcd-auth"))
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn upgrade_node_needs_the_cluster_then_the_master_upgraded() {
    let lab = lab(3);
    refused(
        &lab,
        "rok-node-1",
        &format!("{UP} upgrade-node"),
        "run `rok-cluster-upgrade-v0.12.0 upgrade-cluster` on the master (rok-node-1) first",
    );
    pin(&lab);
    ok(&lab, "rok-node-1", &format!("{UP} upgrade-cluster"));
    refused(
        &lab,
        "rok-node-2",
        &format!("{UP} upgrade-node"),
        "upgrade the master node first",
    );
    ok(&lab, "rok-node-1", &format!("{UP} upgrade-node"));
    ok(&lab, "rok-node-2", &format!("{UP} upgrade-node"));
    refused(
        &lab,
        "rok-node-2",
        &format!("{UP} upgrade-node"),
        "already at v0.12.0",
    );
    let state = lab.state().unwrap();
    assert_eq!(state.node("rok-node-2").unwrap().version, V0_12);
    assert_eq!(
        state.node("rok-node-3").unwrap().version.to_string(),
        "0.11.0"
    );
}

#[test]
fn maps_upgrade_only_after_every_node_and_the_applied_map_version() {
    let lab = lab(2);
    refused(
        &lab,
        "rok-node-1",
        "rok-config set composer.map_version=4",
        "needs the cluster's shared state at v0.12.0",
    );
    ok(
        &lab,
        "rok-node-1",
        "rok-config set cluster.members.rok-node-2.master_capable=False",
    );
    ok(
        &lab,
        "rok-node-1",
        &format!("{UP} upgrade-cluster && {UP} upgrade-node"),
    );
    ok(&lab, "rok-node-1", "rok-config set composer.map_version=4");
    refused(
        &lab,
        "rok-node-1",
        "rok-config apply",
        "needs every node at v0.12.0: rok-node-2 runs v0.11.0",
    );
    refused(
        &lab,
        "rok-node-1",
        "rok-composer-tool map-upgrade --all",
        "needs every node at v0.12.0",
    );
    ok(&lab, "rok-node-2", &format!("{UP} upgrade-node"));
    refused(
        &lab,
        "rok-node-1",
        "rok-composer-tool map-upgrade --all",
        "composer.map_version=4 is not applied",
    );
    ok(&lab, "rok-node-1", "rok-config apply");
    let out = ok(&lab, "rok-node-1", "rok-composer-tool map-upgrade --all");
    assert!(out.contains("backup: map-1~v3.bak"), "{out}");
    assert!(ok(&lab, "rok-node-1", "rok-composer-tool map-upgrade --all").contains("already"));
    ok(&lab, "rok-node-1", "rok-composer-tool verify");
    let state = lab.state().unwrap();
    assert!(state.cluster.maps.iter().all(|m| m.format == 4));
    assert_eq!(state.cluster.map_backups.len(), 3);
    let gc = ok(&lab, "rok-node-1", "rok-cluster-gc --delete-backups");
    assert_eq!(gc.lines().count(), 3, "{gc}");
    assert!(lab.state().unwrap().cluster.map_backups.is_empty());
}

#[test]
fn verify_fails_while_maps_are_behind_the_applied_format() {
    let lab = lab_with(1, |o| o.initial_version = Some(V0_12));
    ok(&lab, "rok-node-1", "rok-composer-tool verify");
    ok(
        &lab,
        "rok-node-1",
        "rok-config set composer.map_version=4 && rok-config apply",
    );
    refused(
        &lab,
        "rok-node-1",
        "rok-composer-tool verify",
        "maps not in the v4 format: map-1, map-2, map-3",
    );
    ok(
        &lab,
        "rok-node-1",
        "rok-composer-tool map-upgrade map-1 map-2 map-3",
    );
    ok(&lab, "rok-node-1", "rok-composer-tool verify");
}
