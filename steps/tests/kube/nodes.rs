//! kube.cordon / kube.uncordon (cordon ownership), API 500s retried, the kubectl step.

use rok_plan_engine::step::StepOutcome;
use serde_json::json;

use crate::support::{Lab, ok};

fn unschedulable(lab: &Lab, node: &str) -> bool {
    lab.cluster.get("", "nodes", "", node).expect("node")["spec"]["unschedulable"] == true
}

#[tokio::test]
async fn uncordon_leaves_a_node_cordoned_by_hand_cordoned() {
    let lab = Lab::start(2).await;
    // Cordoned by someone else before the run (as `kubectl cordon` does).
    let (outcome, out) = lab
        .run(
            "kube.patch",
            json!({"resource": "node/node-2", "merge": {"spec": {"unschedulable": true}}}),
        )
        .await;
    ok(&outcome, &out);

    for node in ["node-1", "node-2"] {
        let (outcome, out) = lab.run("kube.cordon", json!({"node": node})).await;
        ok(&outcome, &out);
        assert!(unschedulable(&lab, node));
    }
    for node in ["node-1", "node-2"] {
        let (outcome, out) = lab.run("kube.uncordon", json!({"node": node})).await;
        ok(&outcome, &out);
        if node == "node-2" {
            assert!(out.contains("stays cordoned"), "{out}");
        }
    }
    assert!(!unschedulable(&lab, "node-1"));
    assert!(
        unschedulable(&lab, "node-2"),
        "a node cordoned by hand stays cordoned"
    );

    let (outcome, out) = lab
        .run("kube.uncordon", json!({"node": "node-2", "force": true}))
        .await;
    ok(&outcome, &out);
    assert!(!unschedulable(&lab, "node-2"));
    let (outcome, _) = lab.run("kube.uncordon", json!({"node": "node-2"})).await;
    assert_eq!(outcome, StepOutcome::Satisfied);
}

#[tokio::test]
async fn api_500s_are_retried() {
    let lab = Lab::start(1).await;
    lab.cluster.fail_next(Some("GET"), "/nodes/node-1", 500, 2);
    let (outcome, out) = lab.run("kube.cordon", json!({"node": "node-1"})).await;
    ok(&outcome, &out);
    assert!(unschedulable(&lab, "node-1"));

    // A 404 is not retried: it fails at once, naming the node and quoting the API.
    let (outcome, out) = lab.run("kube.cordon", json!({"node": "node-9"})).await;
    let reason = crate::support::failure(&outcome, &out);
    assert!(
        reason.contains("GET node node-9") && reason.contains("404"),
        "{reason}"
    );
}

#[tokio::test]
async fn kubectl_output_is_captured() {
    let lab = Lab::start(2).await;
    let (outcome, out) = lab
        .run("kubectl", json!({"args": ["get", "nodes", "-o", "name"]}))
        .await;
    ok(&outcome, &out);
    assert!(
        out.contains("node/node-1") && out.contains("node/node-2"),
        "{out}"
    );
    let (outcome, _) = lab.run("kubectl", json!({"args": ["get", "nope"]})).await;
    assert!(
        matches!(
            outcome,
            StepOutcome::Failed {
                exit_status: Some(1),
                ..
            }
        ),
        "{outcome:?}"
    );
}
