//! A lab cluster for `plans/pmk-cluster-upgrade.toml`: N nodes with the workloads of seed 004
//! (Deployments and a StatefulSet behind PodDisruptionBudgets, a DaemonSet, two
//! ReplicationControllers, an unmanaged pod, a pod with an emptyDir volume, a stand-alone pod
//! whose service-account token the plan refreshes), the real `rok-plan` binary run against
//! it, and what an operator checks afterwards.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rok_plan_lab::kube::{Cluster, ClusterOptions, Delays};
use serde_json::{Value, json};
use tempfile::TempDir;

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_rok-plan");
/// The kubelet version the lab's node upgrade installs.
pub(crate) const NEW_VERSION: &str = "v1.34.0";
/// The node an operator cordoned by hand before the run.
pub(crate) const HAND_CORDONED: &str = "node-3";

/// `plans/pmk-cluster-upgrade.toml`.
pub(crate) fn pmk_plan() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("plans/pmk-cluster-upgrade.toml")
}

/// The lab's node upgrade (`lab/pmk-upgrade-node.sh`).
fn upgrade_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("lab/pmk-upgrade-node.sh")
}

/// Workloads kept available by a PodDisruptionBudget: the `app` label and the fewest Ready
/// pods the budget allows.
pub(crate) const BUDGETED: &[(&str, i64)] = &[("web", 2), ("api", 1), ("db", 2), ("frontend", 1)];

/// A cluster with the PMK workloads, and a directory for the plan's state and parameters.
pub(crate) struct PmkLab {
    /// The cluster (shared with the availability sampler).
    pub(crate) cluster: Arc<Cluster>,
    /// State store, parameters.
    pub(crate) dir: TempDir,
    /// Node names, in upgrade order.
    pub(crate) nodes: Vec<String>,
}

fn labels(app: &str) -> Value {
    json!({"app": app})
}

fn template(app: &str, extra: Value) -> Value {
    let mut spec = json!({"containers": [{"name": "main", "image": format!("{app}:1")}]});
    if let (Some(s), Some(e)) = (spec.as_object_mut(), extra.as_object()) {
        s.extend(e.clone());
    }
    json!({"metadata": {"labels": labels(app)}, "spec": spec})
}

fn deployment(name: &str, replicas: i64, extra: Value) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {"matchLabels": labels(name)}, "template": template(name, extra)}})
}

fn budget(app: &str, rule: Value) -> Value {
    let mut spec = json!({"selector": {"matchLabels": labels(app)}});
    if let (Some(s), Some(r)) = (spec.as_object_mut(), rule.as_object()) {
        s.extend(r.clone());
    }
    json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": app}, "spec": spec})
}

fn replication_controller(name: &str, replicas: i64) -> Value {
    json!({"apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": labels(name), "template": template(name, json!({}))}})
}

fn bare_pod(name: &str, extra: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels(name)},
        "spec": template(name, extra)["spec"].clone()})
}

/// Seed 004's workloads. `scratch` (unmanaged) is pinned to node-1 (so a run with the
/// defaults stops at the first node, before any node is upgraded); `cache` keeps data in
/// an emptyDir; `debug-shell` is a stand-alone pod that only fits an upgraded node (so the
/// drains never delete it and the token refresh has it to replace).
pub(crate) fn workloads() -> Vec<Value> {
    vec![
        deployment("web", 3, json!({})),
        budget("web", json!({"minAvailable": 2})),
        deployment("api", 2, json!({})),
        budget("api", json!({"maxUnavailable": 1})),
        deployment(
            "cache",
            1,
            json!({"volumes": [{"name": "scratch-space", "emptyDir": {}}]}),
        ),
        json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db"},
            "spec": {"replicas": 3, "serviceName": "db", "selector": {"matchLabels": labels("db")}, "template": template("db", json!({}))}}),
        budget("db", json!({"minAvailable": 2})),
        json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "node-agent"},
            "spec": {"selector": {"matchLabels": labels("node-agent")}, "template": template("node-agent", json!({}))}}),
        replication_controller("batch-worker", 2),
        replication_controller("frontend", 2),
        budget("frontend", json!({"minAvailable": 1})),
        bare_pod("scratch", json!({"nodeName": "node-1"})),
        bare_pod(
            "debug-shell",
            json!({"nodeSelector": {"lab.rok-plan/kubelet-version": NEW_VERSION}}),
        ),
    ]
}

