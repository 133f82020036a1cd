//! The v0.11 tools' preconditions (seed 003), one by one, through ssh.

use rok_plan_lab::appliance::{ApplianceLab, V0_11};

use crate::support::{lab_with, ok, refused, ssh};

const UP: &str = "rok-cluster-upgrade-v0.11.0";

fn v0_11_lab(n: usize) -> ApplianceLab {
    lab_with(n, |o| o.boot_image = V0_11)
}

fn pin_and_upgrade_master(lab: &ApplianceLab) {
    ok(
        lab,
        "rok-node-1",
        "rok-config set cluster.master_candidates=$(hostname).rok-prod",
    );
    ok(lab, "rok-node-1", &format!("{UP} upgrade-cluster"));
    ok(
        lab,
        "rok-node-1",
        "sed -i 's#tcp://#http://#g' /etc/rok/daemons.conf",
    );
    ok(lab, "rok-node-1", &format!("{UP} upgrade-node"));
}

#[test]
fn before_v0_11_master_eligibility_is_the_candidate_list() {
    let lab = v0_11_lab(3);
    let get = ok(&lab, "rok-node-1", "rok-config get");
    assert!(!get.contains("master_capable"), "{get}");
    assert!(
        !get.contains("master_candidates"),
        "unset: every member may become master\n{get}"
    );
    refused(
        &lab,
        "rok-node-1",
        "rok-config set cluster.members.rok-node-2.master_capable=False",
        "unknown configuration key",
    );
    refused(
        &lab,
        "rok-node-1",
        "rok-config set cluster.master_candidates=rok-node-1",
        "not a member as HOST.rok-prod",
    );
    refused(
        &lab,
        "rok-node-1",
        &format!("{UP} upgrade-cluster"),
        "not the only master-capable node",
    );
    ok(
        &lab,
        "rok-node-1",
        "rok-config set cluster.master_candidates=$(hostname).rok-prod",
    );
    assert!(
        ok(&lab, "rok-node-1", "rok-config get")
            .contains("cluster.master_candidates=rok-node-1.rok-prod\n")
    );
    ok(&lab, "rok-node-1", &format!("{UP} upgrade-cluster"));
    // v0.11's shared state has a master_capable flag per member instead.
    let get = ok(&lab, "rok-node-1", "rok-config get | grep master_");
    assert_eq!(
        get,
        "cluster.members.rok-node-1.master_capable=True\n\
         cluster.members.rok-node-2.master_capable=False\n\
         cluster.members.rok-node-3.master_capable=False\n\
         host.master_capable=True\n"
    );
}

#[test]
fn upgrade_node_needs_http_openstore_endpoints() {
    let lab = v0_11_lab(2);
    ok(
        &lab,
        "rok-node-1",
        "rok-config set cluster.master_candidates=rok-node-1.rok-prod",
    );
    ok(&lab, "rok-node-1", &format!("{UP} upgrade-cluster"));
    assert!(lab.daemons_conf("rok-node-1").unwrap().contains("tcp://"));
    refused(
        &lab,
        "rok-node-1",
        &format!("{UP} upgrade-node"),
        "still uses tcp:// OpenStore endpoints",
    );
    ok(
        &lab,
        "rok-node-1",
        "sed -i 's#tcp://#http://#g' /etc/rok/daemons.conf",
    );
    ok(&lab, "rok-node-1", &format!("{UP} upgrade-node"));
    // Only the master's file changed.
    assert!(lab.daemons_conf("rok-node-2").unwrap().contains("tcp://"));
}

#[test]
fn etcd_auth_is_enabled_on_the_master_after_every_node() {
    let lab = v0_11_lab(3);
    refused(
        &lab,
        "rok-node-1",
        &format!("{UP} enable-etcd-auth"),
        "run upgrade-cluster first",
    );
    pin_and_upgrade_master(&lab);
    refused(
        &lab,
        "rok-node-1",
        &format!("{UP} enable-etcd-auth"),
        "every node must run v0.11.0 first: rok-node-2 runs v0.10.0",
    );
    for h in ["rok-node-2", "rok-node-3"] {
        refused(&lab, h, &format!("{UP} upgrade-node"), "still uses tcp://");
        ok(&lab, h, "sed -i 's#tcp://#http://#g' /etc/rok/daemons.conf");
        ok(&lab, h, &format!("{UP} upgrade-node"));
    }
    refused(
        &lab,
        "rok-node-2",
        &format!("{UP} enable-etcd-auth"),
        "must run on the master node",
    );
    ok(&lab, "rok-node-1", &format!("{UP} enable-etcd-auth"));
    assert!(lab.state().unwrap().cluster.etcd_auth);
    refused(
        &lab,
        "rok-node-1",
        &format!("{UP} enable-etcd-auth"),
        "already enabled",
    );
}

#[test]
fn a_v0_12_upgrade_needs_the_v0_11_upgrade_completed() {
    let lab = v0_11_lab(1);
    pin_and_upgrade_master(&lab);
    lab.set_boot_image("rok-node-1", rok_plan_lab::appliance::V0_12)
        .unwrap();
    refused(
        &lab,
        "rok-node-1",
        "rok-cluster-upgrade-v0.12.0 upgrade-cluster",
        "etcd SSL authentication and RBAC are not enabled",
    );
}

#[test]
fn gateway_migrations_need_the_gateway_stopped() {
    let lab = v0_11_lab(2);
    // gunicorn runs on the master from boot, only there.
    ok(&lab, "rok-node-1", "pgrep -f gunicorn");
    assert_eq!(
        ssh(&lab, "rok-node-2", "pgrep -f gunicorn").status.code(),
        Some(1)
    );
    refused(
        &lab,
        "rok-node-2",
        "rok-gw-manage migrate",
        "does not run on rok-node-2",
    );
    let pending = ok(&lab, "rok-node-1", "rok-gw-manage showmigrations");
    assert!(
        pending.contains(" [ ] 0004_openstore_endpoints"),
        "{pending}"
    );
    refused(
        &lab,
        "rok-node-1",
        "rok-gw-manage migrate",
        "the Gateway is running",
    );
    ok(&lab, "rok-node-1", "rok-gw-service stop");
    assert_eq!(
        ssh(&lab, "rok-node-1", "pgrep -f gunicorn").status.code(),
        Some(1)
    );
    let out = ok(&lab, "rok-node-1", "rok-gw-manage migrate");
    assert!(
        out.contains("Applying gateway.0005_etcd_credentials... OK"),
        "{out}"
    );
    ok(
        &lab,
        "rok-node-1",
        "! rok-gw-manage showmigrations | grep -qF '[ ]'",
    );
    assert!(ok(&lab, "rok-node-1", "rok-gw-manage migrate").contains("No migrations to apply"));
    assert!(ok(&lab, "rok-node-1", "rok-gw-manage migrate --help").contains("usage"));
    ok(&lab, "rok-node-1", "rok-gw-service start");
    ok(&lab, "rok-node-1", "pgrep -f gunicorn");
    // The daemon outlives the ssh command that started it.
    ok(&lab, "rok-node-1", "rok-gw-service status");
}
