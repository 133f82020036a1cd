//! The same behaviours through `kubectl`, a second, independent client.

use std::process::Output;

use rok_plan_lab::kube::Cluster;
use serde_json::json;

use super::start;

async fn kubectl(cluster: &Cluster, args: &[&str]) -> Output {
    tokio::process::Command::new("kubectl")
        .args(args)
        .env("KUBECONFIG", cluster.kubeconfig())
        .output()
        .await
        .expect("kubectl runs")
}

async fn ok(cluster: &Cluster, args: &[&str]) -> String {
    let out = kubectl(cluster, args).await;
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "kubectl {args:?} failed: {}{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

async fn fails(cluster: &Cluster, args: &[&str]) -> String {
    let out = kubectl(cluster, args).await;
    assert!(
        !out.status.success(),
        "kubectl {args:?} should fail: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> String {
    let p = dir.path().join(name);
    std::fs::write(&p, text).expect("write manifest");
    p.display().to_string()
}

const WEB: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: REPLICAS
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: nginx
        image: nginx:1.27
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_gets_applies_with_conflicts_scales_restarts_and_waits() {
    let (cluster, _client) = start(2).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let nodes = ok(&cluster, &["get", "nodes"]).await;
    assert!(
        nodes
            .lines()
            .next()
            .is_some_and(|h| h.split_whitespace().collect::<Vec<_>>()
                == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]),
        "{nodes}"
    );
    assert!(
        nodes.contains("node-1") && nodes.contains("Ready"),
        "{nodes}"
    );

    let two = write(&dir, "web2.yaml", &WEB.replace("REPLICAS", "2"));
    let five = write(&dir, "web5.yaml", &WEB.replace("REPLICAS", "5"));
    assert!(
        ok(&cluster, &["apply", "--server-side", "-f", &two])
            .await
            .contains("deployment.apps/web serverside-applied")
    );
    let conflict = fails(
        &cluster,
        &[
            "apply",
            "--server-side",
            "--field-manager=other",
            "-f",
            &five,
        ],
    )
    .await;
    assert!(
        conflict.contains(
            "Apply failed with 1 conflict: conflict with \"kubectl\" using apps/v1: .spec.replicas"
        ),
        "{conflict}"
    );
    ok(
        &cluster,
        &[
            "apply",
            "--server-side",
            "--field-manager=other",
            "--force-conflicts",
            "-f",
            &five,
        ],
    )
    .await;
    assert_eq!(
        ok(
            &cluster,
            &["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"]
        )
        .await,
        "5"
    );

    assert!(
        ok(&cluster, &["scale", "deploy", "web", "--replicas=3"])
            .await
            .contains("deployment.apps/web scaled")
    );
    ok(
        &cluster,
        &[
            "wait",
            "--for=condition=Available",
            "deploy/web",
            "--timeout=20s",
        ],
    )
    .await;
    ok(
        &cluster,
        &["rollout", "status", "deploy/web", "--timeout=20s"],
    )
    .await;
    let listed = ok(&cluster, &["get", "deploy", "web"]).await;
    assert!(listed.contains("3/3"), "{listed}");

    assert!(
        ok(&cluster, &["rollout", "restart", "deploy/web"])
            .await
            .contains("deployment.apps/web restarted")
    );
    ok(
        &cluster,
        &["rollout", "status", "deploy/web", "--timeout=20s"],
    )
    .await;
    let annotations = ok(
        &cluster,
        &[
            "get",
            "deploy",
            "web",
            "-o",
            "jsonpath={.spec.template.metadata.annotations}",
        ],
    )
    .await;
    assert!(
        annotations.contains("kubectl.kubernetes.io/restartedAt"),
        "{annotations}"
    );
    let pods = ok(&cluster, &["get", "pods", "-l", "app=web", "-o", "name"]).await;
    assert_eq!(pods.lines().count(), 3, "{pods}");

    let pod = pods
        .lines()
        .next()
        .expect("a pod")
        .trim_start_matches("pod/")
        .to_string();
    cluster.append_log("default", &pod, "nginx", "hello from the lab");
    let logs = ok(&cluster, &["logs", &pod, "--timestamps"]).await;
    let (ts, text) = logs.trim_end().split_once(' ').expect("timestamped");
    assert!(ts.ends_with('Z') && ts.contains('T'), "{logs}");
    assert_eq!(text, "hello from the lab");
    ok(
        &cluster,
        &[
            "wait",
            "--for=condition=Ready",
            &format!("pod/{pod}"),
            "--timeout=20s",
        ],
    )
    .await;

    ok(&cluster, &["cordon", "node-1"]).await;
    let cordoned = ok(&cluster, &["get", "node", "node-1"]).await;
    assert!(cordoned.contains("Ready,SchedulingDisabled"), "{cordoned}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_drain_refuses_unmanaged_and_emptydir_pods_and_waits_for_budgets() {
    let (cluster, _client) = start(1).await;
    let pod = |name: &str, volumes: serde_json::Value| json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": name}}, "spec": {"containers": [{"name": "m", "image": "x"}], "volumes": volumes}});
    cluster
        .create("default", pod("bare", json!([])))
        .expect("bare pod");
    cluster
        .create(
            "default",
            pod("scratch", json!([{"name": "tmp", "emptyDir": {}}])),
        )
        .expect("emptyDir pod");
    cluster
        .create("default", json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "guarded"}, "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "guarded"}}, "template": {"metadata": {"labels": {"app": "guarded"}}, "spec": {"containers": [{"name": "m", "image": "x"}]}}}}))
        .expect("deployment");
    cluster
        .create("kube-system", json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent"}, "spec": {"selector": {"matchLabels": {"app": "agent"}}, "template": {"metadata": {"labels": {"app": "agent"}}, "spec": {"containers": [{"name": "a", "image": "x"}]}}}}))
        .expect("daemonset");
    cluster
        .create("default", json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "guarded"}, "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "guarded"}}}}))
        .expect("pdb");
    ok(
        &cluster,
        &[
            "wait",
            "--for=condition=Available",
            "deploy/guarded",
            "--timeout=20s",
        ],
    )
    .await;
    ok(
        &cluster,
        &[
            "wait",
            "--for=condition=Ready",
            "pod/bare",
            "pod/scratch",
            "--timeout=20s",
        ],
    )
    .await;

    let refused = fails(&cluster, &["drain", "node-1"]).await;
    assert!(
        refused.contains(
            "cannot delete Pods that declare no controller (use --force to override): default/bare"
        ),
        "{refused}"
    );
    assert!(
        refused
            .contains("cannot delete DaemonSet-managed Pods (use --ignore-daemonsets to ignore)"),
        "{refused}"
    );
    assert!(refused.contains("cannot delete Pods with local storage (use --delete-emptydir-data to override): default/scratch"), "{refused}");

    let blocked = fails(
        &cluster,
        &[
            "drain",
            "node-1",
            "--force",
            "--delete-emptydir-data",
            "--ignore-daemonsets",
            "--timeout=3s",
        ],
    )
    .await;
    assert!(
        blocked.contains("Cannot evict pod as it would violate the pod's disruption budget."),
        "{blocked}"
    );
    assert!(blocked.contains("global timeout reached: 3s"), "{blocked}");
    assert!(
        cluster.get("", "pods", "default", "bare").is_none(),
        "--force deleted the bare pod"
    );

    ok(&cluster, &["delete", "pdb", "guarded"]).await;
    let drained = ok(
        &cluster,
        &[
            "drain",
            "node-1",
            "--force",
            "--delete-emptydir-data",
            "--ignore-daemonsets",
            "--timeout=20s",
        ],
    )
    .await;
    assert!(drained.contains("node/node-1 drained"), "{drained}");
    let left = ok(
        &cluster,
        &[
            "get",
            "pods",
            "-A",
            "--field-selector=spec.nodeName=node-1",
            "-o",
            "name",
        ],
    )
    .await;
    let left: Vec<&str> = left.lines().collect();
    assert!(
        left.len() == 1 && left[0].starts_with("pod/agent-"),
        "only the DaemonSet pod stays: {left:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_shows_rokcluster_columns() {
    let (cluster, _client) = start(1).await;
    let crd: serde_json::Value =
        serde_json::from_str(rok_plan_lab::kube::controllers::ROK_CRD).expect("crd");
    cluster.create("", crd).expect("crd");
    cluster
        .create(
            "",
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "rok"}}),
        )
        .expect("ns");
    cluster.create("rok", json!({"apiVersion": "rok.arrikto.com/v1alpha1", "kind": "RokCluster", "metadata": {"name": "rok"}, "spec": {"version": "v2", "members": 1}})).expect("rc");
    ok(
        &cluster,
        &[
            "wait",
            "-n",
            "rok",
            "--for=jsonpath={.status.phase}=Running",
            "rokcluster/rok",
            "--timeout=20s",
        ],
    )
    .await;
    let shown = ok(&cluster, &["get", "rokcluster", "-n", "rok", "rok"]).await;
    let lines: Vec<Vec<&str>> = shown
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        lines[0],
        [
            "NAME", "VERSION", "HEALTH", "TOTAL", "MEMBERS", "READY", "MEMBERS", "PHASE", "AGE"
        ],
        "{shown}"
    );
    assert_eq!(
        lines[1][..7],
        ["rok", "v2", "OK", "1", "1", "Running", lines[1][6]],
        "{shown}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lab_kube_serve_writes_a_kubeconfig_kubectl_can_use() {
    let dir = tempfile::tempdir().expect("tempdir");
    let kc = dir.path().join("kubeconfig");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_lab"))
        .args([
            "kube",
            "serve",
            "--nodes",
            "2",
            "--rok",
            "v1",
            "--kubeconfig",
        ])
        .arg(&kc)
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("lab starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stdout));
    let first = super::within(lines.next_line())
        .await
        .expect("read")
        .expect("a line");
    assert!(first.starts_with("serving http://127.0.0.1:"), "{first}");
    let run = |args: &'static [&'static str]| {
        let kc = kc.clone();
        async move {
            let out = tokio::process::Command::new("kubectl")
                .args(args)
                .env("KUBECONFIG", &kc)
                .output()
                .await
                .expect("kubectl");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout).to_string()
        }
    };
    assert_eq!(
        run(&["get", "nodes", "-o", "name"]).await,
        "node/node-1\nnode/node-2\n"
    );
    run(&[
        "wait",
        "-n",
        "rok",
        "--for=jsonpath={.status.phase}=Running",
        "rokcluster/rok",
        "--timeout=20s",
    ])
    .await;
    let _ = child.kill().await;
}
