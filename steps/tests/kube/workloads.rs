//! kube.scale and kube.restart (rollout, scale-bounce, ReplicationController copy-and-roll,
//! bare pods replaced).

use serde_json::json;

use crate::support::{Lab, deployment, ok, running, template};

#[tokio::test]
async fn scale_waits_until_the_replicas_are_observed() {
    let lab = Lab::start(2).await;
    lab.cluster.install_rok("v1", 3).expect("rok");
    for n in [0, 2] {
        let (outcome, out) = lab
            .run("kube.scale", json!({"resource": "statefulset/rok-operator", "namespace": "rok-system", "replicas": n.to_string()}))
            .await;
        ok(&outcome, &out);
        let sts = lab
            .cluster
            .get("apps", "statefulsets", "rok-system", "rok-operator")
            .expect("sts");
        assert_eq!(sts["status"]["replicas"].as_i64().unwrap_or(0), n, "{out}");
    }
}

#[tokio::test]
async fn rollout_restart_replaces_every_pod() {
    let lab = Lab::start(2).await;
    lab.cluster
        .create("default", deployment("web", 2))
        .expect("seed");
    lab.until(|w| running(w, "web", 2)).await;
    let before: Vec<String> = names(&lab, "web");
    let (outcome, out) = lab
        .run("kube.restart", json!({"resource": "deployment/web"}))
        .await;
    ok(&outcome, &out);
    lab.until(|w| running(w, "web", 2)).await;
    let after = names(&lab, "web");
    assert!(
        after.iter().all(|p| !before.contains(p)),
        "{before:?} {after:?}"
    );
}

fn names(lab: &Lab, app: &str) -> Vec<String> {
    lab.cluster
        .list("", "pods", Some("default"))
        .iter()
        .filter(|p| {
            p["metadata"]["labels"]["app"] == app && p["metadata"]["deletionTimestamp"].is_null()
        })
        .map(|p| p["metadata"]["name"].as_str().unwrap_or("").to_string())
        .collect()
}

fn rc(name: &str, replicas: i64) -> serde_json::Value {
    json!({"apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {"app": name}, "template": template(name)}})
}

#[tokio::test]
async fn scale_bounce_and_copy_and_roll_of_replication_controllers() {
    let lab = Lab::start(2).await;
    lab.cluster
        .create("default", rc("legacy", 2))
        .expect("seed");
    lab.cluster
        .create("default", rc("steady", 2))
        .expect("seed");
    lab.until(|w| running(w, "legacy", 2) && running(w, "steady", 2))
        .await;
    let before = names(&lab, "legacy");
    let (outcome, out) = lab
        .run(
            "kube.restart",
            json!({"resource": "replicationcontroller/legacy", "strategy": "scale-bounce"}),
        )
        .await;
    ok(&outcome, &out);
    lab.until(|w| running(w, "legacy", 2)).await;
    assert!(names(&lab, "legacy").iter().all(|p| !before.contains(p)));
    let legacy = lab
        .cluster
        .get("", "replicationcontrollers", "default", "legacy")
        .expect("rc");
    assert!(
        legacy["metadata"]["annotations"]["rok-plan/bounce-replicas"].is_null(),
        "{legacy}"
    );

    let before = names(&lab, "steady");
    let (outcome, out) = lab
        .run(
            "kube.restart",
            json!({"resource": "rc/steady", "strategy": "rollout"}),
        )
        .await;
    ok(&outcome, &out);
    assert!(
        out.contains("ReplicationController steady replaced by steady-ab12"),
        "{out}"
    );
    assert!(
        lab.cluster
            .get("", "replicationcontrollers", "default", "steady")
            .is_none()
    );
    lab.until(|w| running(w, "steady", 2)).await;
    assert!(names(&lab, "steady").iter().all(|p| !before.contains(p)));
}

#[tokio::test]
async fn bare_pods_are_replaced_from_their_own_spec() {
    let lab = Lab::start(1).await;
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "lonely", "labels": {"app": "lonely"}},
        "spec": {"containers": [{"name": "main", "image": "lonely:1"}]}});
    lab.cluster.create("default", pod).expect("seed");
    lab.until(|w| running(w, "lonely", 1)).await;
    let uid = lab
        .cluster
        .get("", "pods", "default", "lonely")
        .expect("pod")["metadata"]["uid"]
        .clone();
    let (outcome, out) = lab
        .run(
            "kube.restart",
            json!({"resource": "pod/lonely", "strategy": "replace"}),
        )
        .await;
    ok(&outcome, &out);
    lab.until(|w| running(w, "lonely", 1)).await;
    let now = lab
        .cluster
        .get("", "pods", "default", "lonely")
        .expect("pod");
    assert_ne!(now["metadata"]["uid"], uid);
    assert_eq!(now["spec"]["containers"][0]["image"], "lonely:1");
}

#[tokio::test]
async fn scale_of_a_replication_controller_and_a_deployment_waits_for_the_observed_replicas() {
    let lab = Lab::start(2).await;
    lab.cluster
        .create("default", rc("worker", 1))
        .expect("seed");
    lab.cluster
        .create("default", deployment("web", 1))
        .expect("seed");
    lab.until(|w| running(w, "worker", 1) && running(w, "web", 1))
        .await;
    for (resource, group, plural, name) in [
        (
            "replicationcontroller/worker",
            "",
            "replicationcontrollers",
            "worker",
        ),
        ("deployment/web", "apps", "deployments", "web"),
    ] {
        for n in [3, 0] {
            let (outcome, out) = lab
                .run(
                    "kube.scale",
                    json!({"resource": resource, "replicas": n.to_string()}),
                )
                .await;
            ok(&outcome, &out);
            let o = lab
                .cluster
                .get(group, plural, "default", name)
                .expect("workload");
            assert_eq!(o["spec"]["replicas"], n, "{out}");
            assert_eq!(
                o["status"]["replicas"].as_i64().unwrap_or(0),
                n,
                "scale returns once the controller observed it\n{out}"
            );
        }
    }
}
