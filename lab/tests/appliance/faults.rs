//! Injected failures and delays, and the journal of what ran where.

use std::time::{Duration, Instant};

use rok_plan_lab::appliance::{ApplianceLab, Fault};

use crate::support::{lab, ok, refused, ssh};

const UP_NODE: &str = "rok-cluster-upgrade-v0.12.0 upgrade-node";

fn ready_for_upgrade_node(lab: &ApplianceLab) {
    ok(
        lab,
        "rok-node-1",
        "rok-config set cluster.members.rok-node-2.master_capable=False",
    );
    ok(
        lab,
        "rok-node-1",
        "rok-cluster-upgrade-v0.12.0 upgrade-cluster",
    );
}

#[test]
fn a_command_fails_once_then_works_and_the_journal_shows_both() {
    let lab = lab(2);
    ready_for_upgrade_node(&lab);
    lab.fail_once("rok-node-1", UP_NODE).unwrap();
    refused(&lab, "rok-node-1", UP_NODE, "injected failure");
    assert_eq!(
        lab.state()
            .unwrap()
            .node("rok-node-1")
            .unwrap()
            .version
            .to_string(),
        "0.11.0"
    );
    ok(&lab, "rok-node-1", UP_NODE);
    let runs = lab.invocations("rok-node-1", UP_NODE).unwrap();
    let codes: Vec<Option<i32>> = runs.iter().map(|i| i.exit_code).collect();
    assert_eq!(codes, [Some(1), Some(0)]);
    assert!(runs.iter().all(|i| i.ended_ms.unwrap() >= i.started_ms));
    assert_eq!(
        runs[0].argv,
        ["rok-cluster-upgrade-v0.12.0", "upgrade-node"]
    );
    // Other commands and hosts were not affected; the fault is used up.
    assert_eq!(lab.faults().unwrap()[0].remaining, Some(0));
    assert!(lab.invocations("rok-node-2", UP_NODE).unwrap().is_empty());
}

#[test]
fn a_command_fails_n_times_with_a_chosen_status() {
    let lab = lab(1);
    let mut f = Fault::fail("rok-node-1", "rok-config get", 2);
    f.action = rok_plan_lab::appliance::FaultAction::Fail { exit_code: 7 };
    lab.add_fault(f).unwrap();
    // `rok-config set` does not match `rok-config get`.
    ok(&lab, "rok-node-1", "rok-config set composer.map_version=3");
    for _ in 0..2 {
        assert_eq!(
            ssh(&lab, "rok-node-1", "rok-config get").status.code(),
            Some(7)
        );
    }
    ok(&lab, "rok-node-1", "rok-config get");
}

#[test]
fn a_delayed_command_killed_midway_leaves_no_effect_and_no_end_in_the_journal() {
    let lab = lab(2);
    ready_for_upgrade_node(&lab);
    lab.delay("rok-node-1", UP_NODE, Duration::from_secs(30))
        .unwrap();
    let mut running = lab.ssh("rok-node-1").arg(UP_NODE).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while lab.invocations("rok-node-1", UP_NODE).unwrap().is_empty() {
        assert!(Instant::now() < deadline, "the command did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    // A crash of the host in the middle of the command.
    lab.stop_host("rok-node-1").unwrap();
    assert_eq!(running.wait().unwrap().code(), Some(255));
    let runs = lab.invocations("rok-node-1", UP_NODE).unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].exit_code, None);
    assert_eq!(runs[0].ended_ms, None);
    assert_eq!(
        lab.state()
            .unwrap()
            .node("rok-node-1")
            .unwrap()
            .version
            .to_string(),
        "0.11.0"
    );
}

#[test]
fn a_delay_after_the_work_leaves_the_effect_in_doubt() {
    let lab = lab(2);
    ready_for_upgrade_node(&lab);
    lab.add_fault(Fault::delay_after(
        "rok-node-1",
        UP_NODE,
        Duration::from_secs(30),
    ))
    .unwrap();
    let mut running = lab.ssh("rok-node-1").arg(UP_NODE).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while lab
        .state()
        .unwrap()
        .node("rok-node-1")
        .unwrap()
        .version
        .to_string()
        != "0.12.0"
    {
        assert!(Instant::now() < deadline, "the work was not done");
        std::thread::sleep(Duration::from_millis(20));
    }
    running.kill().unwrap();
    lab.stop_host("rok-node-1").unwrap();
    let _ = running.wait();
    let runs = lab.invocations("rok-node-1", UP_NODE).unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].exit_code, None);
}

#[test]
fn a_short_delay_slows_a_command_down() {
    let lab = lab(1);
    lab.delay("rok-node-1", "rok-cluster-ctl", Duration::from_millis(800))
        .unwrap();
    let start = Instant::now();
    ok(&lab, "rok-node-1", "rok-cluster-ctl member-list");
    assert!(start.elapsed() >= Duration::from_millis(800));
}

#[test]
fn the_journal_tells_how_often_each_command_ran_on_each_host() {
    let lab = lab(3);
    ok(
        &lab,
        "rok-node-1",
        "rok-config set cluster.members.rok-node-2.master_capable=False cluster.members.rok-node-3.master_capable=False",
    );
    ok(
        &lab,
        "rok-node-1",
        "rok-cluster-upgrade-v0.12.0 upgrade-cluster",
    );
    for h in lab.hosts() {
        ok(&lab, &h, UP_NODE);
    }
    for h in lab.hosts() {
        assert_eq!(lab.invocations(&h, UP_NODE).unwrap().len(), 1, "{h}");
    }
    let journal = lab.journal().unwrap();
    assert_eq!(journal.len(), 5);
    assert!(journal.iter().all(|i| i.exit_code == Some(0)));
    assert_eq!(journal[1].host, "rok-node-1");
    assert!(journal[1].is("rok-cluster-upgrade-v0.12.0 upgrade-cluster"));
}
