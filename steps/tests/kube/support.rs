//! A lab cluster and the step registry pointed at it.

use std::sync::Arc;
use std::time::Duration;

use rok_plan_engine::step::{OutputSink, StepContext, StepOutcome, StepRegistry, StepType};
use rok_plan_lab::kube::{Cluster, ClusterOptions};
use rok_plan_steps::{KubeOptions, StepOptions};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

/// A cluster and the steps.
pub(crate) struct Lab {
    pub(crate) cluster: Cluster,
    registry: StepRegistry,
}

/// A step started in the background.
pub(crate) struct Running {
    pub(crate) sink: OutputSink,
    pub(crate) cancel: CancellationToken,
    pub(crate) task: tokio::task::JoinHandle<StepOutcome>,
}

impl Running {
    /// Waits until the step's output contains `text` (bounded, so a broken test fails).
    pub(crate) async fn until_said(&self, text: &str) {
        let ok = tokio::time::timeout(Duration::from_secs(30), async {
            while !self.sink.stdout_text().contains(text) {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        assert!(
            ok.is_ok(),
            "the step never said {text:?}; it said:\n{}",
            self.sink.stdout_text()
        );
    }

    /// The step's outcome and output.
    pub(crate) async fn finish(self) -> (StepOutcome, String) {
        let sink = self.sink.clone();
        let outcome = tokio::time::timeout(Duration::from_secs(60), self.task)
            .await
            .unwrap_or_else(|_| panic!("the step did not end; it said:\n{}", sink.stdout_text()))
            .expect("the step does not panic");
        (outcome, self.sink.stdout_text())
    }
}

impl Lab {
    /// A cluster with `nodes` nodes; evictions refused by a budget are asked again after 20 ms.
    pub(crate) async fn start(nodes: usize) -> Lab {
        let cluster = Cluster::start(ClusterOptions {
            nodes,
            ..ClusterOptions::default()
        })
        .await
        .expect("the lab cluster starts");
        let kubeconfig = cluster.kubeconfig().to_path_buf();
        Lab::with_kubeconfig(cluster, kubeconfig)
    }

    /// The steps, talking to the cluster through `kubeconfig`.
    pub(crate) fn with_kubeconfig(cluster: Cluster, kubeconfig: std::path::PathBuf) -> Lab {
        let options = StepOptions {
            kube: KubeOptions {
                kubeconfig: Some(kubeconfig),
                eviction_retry_interval: Duration::from_millis(20),
                ..KubeOptions::default()
            },
            ..StepOptions::default()
        };
        Lab {
            cluster,
            registry: rok_plan_steps::builtin_with(&options),
        }
    }

    /// The same cluster, with every write a server dry run.
    pub(crate) fn dry_run_registry(&self) -> StepRegistry {
        let options = StepOptions {
            kube: KubeOptions {
                kubeconfig: Some(self.cluster.kubeconfig().to_path_buf()),
                server_dry_run: true,
                ..KubeOptions::default()
            },
            ..StepOptions::default()
        };
        rok_plan_steps::builtin_with(&options)
    }

    fn step(&self, ty: &str) -> Arc<dyn StepType> {
        self.registry.get(ty).expect("a registered type").clone()
    }

    /// Starts a step with `fields`.
    pub(crate) fn start_step(&self, ty: &str, fields: Value) -> Running {
        start_with(self.step(ty), fields)
    }

    /// Runs a step to its end.
    pub(crate) async fn run(&self, ty: &str, fields: Value) -> (StepOutcome, String) {
        self.start_step(ty, fields).finish().await
    }

    /// Waits (bounded) until `check` holds on the cluster.
    pub(crate) async fn until(&self, check: impl FnMut(&rok_plan_lab::kube::World) -> bool) {
        assert!(
            self.cluster.wait_for(Duration::from_secs(30), check).await,
            "the cluster never got there"
        );
    }
}

/// Starts `step` with `fields` on a fresh context.
pub(crate) fn start_with(step: Arc<dyn StepType>, fields: Value) -> Running {
    let Value::Object(fields) = fields else {
        panic!("fields are an object")
    };
    let sink = OutputSink::buffer();
    let cancel = CancellationToken::new();
    let ctx = StepContext::new(
        "20261122T000000-ab12",
        "test-step",
        1,
        cancel.clone(),
        sink.clone(),
    );
    let task = tokio::spawn(async move {
        match step.run(&ctx, &fields).await {
            Ok(o) => o,
            Err(e) => StepOutcome::failed(format!("step error: {e}")),
        }
    });
    Running { sink, cancel, task }
}

/// The failure reason, or a panic showing what happened instead.
#[track_caller]
pub(crate) fn failure(outcome: &StepOutcome, output: &str) -> String {
    match outcome {
        StepOutcome::Failed { reason, .. } => reason.clone(),
        other => panic!("expected a failure, got {other:?}\n{output}"),
    }
}

/// Asserts success (or satisfied).
#[track_caller]
pub(crate) fn ok(outcome: &StepOutcome, output: &str) {
    assert!(
        matches!(
            outcome,
            StepOutcome::Succeeded { .. } | StepOutcome::Satisfied
        ),
        "expected success, got {outcome:?}\n{output}"
    );
}

/// A pod template spec with one container.
pub(crate) fn template(app: &str) -> Value {
    serde_json::json!({"metadata": {"labels": {"app": app}}, "spec": {"containers": [{"name": "main", "image": format!("{app}:1")}]}})
}

/// A Deployment of `replicas` pods labelled `app`.
pub(crate) fn deployment(name: &str, replicas: i64) -> Value {
    serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}}, "template": template(name)}})
}

/// Whether every pod of `app` in `default` is Running.
pub(crate) fn running(w: &rok_plan_lab::kube::World, app: &str, n: usize) -> bool {
    let pods: Vec<Value> = w
        .list("", "pods", Some("default"))
        .into_iter()
        .filter(|p| {
            p["metadata"]["labels"]["app"] == app && p["metadata"]["deletionTimestamp"].is_null()
        })
        .collect();
    pods.len() == n && pods.iter().all(|p| p["status"]["phase"] == "Running")
}