impl PmkLab {
    /// Starts `nodes` nodes with [`workloads`], waits until every pod that can run is
    /// Ready, and cordons [`HAND_CORDONED`] by hand (without rok-plan's mark).
    pub(crate) async fn start(nodes: usize) -> PmkLab {
        let cluster = Cluster::start(ClusterOptions {
            nodes,
            delays: Delays {
                pod_start: Duration::from_millis(100),
                pod_stop: Duration::from_millis(50),
                job_run: Duration::ZERO,
            },
            ..ClusterOptions::default()
        })
        .await
        .expect("cluster starts");
        for obj in workloads() {
            cluster.create("default", obj).expect("workload");
        }
        let lab = PmkLab {
            cluster: Arc::new(cluster),
            dir: tempfile::tempdir().expect("temp dir"),
            nodes: (1..=nodes).map(|i| format!("node-{i}")).collect(),
        };
        lab.settled().await;
        lab.kubectl(&["cordon", HAND_CORDONED]);
        lab
    }

    /// Waits (up to a minute, then panics) until every workload has all its pods Ready
    /// (`debug-shell` stays Pending until a node is upgraded).
    pub(crate) async fn settled(&self) {
        let expected = 3 + 2 + 1 + 3 + self.nodes.len() + 2 + 2 + 1;
        for _ in 0..6000 {
            let ready = self
                .pods()
                .iter()
                .filter(|p| is_ready(p) && p["metadata"]["deletionTimestamp"].is_null())
                .count();
            if ready >= expected {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the workloads never became Ready: {:#?}", self.pods());
    }

    /// The pods of namespace default.
    pub(crate) fn pods(&self) -> Vec<Value> {
        self.cluster.list("", "pods", Some("default"))
    }

    /// A node object.
    pub(crate) fn node(&self, name: &str) -> Value {
        self.cluster
            .get("", "nodes", "", name)
            .expect("node exists")
    }

    /// Runs kubectl against the lab (a second client, as an operator would).
    pub(crate) fn kubectl(&self, args: &[&str]) -> String {
        let out = Command::new("kubectl")
            .args(args)
            .env("KUBECONFIG", self.cluster.kubeconfig())
            .output()
            .expect("kubectl runs");
        assert!(
            out.status.success(),
            "kubectl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Sets the `web` budget's minAvailable (3 = every web pod: no disruption allowed).
    pub(crate) fn set_web_min_available(&self, n: u32) {
        self.kubectl(&[
            "patch",
            "pdb",
            "web",
            "--type=merge",
            "-p",
            &format!(r#"{{"spec":{{"minAvailable":{n}}}}}"#),
        ]);
    }

    /// Writes the parameters file: every node, the lab's node upgrade, short grace periods,
    /// the token refresh lists, and `extra` (TOML lines) last.
    pub(crate) fn params(&self, extra: &str) -> PathBuf {
        let nodes: Vec<String> = self.nodes.iter().map(|n| format!("{n:?}")).collect();
        let text = format!(
            "kube_context = \"lab\"\nnodes = [{}]\nnode_upgrade_command = {:?}\ndrain_grace_period = \"1s\"\n\
             rcs_tolerating_downtime = [\"batch-worker\"]\nrcs_without_downtime = [\"frontend\"]\nbare_pods = [\"debug-shell\"]\n{extra}\n",
            nodes.join(", "),
            upgrade_script().display().to_string(),
        );
        let path = self.dir.path().join("params.toml");
        std::fs::write(&path, text).expect("params written");
        path
    }

    /// `rok-plan ARGS` with the lab's kubeconfig and state store (`--kubeconfig` and
    /// `--state` go after the subcommand; KUBECONFIG is for the upgrade script's kubectl).
    pub(crate) fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .arg("--state")
            .arg(self.dir.path().join("state"))
            .env("KUBECONFIG", self.cluster.kubeconfig())
            .env("LAB_KUBELET_VERSION", NEW_VERSION)
            .env_remove("ROK_PLAN_STATE")
            .env_remove("ROK_PLAN_TEST_KILL_AFTER_COMMITS");
        if args
            .first()
            .is_some_and(|a| ["execute", "resume", "plan"].contains(a))
        {
            cmd.arg("--kubeconfig")
                .arg(self.cluster.kubeconfig())
                .args(["--eviction-retry", "100ms"]);
        }
        cmd
    }

    /// Runs `rok-plan ARGS` to its end (on a blocking thread: the cluster serves meanwhile).
    pub(crate) async fn run(&self, args: &[&str]) -> Output {
        let mut cmd = self.command(args);
        tokio::task::spawn_blocking(move || cmd.output().expect("rok-plan runs"))
            .await
            .expect("joined")
    }

    /// Checks what an operator checks after the upgrade: every node at the new version,
    /// Ready, schedulable and without rok-plan's mark, except the hand-cordoned one, which
    /// is still cordoned.
    pub(crate) fn assert_every_node_upgraded(&self) {
        for name in &self.nodes {
            let node = self.node(name);
            assert_eq!(
                node["status"]["nodeInfo"]["kubeletVersion"], NEW_VERSION,
                "{name} not upgraded"
            );
            let ready = node["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Ready" && c["status"] == "True");
            assert!(ready, "{name} is not Ready: {node:#}");
            assert!(
                node["metadata"]["annotations"]["rok-plan/cordoned-by-run"].is_null(),
                "{name} still carries rok-plan's cordon mark"
            );
            let cordoned = node["spec"]["unschedulable"] == true;
            assert_eq!(
                cordoned,
                name == HAND_CORDONED,
                "{name}: unschedulable = {cordoned}"
            );
        }
    }
}

/// Whether a pod is Ready.
pub(crate) fn is_ready(pod: &Value) -> bool {
    pod["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True")
}

fn app(pod: &Value) -> &str {
    pod["metadata"]["labels"]["app"].as_str().unwrap_or("")
}

/// Samples the cluster while a run goes on and keeps, per budgeted workload, the fewest
/// Ready pods (not being deleted) seen.
pub(crate) struct Availability {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<BTreeMap<String, i64>>,
}

impl Availability {
    /// Starts sampling.
    pub(crate) fn watch(cluster: Arc<Cluster>) -> Availability {
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let task = tokio::spawn(async move {
            let mut fewest: BTreeMap<String, i64> = BTreeMap::new();
            while !stopping.load(Ordering::Relaxed) {
                let pods = cluster.list("", "pods", Some("default"));
                for (name, _) in BUDGETED {
                    let ready = pods
                        .iter()
                        .filter(|p| {
                            app(p) == *name
                                && is_ready(p)
                                && p["metadata"]["deletionTimestamp"].is_null()
                        })
                        .count() as i64;
                    let seen = fewest.entry((*name).to_string()).or_insert(ready);
                    *seen = (*seen).min(ready);
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            fewest
        });
        Availability { stop, task }
    }

    /// Stops sampling and asserts no budgeted workload ever had fewer Ready pods than its
    /// budget allows.
    pub(crate) async fn assert_within_budgets(self) {
        self.stop.store(true, Ordering::Relaxed);
        let fewest = self.task.await.expect("sampler");
        for (name, min) in BUDGETED {
            let seen = fewest.get(*name).copied().unwrap_or_default();
            assert!(
                seen >= *min,
                "{name} fell to {seen} Ready pod(s), below its budget's {min}: {fewest:?}"
            );
        }
    }
}

/// Stdout and stderr of a run, for messages.
pub(crate) fn text(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
