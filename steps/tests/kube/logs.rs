//! kube.logs_quiet: quiet pods end the wait; pods that keep logging do not (until the
//! attempt is cancelled, naming them); pods appearing meanwhile are followed too.

use std::time::Duration;

use serde_json::Value;
use serde_json::json;

use crate::support::{Lab, deployment, failure, ok};

fn pod_names(lab: &Lab, app: &str) -> Vec<String> {
    lab.cluster
        .list("", "pods", Some("default"))
        .iter()
        .filter(|p| p["metadata"]["labels"]["app"] == app)
        .map(|p: &Value| p["metadata"]["name"].as_str().unwrap_or("").to_string())
        .collect()
}

/// A lab with one running pod of app `csi`, and that pod's name.
async fn one_csi_pod() -> (Lab, String) {
    let lab = Lab::start(2).await;
    lab.cluster
        .create("default", deployment("csi", 1))
        .expect("seed");
    lab.until(|w| crate::support::running(w, "csi", 1)).await;
    let chatty = pod_names(&lab, "csi").remove(0);
    (lab, chatty)
}

#[tokio::test]
async fn quiet_pods_end_the_wait() {
    let lab = Lab::start(2).await;
    lab.cluster
        .create("default", deployment("csi", 2))
        .expect("seed");
    lab.until(|w| crate::support::running(w, "csi", 2)).await;
    let (outcome, out) = lab
        .run(
            "kube.logs_quiet",
            json!({"selector": "app=csi", "quiet_for": "1s"}),
        )
        .await;
    ok(&outcome, &out);
    assert!(
        out.contains("quiet: none of the 2 followed pod(s)"),
        "{out}"
    );
}

#[tokio::test]
async fn logs_that_never_go_quiet_fail_naming_the_pods_and_new_pods_are_followed() {
    let (lab, chatty) = one_csi_pod().await;
    // It has logged lately, so it is not quiet from the start.
    lab.cluster
        .append_log("default", &chatty, "main", "starting up");
    let step = lab.start_step(
        "kube.logs_quiet",
        json!({"selector": "app=csi", "quiet_for": "1h", "container": "main"}),
    );
    step.until_said(&format!("following {chatty}")).await;
    let stop = tokio_util::sync::CancellationToken::new();
    let writer = {
        let stop = stop.clone();
        let lines = (0..).map(|i| format!("operation {i} pending"));
        let chatty = chatty.clone();
        let lab_ref = &lab;
        async move {
            for line in lines {
                if stop.is_cancelled() {
                    break;
                }
                lab_ref
                    .cluster
                    .append_log("default", &chatty, "main", &line);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    let watch = async {
        step.until_said(&format!("{chatty} logged: operation"))
            .await;
        // A pod that appears meanwhile is followed too.
        let (o, out) = lab
            .run(
                "kube.scale",
                json!({"resource": "deployment/csi", "replicas": 2}),
            )
            .await;
        ok(&o, &out);
        let newcomer = pod_names(&lab, "csi")
            .into_iter()
            .find(|p| *p != chatty)
            .expect("a second pod");
        step.until_said(&format!("following {newcomer}")).await;
        stop.cancel();
    };
    tokio::join!(writer, watch);
    step.cancel.cancel();
    let (outcome, out) = step.finish().await;
    let reason = failure(&outcome, &out);
    assert!(
        reason.contains("never quiet for 1h") && reason.contains(&chatty),
        "{reason}"
    );
}

#[tokio::test]
async fn a_pod_that_goes_away_is_dropped_and_the_rest_can_go_quiet() {
    let (lab, chatty) = one_csi_pod().await;
    lab.cluster
        .append_log("default", &chatty, "main", "operation 1 pending");
    let step = lab.start_step(
        "kube.logs_quiet",
        json!({"selector": "app=csi", "quiet_for": "1s", "container": "main"}),
    );
    step.until_said(&format!("following {chatty}")).await;
    // The pod goes away while it is still busy (its last line is less than `quiet_for` old).
    lab.cluster
        .append_log("default", &chatty, "main", "operation 2 pending");
    let (o, out) = lab
        .run(
            "kube.scale",
            json!({"resource": "deployment/csi", "replicas": 0}),
        )
        .await;
    ok(&o, &out);
    step.until_said(&format!("{chatty} went away")).await;
    let (outcome, out) = step.finish().await;
    ok(&outcome, &out);
    assert!(out.contains("quiet"), "{out}");
}
