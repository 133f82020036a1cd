//! kube.get, kube.patch, kube.delete, kube.wait.

use rok_plan_engine::step::StepOutcome;
use serde_json::json;

use crate::support::{Lab, deployment, failure, ok};

#[tokio::test]
async fn get_turns_fields_into_outputs_and_optional_objects_into_empty_ones() {
    let lab = Lab::start(1).await;
    lab.cluster.install_rok("v1", 3).expect("rok");
    let (outcome, out) = lab
        .run(
            "kube.get",
            json!({"resource": "rokcluster/rok", "namespace": "rok", "fields": {"version": ".spec.version", "rok": ".spec.images.rok", "missing": ".status.nope"}}),
        )
        .await;
    let StepOutcome::Succeeded { outputs, .. } = outcome else {
        panic!("{outcome:?}\n{out}")
    };
    assert_eq!(outputs["version"], "v1");
    assert_eq!(outputs["rok"], "gcr.io/arrikto-deploy/roke:v1");
    assert_eq!(outputs["missing"], "");
    assert!(out.contains("version = v1"), "{out}");

    let (outcome, out) = lab
        .run("kube.get", json!({"resource": "daemonset/absent", "namespace": "rok", "optional": true, "fields": {"image": ".spec.template.spec.containers[0].image"}}))
        .await;
    let StepOutcome::Succeeded { outputs, .. } = outcome else {
        panic!("{outcome:?}\n{out}")
    };
    assert_eq!(outputs["image"], "");

    let (outcome, out) = lab
        .run(
            "kube.get",
            json!({"resource": "statefulset/absent", "namespace": "rok"}),
        )
        .await;
    let reason = failure(&outcome, &out);
    assert!(
        reason.contains("StatefulSet rok/absent") && reason.contains("404"),
        "{reason}"
    );

    let (outcome, out) = lab
        .run("kube.get", json!({"resource": "frobnicator/x"}))
        .await;
    assert!(failure(&outcome, &out).contains("no resource type `frobnicator`"));
}

#[tokio::test]
async fn patch_merges_or_applies_json_operations() {
    let lab = Lab::start(1).await;
    lab.cluster
        .create("default", deployment("web", 1))
        .expect("seed");
    let (outcome, out) = lab
        .run(
            "kube.patch",
            json!({"resource": "deploy/web", "merge": {"metadata": {"labels": {"tier": "front"}}}}),
        )
        .await;
    ok(&outcome, &out);
    let (outcome, out) = lab
        .run("kube.patch", json!({"resource": "deployment/web", "json": "[{\"op\": \"replace\", \"path\": \"/spec/template/spec/containers/0/image\", \"value\": \"web:2\"}]"}))
        .await;
    ok(&outcome, &out);
    let d = lab
        .cluster
        .get("apps", "deployments", "default", "web")
        .expect("web");
    assert_eq!(d["metadata"]["labels"]["tier"], "front");
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["image"],
        "web:2"
    );
}

#[tokio::test]
async fn delete_waits_until_gone_and_is_satisfied_when_nothing_is_left() {
    let lab = Lab::start(2).await;
    lab.cluster
        .create("default", deployment("web", 2))
        .expect("seed");
    lab.until(|w| crate::support::running(w, "web", 2)).await;
    let (outcome, out) = lab
        .run("kube.delete", json!({"resource": "deployment/web"}))
        .await;
    ok(&outcome, &out);
    assert!(
        lab.cluster
            .get("apps", "deployments", "default", "web")
            .is_none()
    );
    let (outcome, _) = lab
        .run("kube.delete", json!({"resource": "deployment/web"}))
        .await;
    assert_eq!(outcome, StepOutcome::Satisfied);
}

#[tokio::test]
async fn wait_survives_a_dropped_watch() {
    let lab = Lab::start(1).await;
    lab.cluster.install_rok("v1", 3).expect("rok");
    let waiting = lab.start_step(
        "kube.wait",
        json!({"resource": "rokcluster/rok", "namespace": "rok", "fields": {".metadata.labels.stage": "done"}}),
    );
    waiting.until_said("want \"done\"").await;
    lab.cluster.drop_watches();
    lab.cluster.drop_watches();
    let (outcome, out) = lab
        .run("kube.patch", json!({"resource": "rokcluster/rok", "namespace": "rok", "merge": {"metadata": {"labels": {"stage": "done"}}}}))
        .await;
    ok(&outcome, &out);
    let (outcome, out) = waiting.finish().await;
    ok(&outcome, &out);
}

