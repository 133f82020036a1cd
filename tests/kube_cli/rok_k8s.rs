//! `plans/rok-kubernetes-upgrade.toml` end to end (seeds 000/001) on the lab with Rok
//! installed at v1: rok-tools (the immutable StatefulSet case), the GitOps rebase, rok-csi
//! quiesced, the v2 kustomizations applied in the seeds' order, the upgrade verified, and
//! the v1 -> v2 component table.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use rok_plan_lab::gitops::{GitopsRepos, git};
use rok_plan_lab::kube::controllers::ROK_CRD;
use rok_plan_lab::kube::{Cluster, ClusterOptions, Delays};
use serde_json::{Value, json};

use super::pmk_lab::{BIN, text};

/// The rok-tools StatefulSet: v1 with a 5Gi data volume; v2 asks for 10Gi, a spec change
/// the API forbids on a StatefulSet (seed Note: delete it and apply again).
fn rok_tools(version: &str, storage: &str) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "rok-tools", "namespace": "default"},
        "spec": {"replicas": 1, "serviceName": "rok-tools", "selector": {"matchLabels": {"app": "rok-tools"}},
            "template": {"metadata": {"labels": {"app": "rok-tools"}}, "spec": {"containers": [{"name": "rok-tools", "image": format!("gcr.io/arrikto/rok-tools:{version}")}]}},
            "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": storage}}}}]}})
}

fn daemonset(name: &str, version: &str) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": name, "namespace": "rok-system", "labels": {"app": name}},
        "spec": {"selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": name, "image": format!("gcr.io/arrikto-deploy/{name}:{version}")}]}}}})
}

fn statefulset(name: &str, ns: &str, container: &str, version: &str) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": name, "namespace": ns, "labels": {"app": name}},
        "spec": {"replicas": 1, "serviceName": name, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": container, "image": format!("gcr.io/arrikto-deploy/{name}:{version}")}]}}}})
}

/// The vendor's v2 kustomizations, as `rok/<component>/overlays/deploy` directories (JSON
/// documents are YAML too).
fn v2_kustomizations() -> Vec<(String, String)> {
    let mut crd: Value = serde_json::from_str(ROK_CRD).expect("CRD");
    // v2's CRD differs from v1's (its generation moves, for the component table).
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["description"] = json!("RokCluster v2");
    let image = |c: &str| format!("gcr.io/arrikto-deploy/{c}:v2");
    let cluster = json!({"apiVersion": "rok.arrikto.com/v1alpha1", "kind": "RokCluster", "metadata": {"name": "rok", "namespace": "rok"},
        "spec": {"version": "v2", "members": 2, "images": {"rok": image("roke"), "rokCSI": image("rok-csi")}}});
    let components: Vec<(&str, Vec<Value>)> = vec![
        (
            "rok-disk-manager",
            vec![daemonset("rok-disk-manager", "v2")],
        ),
        ("rok-kmod", vec![daemonset("rok-kmod", "v2")]),
        (
            "rok-cluster",
            vec![
                cluster,
                statefulset("rok-csi-controller", "rok", "csi-controller", "v2"),
            ],
        ),
        (
            "rok-operator",
            vec![
                crd,
                statefulset("rok-operator", "rok-system", "operator", "v2"),
            ],
        ),
    ];
    let mut files = Vec::new();
    for (component, docs) in components {
        let dir = format!("rok/{component}/overlays/deploy");
        let mut resources = Vec::new();
        for (i, doc) in docs.iter().enumerate() {
            let file = format!("{i}.yaml");
            files.push((format!("{dir}/{file}"), doc.to_string()));
            resources.push(format!("- {file}"));
        }
        files.push((
            format!("{dir}/kustomization.yaml"),
            format!(
                "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n{}\n",
                resources.join("\n")
            ),
        ));
    }
    files
}

fn plan() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("plans/rok-kubernetes-upgrade.toml")
}

