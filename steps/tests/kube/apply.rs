//! kube.apply: create, unchanged, CRDs before their objects, conflicts, immutable fields.

use rok_plan_engine::step::StepOutcome;
use serde_json::json;

use crate::support::{Lab, failure, ok};

const WEB: &str = r"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: main
        image: web:1
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: web-config
data:
  mode: blue
";

#[tokio::test]
async fn applies_files_and_is_satisfied_the_second_time() {
    let lab = Lab::start(1).await;
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("web.yaml");
    std::fs::write(&file, WEB).expect("write");
    let fields = json!({"files": [file.display().to_string()]});
    let (outcome, out) = lab.run("kube.apply", fields.clone()).await;
    ok(&outcome, &out);
    assert!(out.contains("Deployment default/web: created"), "{out}");
    assert!(
        lab.cluster
            .get("", "configmaps", "default", "web-config")
            .is_some()
    );
    let (outcome, out) = lab.run("kube.apply", fields).await;
    assert_eq!(outcome, StepOutcome::Satisfied, "{out}");
}

#[tokio::test]
async fn a_new_crd_is_established_before_its_objects_are_applied() {
    let lab = Lab::start(1).await;
    let manifest = r"
apiVersion: example.com/v1
kind: Widget
metadata:
  name: w1
spec:
  size: 3
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
";
    let (outcome, out) = lab.run("kube.apply", json!({"manifest": manifest})).await;
    ok(&outcome, &out);
    assert!(out.contains("established"), "{out}");
    let (outcome, out) = lab
        .run(
            "kube.get",
            json!({"resource": "widget/w1", "fields": {"size": ".spec.size"}}),
        )
        .await;
    let StepOutcome::Succeeded { outputs, .. } = outcome else {
        panic!("{outcome:?}\n{out}")
    };
    assert_eq!(outputs["size"], "3");
}

#[tokio::test]
async fn a_conflict_names_the_other_manager_and_the_fields() {
    let lab = Lab::start(1).await;
    let first = json!({"manifest": WEB, "field_manager": "helm"});
    let (outcome, out) = lab.run("kube.apply", first).await;
    ok(&outcome, &out);
    let changed = WEB.replace("replicas: 2", "replicas: 5");
    let (outcome, out) = lab.run("kube.apply", json!({"manifest": changed})).await;
    let reason = failure(&outcome, &out);
    assert!(reason.contains("Deployment default/web"), "{reason}");
    assert!(
        reason.contains("\"helm\"") && reason.contains(".spec.replicas"),
        "{reason}"
    );
    assert!(reason.contains("force = true"), "{reason}");
    let (outcome, out) = lab
        .run("kube.apply", json!({"manifest": changed, "force": true}))
        .await;
    ok(&outcome, &out);
    let d = lab
        .cluster
        .get("apps", "deployments", "default", "web")
        .expect("web");
    assert_eq!(d["spec"]["replicas"], 5);
}

#[tokio::test]
async fn server_dry_run_changes_nothing() {
    let lab = Lab::start(1).await;
    let step = lab
        .dry_run_registry()
        .get("kube.apply")
        .expect("type")
        .clone();
    let (outcome, out) = crate::support::start_with(step, json!({"manifest": WEB}))
        .finish()
        .await;
    ok(&outcome, &out);
    assert!(out.contains("(server dry run)"), "{out}");
    assert!(
        lab.cluster
            .get("apps", "deployments", "default", "web")
            .is_none()
    );
}

const TOOLS: &str = r"
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: rok-tools
spec:
  replicas: 1
  serviceName: rok-tools
  selector:
    matchLabels: {app: rok-tools}
  template:
    metadata:
      labels: {app: rok-tools}
    spec:
      containers:
      - name: tools
        image: rok-tools:1.3
";

#[tokio::test]
async fn a_forbidden_statefulset_change_is_refused_or_recreated() {
    let lab = Lab::start(1).await;
    let (outcome, out) = lab.run("kube.apply", json!({"manifest": TOOLS})).await;
    ok(&outcome, &out);
    let uid = lab
        .cluster
        .get("apps", "statefulsets", "default", "rok-tools")
        .expect("sts")["metadata"]["uid"]
        .clone();
    let changed = TOOLS
        .replace("serviceName: rok-tools", "serviceName: rok-tools-v2")
        .replace("rok-tools:1.3", "rok-tools:1.4");
    let (outcome, out) = lab.run("kube.apply", json!({"manifest": changed})).await;
    let reason = failure(&outcome, &out);
    assert!(
        reason.contains("updates to statefulset spec for fields other than")
            && reason.contains("recreate_on_immutable = true"),
        "{reason}"
    );
    let (outcome, out) = lab
        .run(
            "kube.apply",
            json!({"manifest": changed, "recreate_on_immutable": true}),
        )
        .await;
    ok(&outcome, &out);
    assert!(out.contains("re-creating it"), "{out}");
    let sts = lab
        .cluster
        .get("apps", "statefulsets", "default", "rok-tools")
        .expect("sts");
    assert_ne!(sts["metadata"]["uid"], uid);
    assert_eq!(sts["spec"]["serviceName"], "rok-tools-v2");
    assert_eq!(
        sts["spec"]["template"]["spec"]["containers"][0]["image"],
        "rok-tools:1.4"
    );
}