#[tokio::test]
async fn wait_for_a_condition_for_gone_and_until_cancelled() {
    let lab = Lab::start(1).await;
    let (outcome, out) = lab
        .run(
            "kube.wait",
            json!({"resource": "node/node-1", "condition": "Ready"}),
        )
        .await;
    ok(&outcome, &out);
    let (outcome, out) = lab
        .run(
            "kube.wait",
            json!({"resource": "pod", "selector": "app=none", "gone": true}),
        )
        .await;
    ok(&outcome, &out);
    // Waiting for what never comes ends when the attempt is cancelled (its timeout), saying
    // what it still waited for.
    let waiting = lab.start_step(
        "kube.wait",
        json!({"resource": "node/node-1", "condition": "Frozen"}),
    );
    waiting.until_said("has no condition Frozen").await;
    waiting.cancel.cancel();
    let (outcome, out) = waiting.finish().await;
    assert!(
        failure(&outcome, &out).contains("has no condition Frozen"),
        "{out}"
    );
}

#[tokio::test]
async fn wait_gone_waits_while_the_object_exists_and_ends_once_it_is_deleted() {
    let lab = Lab::start(1).await;
    lab.cluster
        .create(
            "default",
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"}, "data": {"a": "1"}}),
        )
        .expect("seed");
    let waiting = lab.start_step(
        "kube.wait",
        json!({"resource": "configmap/settings", "gone": true}),
    );
    waiting.until_said("waiting for settings to go").await;
    assert!(
        !waiting.task.is_finished(),
        "it waits while the object exists"
    );
    let (outcome, out) = lab
        .run("kube.delete", json!({"resource": "configmap/settings"}))
        .await;
    ok(&outcome, &out);
    let (outcome, out) = waiting.finish().await;
    ok(&outcome, &out);
    assert!(out.contains(": gone"), "{out}");
}

/// A kubeconfig whose current context points where nothing listens, beside the lab's
/// context "lab".
fn two_contexts(lab_url: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: lab\n  cluster:\n    server: {lab_url}\n\
         - name: nowhere\n  cluster:\n    server: http://127.0.0.1:9\ncontexts:\n\
         - name: lab\n  context:\n    cluster: lab\n    user: lab\n    namespace: default\n\
         - name: nowhere\n  context:\n    cluster: nowhere\n    user: lab\n\
         current-context: nowhere\nusers:\n- name: lab\n  user: {{}}\n"
    )
}

#[tokio::test]
async fn a_steps_context_picks_the_cluster_and_a_missing_context_is_named() {
    let cluster = rok_plan_lab::kube::Cluster::start(rok_plan_lab::kube::ClusterOptions {
        nodes: 1,
        ..Default::default()
    })
    .await
    .expect("cluster");
    let dir = tempfile::tempdir().expect("dir");
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, two_contexts(&cluster.url())).expect("kubeconfig");
    let lab = Lab::with_kubeconfig(cluster, kubeconfig);

    let (outcome, out) = lab
        .run(
            "kube.get",
            json!({"resource": "node/node-1", "context": "lab", "fields": {"name": ".metadata.name"}}),
        )
        .await;
    let StepOutcome::Succeeded { outputs, .. } = outcome else {
        panic!("{outcome:?}\n{out}")
    };
    assert_eq!(outputs["name"], "node-1");

    // Without `context`, the current context (where nothing listens) is used; after its
    // retries the step fails naming the server.
    let (outcome, out) = lab
        .run("kube.get", json!({"resource": "node/node-1"}))
        .await;
    let reason = failure(&outcome, &out);
    assert!(
        reason.contains("http://127.0.0.1:9/ (current context)"),
        "the error names the server: {reason}"
    );

    let (outcome, out) = lab
        .run(
            "kube.get",
            json!({"resource": "node/node-1", "context": "staging"}),
        )
        .await;
    let reason = failure(&outcome, &out);
    assert!(reason.contains("staging"), "{reason}");
}