fn rok_plan(cluster: &Cluster, state: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args).arg("--state").arg(state);
    if args
        .first()
        .is_some_and(|a| *a == "execute" || *a == "resume")
    {
        cmd.arg("--kubeconfig").arg(cluster.kubeconfig());
    }
    cmd.env_remove("KUBECONFIG")
        .env_remove("ROK_PLAN_STATE")
        .env_remove("ROK_PLAN_TEST_KILL_AFTER_COMMITS");
    cmd
}

async fn output(mut cmd: Command) -> Output {
    tokio::task::spawn_blocking(move || cmd.output().expect("rok-plan runs"))
        .await
        .expect("joined")
}

fn image(obj: &Value) -> &str {
    obj["spec"]["template"]["spec"]["containers"][0]["image"]
        .as_str()
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rok_kubernetes_upgrade_v1_to_v2_end_to_end() {
    let cluster = Cluster::start(ClusterOptions {
        nodes: 3,
        delays: Delays {
            pod_start: Duration::from_millis(50),
            pod_stop: Duration::from_millis(20),
            job_run: Duration::from_millis(300),
        },
        ..ClusterOptions::default()
    })
    .await
    .expect("cluster");
    cluster.install_rok("v1", 2).expect("Rok v1");
    for ds in ["rok-disk-manager", "rok-kmod"] {
        cluster
            .create("rok-system", daemonset(ds, "v1"))
            .expect("v1 daemonset");
    }
    cluster
        .create("default", rok_tools("release-1.3", "5Gi"))
        .expect("rok-tools v1");
    let settled = cluster
        .wait_for(Duration::from_secs(30), |w| {
            w.get("rok.arrikto.com", "rokclusters", "rok", "rok")
                .is_some_and(|rc| rc["status"]["phase"] == "Running")
        })
        .await;
    assert!(settled, "Rok v1 never became Running");
    let tools_v1 = cluster
        .get("apps", "statefulsets", "default", "rok-tools")
        .expect("rok-tools");

    let dir = tempfile::tempdir().expect("dir");
    let gitops_dir = dir.path().join("gitops");
    std::fs::create_dir(&gitops_dir).expect("gitops dir");
    let mut repos = GitopsRepos::create(&gitops_dir).expect("repos");
    let files = v2_kustomizations();
    let files: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, t)| (p.as_str(), t.as_str()))
        .collect();
    let upstream_head = repos
        .push_vendor_commit("Rok v2 kustomizations", &files)
        .expect("vendor commit");
    let manifest = dir.path().join("rok-tools-eks.yaml");
    std::fs::write(
        &manifest,
        rok_tools("release-1.4-l0-release-1.4.4", "10Gi").to_string(),
    )
    .expect("rok-tools manifest");
    let params = dir.path().join("params.toml");
    std::fs::write(
        &params,
        format!(
            "kube_context = \"lab\"\nrokcluster_crd = \"rokclusters.rok.arrikto.com\"\n\
             rok_tools_manifest = {:?}\ngitops_repo = {:?}\ngitops_upstream = \"origin/main\"\n\
             edit_overlays = false\nmirror_gitops = true\ngitops_mirror_remote = \"mirror\"\nquiet_for = \"1s\"\n",
            manifest.display().to_string(),
            repos.local.display().to_string(),
        ),
    )
    .expect("params");

    // Rok CSI is busy for a while: the run must wait it out before scaling anything down.
    cluster.rok_operations_for(Duration::from_secs(2));
    let state = dir.path().join("state");
    let plan = plan();
    let out = output(rok_plan(
        &cluster,
        &state,
        &[
            "execute",
            plan.to_str().expect("utf-8"),
            "--params",
            params.to_str().expect("utf-8"),
        ],
    ))
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);

    // rok-tools: re-created (a forbidden StatefulSet change), at the new image and volume.
    let tools = cluster
        .get("apps", "statefulsets", "default", "rok-tools")
        .expect("rok-tools");
    assert_ne!(tools["metadata"]["uid"], tools_v1["metadata"]["uid"]);
    assert_eq!(
        image(&tools),
        "gcr.io/arrikto/rok-tools:release-1.4-l0-release-1.4.4"
    );
    assert_eq!(
        tools["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"],
        "10Gi"
    );
    // GitOps: the local branch is rebased on upstream and mirrored.
    git(
        &repos.local,
        &["merge-base", "--is-ancestor", &upstream_head, "HEAD"],
    )
    .expect("local is rebased on upstream");
    let local_head = git(&repos.local, &["rev-parse", "HEAD"]).expect("local head");
    let mirrored = git(&repos.mirror, &["rev-parse", &repos.branch]).expect("mirror head");
    assert_eq!(mirrored, local_head);
    // The seeds' order: disk manager, kmod, cluster, operator.
    let at = |id: &str| {
        stderr
            .find(&format!("▶ {id}"))
            .unwrap_or_else(|| panic!("{id} did not start\n{}", text(&out)))
    };
    assert!(at("wait-csi-controller-idle") < at("scale-down-operator"));
    assert!(at("scale-down-csi-controller") < at("wait-csi-node-idle"));
    assert!(at("wait-csi-node-idle") < at("apply-disk-manager"));
    assert!(at("apply-disk-manager") < at("apply-kmod"));
    assert!(at("apply-kmod") < at("apply-rok-cluster"));
    assert!(at("apply-rok-cluster") < at("apply-operator"));
    // Rok at v2: the operator, the upgrade Job, the RokCluster.
    let rc = cluster
        .get("rok.arrikto.com", "rokclusters", "rok", "rok")
        .expect("RokCluster");
    assert_eq!(rc["status"]["version"], "v2", "{rc:#}");
    assert_eq!(rc["status"]["health"], "OK");
    assert_eq!(rc["status"]["phase"], "Running");
    let jobs = cluster.list("batch", "jobs", Some("rok"));
    assert!(
        jobs.iter()
            .any(|j| j["metadata"]["labels"]["app"] == "rok-upgrade"
                && j["status"]["conditions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|c| c["type"] == "Complete" && c["status"] == "True")),
        "{jobs:#?}"
    );
    for (ns, name) in [
        ("rok-system", "rok-operator"),
        ("rok", "rok-csi-controller"),
    ] {
        let sts = cluster
            .get("apps", "statefulsets", ns, name)
            .expect("statefulset");
        assert!(image(&sts).ends_with(":v2"), "{sts:#}");
        assert_eq!(sts["spec"]["replicas"], 1, "{name}");
    }

    // The component table, v1 -> v2.
    let run = stderr
        .split_whitespace()
        .skip_while(|w| *w != "run")
        .nth(1)
        .expect("run id");
    let logs = output(rok_plan(
        &cluster,
        &state,
        &["logs", run, "component-table"],
    ))
    .await;
    let table = String::from_utf8_lossy(&logs.stdout);
    for row in [
        "RokCluster CR ",
        "RokCluster CR Rok",
        "RokCluster CR CSI",
        "Rok Operator",
        "Rok Disk Manager",
        "Rok kmod",
    ] {
        let line = table
            .lines()
            .find(|l| l.starts_with(row))
            .unwrap_or_else(|| panic!("no {row} row\n{}", text(&logs)));
        assert!(line.contains("v1") && line.contains("v2"), "{line}");
    }
    let crd_row = table
        .lines()
        .find(|l| l.starts_with("RokCluster CRD"))
        .unwrap_or_else(|| panic!("no CRD row\n{}", text(&logs)));
    let generations: Vec<&str> = crd_row.split_whitespace().skip(2).collect();
    assert_eq!(generations.len(), 2, "{crd_row}");
    assert_ne!(generations[0], generations[1], "{crd_row}");
    cluster.shutdown();
}
