//! `rok-plan plan --server-dry-run`: every Kubernetes write sent with dryRun=All, every
//! drain's pre-flight run against the cluster, problems reported per step, nothing changed.

use std::process::Command;

use rok_plan_lab::kube::{Cluster, ClusterOptions};
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_rok-plan");

const PLAN: &str = r#"
[plan]
name = "rehearsal"

[params.nodes]
type = "list"
default = ["node-1", "node-2"]

[[step]]
id = "web"
type = "kube.apply"
manifest = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: main, image: "web:2"}]}
"""

[[step]]
id = "cordon"
type = "kube.cordon"
for_each = "params.nodes"
node = "{{ item }}"
needs = ["web"]

[[step]]
id = "drain"
type = "kube.drain"
for_each = "params.nodes"
node = "{{ item }}"
needs = ["cordon"]

[[step]]
id = "local"
type = "shell"
run = "true"
"#;

/// `rok-plan plan --server-dry-run` of `plan` against the cluster (on a blocking thread: the
/// cluster serves meanwhile).
async fn rehearse(cluster: &Cluster, plan: &str) -> std::process::Output {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("plan.toml");
    std::fs::write(&path, plan).expect("plan");
    let kubeconfig = cluster.kubeconfig().to_path_buf();
    tokio::task::spawn_blocking(move || {
        Command::new(BIN)
            .args(["plan", "--server-dry-run", "--kubeconfig"])
            .arg(&kubeconfig)
            .arg(&path)
            .env_remove("KUBECONFIG")
            .output()
            .expect("rok-plan runs")
    })
    .await
    .expect("joined")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_dry_run_rehearses_writes_and_drains_and_changes_nothing() {
    let cluster = Cluster::start(ClusterOptions {
        nodes: 2,
        ..ClusterOptions::default()
    })
    .await
    .expect("cluster");
    // A bare pod on node-1 makes its drain's pre-flight refuse.
    cluster
        .create(
            "default",
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "lonely"},
                "spec": {"nodeName": "node-1", "containers": [{"name": "main", "image": "lonely:1"}]}}),
        )
        .expect("seed");
    let out = rehearse(&cluster, PLAN).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "problems exit 1\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("Deployment default/web: created (server dry run)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("node node-2 cordoned (server dry run)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("pre-flight of node node-2 passed"),
        "{stdout}"
    );
    assert!(
        stdout.contains("PROBLEM") && stdout.contains("default/lonely: unmanaged"),
        "{stdout}"
    );
    assert!(
        stdout.contains("1 problem(s) in 5 Kubernetes step(s)"),
        "{stdout}"
    );
    let rehearsal = stdout.split("Server dry run").nth(1).unwrap_or_default();
    assert!(
        !rehearsal.contains("(shell)"),
        "only Kubernetes steps are rehearsed\n{stdout}"
    );
    // Nothing changed.
    assert!(
        cluster
            .get("apps", "deployments", "default", "web")
            .is_none()
    );
    for n in ["node-1", "node-2"] {
        assert_ne!(
            cluster.get("", "nodes", "", n).expect("node")["spec"]["unschedulable"],
            true
        );
    }
    assert!(cluster.get("", "pods", "default", "lonely").is_some());
}

const WRITES: &str = r#"
[plan]
name = "rehearsal-of-every-write"

[[step]]
id = "scale"
type = "kube.scale"
resource = "deployment/web"
replicas = 0

[[step]]
id = "patch"
type = "kube.patch"
resource = "configmap/settings"
merge = { data = { mode = "upgrade" } }

[[step]]
id = "restart"
type = "kube.restart"
resource = "deployment/web"

[[step]]
id = "bounce"
type = "kube.restart"
resource = "replicationcontroller/worker"
strategy = "scale-bounce"

[[step]]
id = "delete"
type = "kube.delete"
resource = "configmap/settings"
needs = ["patch"]

[[step]]
id = "uncordon"
type = "kube.uncordon"
node = "node-2"
"#;

/// Every object's resourceVersion (by kind, namespace and name): a write that got through
/// changes one.
fn versions(cluster: &Cluster) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for (group, plural) in [
        ("", "pods"),
        ("", "configmaps"),
        ("", "nodes"),
        ("", "replicationcontrollers"),
        ("apps", "deployments"),
        ("apps", "replicasets"),
    ] {
        for o in cluster.list(group, plural, None) {
            out.push((
                plural.to_string(),
                format!(
                    "{}/{}",
                    o["metadata"]["namespace"].as_str().unwrap_or(""),
                    o["metadata"]["name"].as_str().unwrap_or("")
                ),
                o["metadata"]["resourceVersion"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
            ));
        }
    }
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_dry_run_of_scale_patch_restart_delete_and_uncordon_changes_nothing() {
    let cluster = Cluster::start(ClusterOptions {
        nodes: 2,
        ..ClusterOptions::default()
    })
    .await
    .expect("cluster");
    let template = json!({"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "main", "image": "web:1"}]}});
    cluster
        .create(
            "default",
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
                "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}}, "template": template}}),
        )
        .expect("deployment");
    cluster
        .create(
            "default",
            json!({"apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": "worker"},
                "spec": {"replicas": 1, "selector": {"app": "worker"},
                    "template": {"metadata": {"labels": {"app": "worker"}}, "spec": {"containers": [{"name": "main", "image": "worker:1"}]}}}}),
        )
        .expect("rc");
    cluster
        .create(
            "default",
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"}, "data": {"mode": "normal"}}),
        )
        .expect("configmap");
    // node-2 cordoned by an earlier run of rok-plan: the uncordon would undo it.
    let kubeconfig = cluster.kubeconfig().to_path_buf();
    for args in [
        vec!["cordon", "node-2"],
        vec![
            "annotate",
            "node",
            "node-2",
            "rok-plan/cordoned-by-run=20261205T000000-abcd",
        ],
    ] {
        let status = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args(args)
            .status()
            .expect("kubectl runs");
        assert!(status.success());
    }
    let settled = cluster
        .wait_for(std::time::Duration::from_secs(30), |w| {
            w.list("", "pods", Some("default"))
                .iter()
                .filter(|p| p["status"]["phase"] == "Running")
                .count()
                == 3
        })
        .await;
    assert!(settled, "the workloads run");
    let before = versions(&cluster);

    let out = rehearse(&cluster, WRITES).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    for id in ["scale", "patch", "restart", "bounce", "delete", "uncordon"] {
        assert!(
            stdout
                .lines()
                .any(|l| l.trim_start().starts_with("ok") && l.contains(id)),
            "{id} rehearsed\n{stdout}"
        );
    }
    // Give anything that did get through the time to show: the controllers act within ms.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(versions(&cluster), before, "nothing changed\n{stdout}");
}
