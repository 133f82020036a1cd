//! `plans/pmk-cluster-upgrade.toml` end to end on a 5-node lab cluster (seed 004): one node
//! at a time, the seed's warnings as pre-flight refusals, the service-account token refresh.

use serde_json::Value;

use super::pmk_lab::{Availability, HAND_CORDONED, NEW_VERSION, PmkLab, text};

fn uid(v: &Value) -> String {
    v["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn pod_uids(lab: &PmkLab, app: &str) -> Vec<String> {
    lab.pods()
        .iter()
        .filter(|p| p["metadata"]["labels"]["app"] == app)
        .map(uid)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pmk_upgrade_rolls_every_node_within_budgets_and_refreshes_tokens() {
    let lab = PmkLab::start(5).await;
    let params = lab.params("allow_unmanaged = true\nallow_emptydir_loss = true");
    let params = params.to_str().expect("utf-8 path");
    let batch_before = pod_uids(&lab, "batch-worker");
    let debug_before = lab
        .cluster
        .get("", "pods", "default", "debug-shell")
        .expect("debug-shell");

    let availability = Availability::watch(lab.cluster.clone());
    let plan = super::pmk_lab::pmk_plan();
    let plan = plan.to_str().expect("utf-8 path");
    let out = lab.run(&["execute", plan, "--params", params]).await;
    availability.assert_within_budgets().await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    lab.assert_every_node_upgraded();
    // Node by node, in order: each node's uncordon before the next node's cordon.
    let stderr = String::from_utf8_lossy(&out.stderr);
    let mut last = 0;
    for node in &lab.nodes {
        let at = stderr
            .find(&format!("nodes/{node}/upgrade"))
            .unwrap_or_else(|| panic!("no upgrade of {node}\n{}", text(&out)));
        assert!(at >= last, "{node} upgraded out of order\n{}", text(&out));
        last = at;
    }
    assert!(
        stderr.contains(&format!("nodes/{HAND_CORDONED}/uncordon: already in place")),
        "{}",
        text(&out)
    );
    // The unmanaged pod was deleted (allowed), not rescheduled.
    assert!(lab.cluster.get("", "pods", "default", "scratch").is_none());
    // Token refresh: batch-worker bounced to new pods at its replica count.
    let rc = lab
        .cluster
        .get("", "replicationcontrollers", "default", "batch-worker")
        .expect("batch-worker");
    assert_eq!(rc["spec"]["replicas"], 2);
    let batch_after = pod_uids(&lab, "batch-worker");
    assert_eq!(batch_after.len(), 2, "{batch_after:?}");
    assert!(batch_after.iter().all(|u| !batch_before.contains(u)));
    // frontend replaced by a copy of itself (its budget was never broken: checked above).
    assert!(
        lab.cluster
            .get("", "replicationcontrollers", "default", "frontend")
            .is_none()
    );
    let copies: Vec<Value> = lab
        .cluster
        .list("", "replicationcontrollers", Some("default"))
        .into_iter()
        .filter(|rc| {
            rc["metadata"]["name"]
                .as_str()
                .is_some_and(|n| n.starts_with("frontend-"))
        })
        .collect();
    assert_eq!(copies.len(), 1, "{copies:#?}");
    assert_eq!(copies[0]["spec"]["replicas"], 2);
    // The stand-alone pod re-created (a new uid), on an upgraded node.
    let debug_after = lab
        .cluster
        .get("", "pods", "default", "debug-shell")
        .expect("debug-shell re-created");
    assert_ne!(uid(&debug_after), uid(&debug_before));

    let status = lab.run(&["status"]).await;
    assert_eq!(status.status.code(), Some(0), "{}", text(&status));
    let status = String::from_utf8_lossy(&status.stdout);
    assert!(status.contains("succeeded"), "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pmk_preflight_refuses_unmanaged_and_emptydir_pods_until_allowed() {
    let lab = PmkLab::start(5).await;
    let params = lab.params("");
    let params = params.to_str().expect("utf-8 path");
    let plan = super::pmk_lab::pmk_plan();
    let plan = plan.to_str().expect("utf-8 path");
    // The rehearsal names every pod that would stop a drain, per node, and changes nothing.
    let rehearsal = lab
        .run(&["plan", "--server-dry-run", plan, "--params", params])
        .await;
    assert_eq!(rehearsal.status.code(), Some(1), "{}", text(&rehearsal));
    let said = String::from_utf8_lossy(&rehearsal.stdout);
    assert!(
        said.contains("default/scratch: unmanaged") && said.contains("allow_unmanaged"),
        "{}",
        text(&rehearsal)
    );
    assert!(
        said.contains("emptyDir volume scratch-space") && said.contains("allow_emptydir_loss"),
        "{}",
        text(&rehearsal)
    );

    // A run with the defaults stops at the first node whose pre-flight refuses, before
    // evicting anything there, and uncordons what it cordoned.
    let out = lab.run(&["execute", plan, "--params", params]).await;
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));
    let all = text(&out);
    assert!(
        all.contains("pre-flight refused to drain node node-1: ")
            && all.contains("default/scratch: unmanaged"),
        "{all}"
    );
    assert!(lab.cluster.get("", "pods", "default", "scratch").is_some());
    for name in &lab.nodes {
        let node = lab.node(name);
        assert_eq!(
            node["spec"]["unschedulable"] == true,
            name == HAND_CORDONED,
            "{name}\n{all}"
        );
        assert!(node["metadata"]["annotations"]["rok-plan/cordoned-by-run"].is_null());
    }

    // Allowing both lets the run through.
    let params = lab.params("allow_unmanaged = true\nallow_emptydir_loss = true");
    let params = params.to_str().expect("utf-8 path");
    let out = lab
        .run(&["execute", "--new", plan, "--params", params])
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    lab.assert_every_node_upgraded();
    assert_eq!(
        lab.node("node-1")["status"]["nodeInfo"]["kubeletVersion"],
        NEW_VERSION
    );
}

/// Nodes change between a read and a write all the time (heartbeats, the node controller's
/// taint): a cordon or uncordon refused with 409 reads the node again instead of failing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cordon_and_uncordon_read_the_node_again_after_a_409() {
    let lab = PmkLab::start(3).await;
    let dir = tempfile::tempdir().expect("dir");
    let plan = dir.path().join("plan.toml");
    std::fs::write(
        &plan,
        "[plan]\nname = \"conflict\"\n\n[[step]]\nid = \"cordon\"\ntype = \"kube.cordon\"\nnode = \"node-1\"\n\n\
         [[step]]\nid = \"uncordon\"\ntype = \"kube.uncordon\"\nnode = \"node-1\"\nneeds = [\"cordon\"]\n",
    )
    .expect("plan");
    lab.cluster
        .fail_next(Some("PATCH"), "/nodes/node-1", 409, 2);
    let out = lab.run(&["execute", plan.to_str().expect("utf-8")]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let node = lab.node("node-1");
    assert_ne!(node["spec"]["unschedulable"], true, "{node:#}");
    assert!(node["metadata"]["annotations"]["rok-plan/cordoned-by-run"].is_null());
}

/// A drain that a budget never lets through ends at the step's `timeout`, naming the budget
/// and the pods still waiting; nothing of the budget's is evicted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drain_blocked_by_a_budget_fails_at_its_timeout_naming_the_budget() {
    let lab = PmkLab::start(5).await;
    // Every web pod must stay: the budget allows no disruption at all.
    lab.set_web_min_available(3);
    let pods = lab.pods();
    let node = pods
        .iter()
        .find(|p| p["metadata"]["labels"]["app"] == "web")
        .and_then(|p| p["spec"]["nodeName"].as_str())
        .expect("a web pod is scheduled")
        .to_string();
    let web_before = pod_uids(&lab, "web");
    let plan = lab.dir.path().join("drain.toml");
    std::fs::write(
        &plan,
        format!(
            "[plan]\nname = \"drain-one\"\n\n[[step]]\nid = \"drain\"\ntype = \"kube.drain\"\n\
             node = \"{node}\"\nallow_unmanaged = true\nallow_emptydir_loss = true\n\
             wait_for_budgets = true\ntimeout = \"5s\"\n"
        ),
    )
    .expect("plan");
    let out = lab
        .run(&["execute", plan.to_str().expect("utf-8 path")])
        .await;
    let all = text(&out);
    assert_ne!(out.status.code(), Some(0), "{all}");
    assert!(all.contains("timed out after 5s"), "{all}");
    assert!(all.contains("PodDisruptionBudget default/web"), "{all}");
    let status = text(&lab.run(&["status"]).await);
    assert!(
        status.contains("failed") && status.contains("timed out after 5s"),
        "{status}"
    );
    assert_eq!(pod_uids(&lab, "web"), web_before, "no web pod was evicted");
}
