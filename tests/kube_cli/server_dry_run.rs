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
    let dir = tempfile::tempdir().expect("dir");
    let plan = dir.path().join("plan.toml");
    std::fs::write(&plan, PLAN).expect("plan");
    let kubeconfig = cluster.kubeconfig().to_path_buf();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(BIN)
            .args(["plan", "--server-dry-run", "--kubeconfig"])
            .arg(&kubeconfig)
            .arg(&plan)
            .env_remove("KUBECONFIG")
            .output()
            .expect("rok-plan runs")
    })
    .await
    .expect("joined");
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
