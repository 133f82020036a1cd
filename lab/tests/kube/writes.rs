//! Writes: server-side apply, merge and strategic patches, dry runs, delete propagation.

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{ConfigMap, Node, Pod};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, PropagationPolicy};
use kube::core::{DynamicObject, GroupVersionKind};
use kube::discovery::Discovery;
use kube::runtime::{conditions, wait::await_condition};
use serde_json::json;

use super::{api_status, start, within};

fn deployment(name: &str, replicas: i32) -> serde_json::Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "main", "image": "nginx:1", "env": [{"name": "A", "value": "1"}]}]}}},
    })
}

#[tokio::test]
async fn server_side_apply_creates_conflicts_forces_and_prunes() {
    let (_cluster, client) = start(2).await;
    let discovery = Discovery::new(client.clone())
        .run()
        .await
        .expect("discovery");
    let obj: DynamicObject = serde_json::from_value(deployment("web", 2)).expect("obj");
    let gvk = GroupVersionKind::try_from(obj.types.as_ref().expect("types")).expect("gvk");
    let (ar, _caps) = discovery.resolve_gvk(&gvk).expect("resolved");
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &ar);

    let applied = api
        .patch("web", &PatchParams::apply("rok-plan"), &Patch::Apply(&obj))
        .await
        .expect("apply creates");
    let managers: Vec<_> = applied
        .metadata
        .managed_fields
        .iter()
        .flatten()
        .map(|m| (m.manager.clone(), m.operation.clone()))
        .collect();
    assert_eq!(
        managers,
        [(Some("rok-plan".to_string()), Some("Apply".to_string()))]
    );

    // Another manager applies only the fields it cares about.
    let other = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "labels": {"team": "x"}}, "spec": {"replicas": 5}});
    let other: DynamicObject = serde_json::from_value(other).expect("obj");
    let conflict = api_status(
        api.patch(
            "web",
            &PatchParams::apply("someone-else"),
            &Patch::Apply(&other),
        )
        .await
        .expect_err("conflict"),
    );
    assert_eq!((conflict.code, conflict.reason.as_str()), (409, "Conflict"));
    assert_eq!(
        conflict.message,
        "Apply failed with 1 conflict: conflict with \"rok-plan\" using apps/v1: .spec.replicas"
    );
    let causes = conflict.details.expect("details").causes;
    assert_eq!(causes[0].reason, "FieldManagerConflict");
    assert_eq!(causes[0].field, ".spec.replicas");

    let forced = api
        .patch(
            "web",
            &PatchParams::apply("someone-else").force(),
            &Patch::Apply(&other),
        )
        .await
        .expect("forced");
    assert_eq!(forced.data["spec"]["replicas"], 5);

    // rok-plan stops applying the env var: it is removed; the dry run changes nothing.
    let mut slimmer = deployment("web", 5);
    slimmer["spec"]["template"]["spec"]["containers"][0]
        .as_object_mut()
        .expect("container")
        .remove("env");
    let slimmer: DynamicObject = serde_json::from_value(slimmer).expect("obj");
    let dry = api
        .patch(
            "web",
            &PatchParams::apply("rok-plan").force().dry_run(),
            &Patch::Apply(&slimmer),
        )
        .await
        .expect("dry run");
    assert!(
        dry.data["spec"]["template"]["spec"]["containers"][0]
            .get("env")
            .is_none()
    );
    let live = api.get("web").await.expect("get");
    assert_eq!(
        live.data["spec"]["template"]["spec"]["containers"][0]["env"][0]["name"],
        "A"
    );
    let pruned = api
        .patch(
            "web",
            &PatchParams::apply("rok-plan").force(),
            &Patch::Apply(&slimmer),
        )
        .await
        .expect("apply");
    assert!(
        pruned.data["spec"]["template"]["spec"]["containers"][0]
            .get("env")
            .is_none()
    );
    assert_eq!(
        pruned
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("team"))
            .map(String::as_str),
        Some("x")
    );
}

#[tokio::test]
async fn patches_merge_by_key_and_restart_rolls_the_deployment() {
    let (_cluster, client) = start(2).await;
    let deps: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let d: Deployment = serde_json::from_value(deployment("app", 2)).expect("deployment");
    deps.create(&PostParams::default(), &d)
        .await
        .expect("created");
    within(await_condition(
        deps.clone(),
        "app",
        conditions::is_deployment_completed(),
    ))
    .await
    .expect("rolled out");

    let patch = json!({"spec": {"template": {"spec": {"containers": [{"name": "main", "env": [{"name": "B", "value": "2"}]}]}}}});
    let patched = deps
        .patch("app", &PatchParams::default(), &Patch::Strategic(patch))
        .await
        .expect("strategic");
    let c = &patched
        .spec
        .template
        .spec
        .as_ref()
        .expect("pod spec")
        .containers[0];
    let env: Vec<_> = c.env.iter().flatten().map(|e| e.name.clone()).collect();
    assert_eq!(
        (c.image.as_deref(), env),
        (Some("nginx:1"), vec!["A".to_string(), "B".to_string()])
    );
    assert_eq!(patched.metadata.generation, Some(2));

    deps.restart("app").await.expect("restart");
    within(async {
        loop {
            let d = deps.get("app").await.expect("get");
            let s = d.status.clone().unwrap_or_default();
            if d.metadata.generation == s.observed_generation
                && s.updated_replicas == Some(2)
                && s.replicas == Some(2)
                && s.available_replicas == Some(2)
            {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await;
    within(await_condition(
        deps.clone(),
        "app",
        conditions::is_deployment_completed(),
    ))
    .await
    .expect("rolled out again");
    let rss: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
    let sets = rss
        .list(&ListParams::default().labels("app=app"))
        .await
        .expect("rs list");
    // The rollout left one ReplicaSet with every pod, from the restarted template; older ones
    // (one per template the controller saw) are scaled to zero.
    let sets: Vec<serde_json::Value> = sets
        .items
        .iter()
        .map(|r| serde_json::to_value(r).expect("json"))
        .collect();
    let live: Vec<&serde_json::Value> =
        sets.iter().filter(|r| r["spec"]["replicas"] != 0).collect();
    assert!(
        sets.len() >= 2 && live.len() == 1,
        "{} sets, {} live",
        sets.len(),
        live.len()
    );
    let annotations = &live[0]["spec"]["template"]["metadata"]["annotations"];
    assert!(
        annotations
            .as_object()
            .is_some_and(|a| a.keys().any(|k| k.ends_with("restartedAt"))),
        "{annotations}"
    );

    let bad = api_status(
        deps.patch(
            "app",
            &PatchParams::default(),
            &Patch::Strategic(
                json!({"spec": {"template": {"spec": {"containers": [{"image": "nginx:2"}]}}}}),
            ),
        )
        .await
        .expect_err("no merge key"),
    );
    assert_eq!(bad.code, 400);
}

#[tokio::test]
async fn dry_run_create_stores_nothing() {
    let (_cluster, client) = start(1).await;
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "dry"}})).expect("cm");
    cms.create(
        &PostParams {
            dry_run: true,
            ..PostParams::default()
        },
        &cm,
    )
    .await
    .expect("dry run");
    assert!(cms.get_opt("dry").await.expect("get").is_none());
}

#[tokio::test]
async fn delete_propagates_background_foreground_and_orphan() {
    let (_cluster, client) = start(2).await;
    let deps: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let rss: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
    for name in ["bg", "fg", "orph"] {
        let d: Deployment = serde_json::from_value(deployment(name, 1)).expect("deployment");
        deps.create(&PostParams::default(), &d)
            .await
            .expect("created");
        within(await_condition(
            deps.clone(),
            name,
            conditions::is_deployment_completed(),
        ))
        .await
        .expect("ready");
    }
    let count = |sel: &'static str| {
        let pods = pods.clone();
        async move {
            pods.list(&ListParams::default().labels(sel))
                .await
                .expect("list")
                .items
                .len()
        }
    };
    deps.delete("bg", &DeleteParams::background())
        .await
        .expect("delete");
    within(async {
        while count("app=bg").await > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await
        }
    })
    .await;

    let fg = deps.get("fg").await.expect("get");
    let uid = fg.metadata.uid.clone().expect("uid");
    let pending = deps
        .delete("fg", &DeleteParams::foreground())
        .await
        .expect("delete");
    assert!(pending.left().is_some_and(|d| {
        d.metadata
            .finalizers
            .unwrap_or_default()
            .contains(&"foregroundDeletion".to_string())
    }));
    within(await_condition(
        deps.clone(),
        "fg",
        conditions::is_deleted(&uid),
    ))
    .await
    .expect("owner gone last");
    assert_eq!(count("app=fg").await, 0);

    deps.delete(
        "orph",
        &DeleteParams {
            propagation_policy: Some(PropagationPolicy::Orphan),
            ..DeleteParams::default()
        },
    )
    .await
    .expect("delete");
    let left = rss
        .list(&ListParams::default().labels("app=orph"))
        .await
        .expect("list");
    assert_eq!(left.items.len(), 1);
    assert!(
        left.items[0]
            .metadata
            .owner_references
            .as_ref()
            .is_none_or(Vec::is_empty)
    );
    assert_eq!(count("app=orph").await, 1);
}

/// A Deployment applied by `manager` with the given pod spec.
fn deployment_with(name: &str, pod_spec: serde_json::Value) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": pod_spec}},
    }))
    .expect("deployment")
}

#[tokio::test]
async fn server_side_apply_uses_the_openapi_list_map_keys() {
    let (_cluster, client) = start(1).await;
    let ar = kube::core::ApiResource::erase::<Deployment>(&());
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &ar);
    let apply = |manager: &'static str, obj: DynamicObject, force: bool| {
        let api = api.clone();
        async move {
            let mut pp = PatchParams::apply(manager);
            pp.force = force;
            api.patch("dns", &pp, &Patch::Apply(&obj)).await
        }
    };
    // Ports are keyed by containerPort *and* protocol: 53/TCP and 53/UDP are two ports (the
    // protocol defaults to TCP); env by name, volumeMounts by mountPath, containers by name.
    let first = deployment_with(
        "dns",
        json!({"containers": [{"name": "dns", "image": "dns:1",
            "ports": [{"containerPort": 53}, {"containerPort": 53, "protocol": "UDP"}],
            "env": [{"name": "A", "value": "1"}],
            "volumeMounts": [{"name": "cfg", "mountPath": "/etc/dns"}]}],
            "volumes": [{"name": "cfg", "emptyDir": {}}],
            "tolerations": [{"key": "a", "operator": "Exists"}]}),
    );
    let live = apply("owner", first, false).await.expect("applied");
    let ports = &live.data["spec"]["template"]["spec"]["containers"][0]["ports"];
    assert_eq!(ports.as_array().map(Vec::len), Some(2), "{ports}");
    let owned = serde_json::to_string(&live.metadata.managed_fields).expect("json");
    assert!(
        owned.contains(r#"k:{\"containerPort\":53,\"protocol\":\"TCP\"}"#)
            && owned.contains(r#"k:{\"containerPort\":53,\"protocol\":\"UDP\"}"#),
        "{owned}"
    );

    // A second manager adds an env var and a port to the same container: map lists merge
    // element by element, so nothing conflicts and nothing of the first manager's is lost.
    let second = deployment_with(
        "dns",
        json!({"containers": [{"name": "dns",
            "ports": [{"containerPort": 9153, "protocol": "TCP"}],
            "env": [{"name": "B", "value": "2"}]}]}),
    );
    let merged = apply("sidecar", second, false).await.expect("merged");
    let c = &merged.data["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["image"], "dns:1");
    assert_eq!(c["ports"].as_array().map(Vec::len), Some(3));
    let env: Vec<&str> = c["env"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["name"].as_str())
        .collect();
    assert_eq!(env, ["A", "B"]);

    // Tolerations are an atomic list: another manager setting them conflicts with the owner.
    let tolerations = deployment_with(
        "dns",
        json!({"containers": [{"name": "dns"}], "tolerations": [{"key": "b", "operator": "Exists"}]}),
    );
    let conflict = api_status(
        apply("other", tolerations, false)
            .await
            .expect_err("atomic list"),
    );
    assert_eq!(conflict.code, 409);
    assert_eq!(
        conflict.message,
        "Apply failed with 1 conflict: conflict with \"owner\" using apps/v1: .spec.template.spec.tolerations"
    );

    // The owner stops applying 53/UDP: only that port goes.
    let without_udp = deployment_with(
        "dns",
        json!({"containers": [{"name": "dns", "image": "dns:1",
            "ports": [{"containerPort": 53}],
            "env": [{"name": "A", "value": "1"}],
            "volumeMounts": [{"name": "cfg", "mountPath": "/etc/dns"}]}],
            "volumes": [{"name": "cfg", "emptyDir": {}}],
            "tolerations": [{"key": "a", "operator": "Exists"}]}),
    );
    let pruned = apply("owner", without_udp, false).await.expect("pruned");
    let ports: Vec<(i64, &str)> = pruned.data["spec"]["template"]["spec"]["containers"][0]["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            (
                p["containerPort"].as_i64().unwrap_or(0),
                p["protocol"].as_str().unwrap_or("TCP"),
            )
        })
        .collect();
    assert_eq!(ports, [(53, "TCP"), (9153, "TCP")]);

    // An element without its key cannot be applied, as kube-apiserver answers.
    let keyless = deployment_with("dns", json!({"containers": [{"image": "dns:2"}]}));
    let e = api_status(apply("owner", keyless, true).await.expect_err("no key"));
    assert_eq!(e.code, 500);
    assert_eq!(
        e.message,
        "failed to create typed patch object (default/dns; apps/v1, Kind=Deployment): .spec.template.spec.containers: element 0: associative list with keys has an element that omits key field \"name\" (and doesn't have default value)"
    );
}

#[tokio::test]
async fn server_side_apply_follows_crd_list_types() {
    use kube::core::ApiResource;
    let (cluster, client) = start(1).await;
    cluster
        .create(
            "",
            json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
                "metadata": {"name": "pools.lab.example.com"},
                "spec": {"group": "lab.example.com", "scope": "Namespaced",
                    "names": {"plural": "pools", "singular": "pool", "kind": "Pool"},
                    "versions": [{"name": "v1", "served": true, "storage": true,
                        "schema": {"openAPIV3Schema": {"type": "object", "properties": {"spec": {"type": "object", "properties": {
                            "members": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["host"],
                                "items": {"type": "object", "properties": {"host": {"type": "string"},
                                    "disks": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}}}}},
                            "tags": {"type": "array", "items": {"type": "string"}}}}}}}}]}}),
        )
        .expect("crd");
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("lab.example.com", "v1", "Pool"),
        "pools",
    );
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &ar);
    let pool = |spec: serde_json::Value| -> DynamicObject {
        serde_json::from_value(json!({"apiVersion": "lab.example.com/v1", "kind": "Pool", "metadata": {"name": "p"}, "spec": spec})).expect("pool")
    };
    api.patch(
        "p",
        &PatchParams::apply("a"),
        &Patch::Apply(&pool(
            json!({"members": [{"host": "h1", "disks": ["sda"]}], "tags": ["x"]}),
        )),
    )
    .await
    .expect("a applies");
    // `members` is a map keyed by host and `disks` a set: b's entries join a's.
    let merged = api
        .patch(
            "p",
            &PatchParams::apply("b"),
            &Patch::Apply(&pool(
                json!({"members": [{"host": "h1", "disks": ["sdb"]}, {"host": "h2"}]}),
            )),
        )
        .await
        .expect("b applies");
    assert_eq!(
        merged.data["spec"]["members"],
        json!([{"host": "h1", "disks": ["sda", "sdb"]}, {"host": "h2"}])
    );
    // `tags` declares no list type: atomic, owned by a.
    let e = api_status(
        api.patch(
            "p",
            &PatchParams::apply("b"),
            &Patch::Apply(&pool(json!({"tags": ["y"]}))),
        )
        .await
        .expect_err("atomic"),
    );
    assert_eq!(
        e.message,
        "Apply failed with 1 conflict: conflict with \"a\" using lab.example.com/v1: .spec.tags"
    );
}

#[tokio::test]
async fn delete_dry_run_removes_nothing() {
    let (_cluster, client) = start(1).await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    for name in ["a", "b"] {
        let cm: ConfigMap = serde_json::from_value(
            json!({"metadata": {"name": name, "labels": {"set": "x"}}, "data": {"k": "v"}}),
        )
        .expect("cm");
        cms.create(&PostParams::default(), &cm)
            .await
            .expect("created");
    }
    let dry = DeleteParams {
        dry_run: true,
        ..DeleteParams::default()
    };
    cms.delete("a", &dry).await.expect("dry-run delete");
    cms.delete_collection(&dry, &ListParams::default().labels("set=x"))
        .await
        .expect("dry-run delete collection");
    let left: Vec<String> = cms
        .list(&ListParams::default().labels("set=x"))
        .await
        .expect("list")
        .items
        .into_iter()
        .filter_map(|c| c.metadata.name)
        .collect();
    assert_eq!(left, ["a", "b"]);
    assert!(
        cms.get("a")
            .await
            .expect("still there")
            .metadata
            .deletion_timestamp
            .is_none()
    );
    // A bound pod is not even marked for deletion.
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let p: Pod = serde_json::from_value(
        json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "m", "image": "x"}]}}),
    )
    .expect("pod");
    pods.create(&PostParams::default(), &p)
        .await
        .expect("created");
    within(await_condition(
        pods.clone(),
        "p",
        conditions::is_pod_running(),
    ))
    .await
    .expect("running");
    pods.delete("p", &dry).await.expect("dry-run delete");
    let p = pods.get("p").await.expect("pod");
    assert!(p.metadata.deletion_timestamp.is_none());
}

#[tokio::test]
async fn delete_grace_zero_removes_a_bound_pod_at_once() {
    let (cluster, client) = start(1).await;
    // The kubelet would otherwise take a minute to stop a pod.
    cluster.set_delays(rok_plan_lab::kube::Delays {
        pod_stop: std::time::Duration::from_secs(60),
        ..Default::default()
    });
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    for name in ["now", "later"] {
        let p: Pod = serde_json::from_value(json!({"metadata": {"name": name}, "spec": {"containers": [{"name": "c", "image": "x"}]}})).expect("pod");
        pods.create(&PostParams::default(), &p)
            .await
            .expect("created");
        within(await_condition(
            pods.clone(),
            name,
            conditions::is_pod_running(),
        ))
        .await
        .expect("running");
    }
    let gone = pods
        .delete("now", &DeleteParams::default().grace_period(0))
        .await
        .expect("deleted");
    assert!(gone.is_right(), "a Status, not a terminating pod");
    assert!(pods.get_opt("now").await.expect("get").is_none());

    let terminating = pods
        .delete("later", &DeleteParams::default().grace_period(45))
        .await
        .expect("deleted")
        .left()
        .expect("the pod, terminating");
    assert_eq!(terminating.metadata.deletion_grace_period_seconds, Some(45));
    let stored = pods.get("later").await.expect("still there");
    assert_eq!(stored.metadata.deletion_grace_period_seconds, Some(45));
    assert!(stored.metadata.deletion_timestamp.is_some());
    // Deleting it again with no grace ends the wait.
    pods.delete("later", &DeleteParams::default().grace_period(0))
        .await
        .expect("deleted");
    assert!(pods.get_opt("later").await.expect("get").is_none());
}

#[tokio::test]
async fn dry_run_replace_scale_and_status_store_nothing() {
    let (cluster, client) = start(1).await;
    let deps: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let d: Deployment = serde_json::from_value(deployment("dry", 2)).expect("deployment");
    deps.create(&PostParams::default(), &d)
        .await
        .expect("created");
    within(await_condition(
        deps.clone(),
        "dry",
        conditions::is_deployment_completed(),
    ))
    .await
    .expect("rolled out");
    // Nothing moves unless a request moves it.
    cluster.pause_controllers(true);
    let before = deps.get("dry").await.expect("get");
    let dry = PostParams {
        dry_run: true,
        ..PostParams::default()
    };

    let mut changed = before.clone();
    changed.spec.replicas = Some(5);
    changed
        .metadata
        .labels
        .get_or_insert_default()
        .insert("tier".into(), "web".into());
    let answered = deps.replace("dry", &dry, &changed).await.expect("dry put");
    assert_eq!(answered.spec.replicas, Some(5));
    assert_eq!(answered.metadata.generation, Some(2));

    let scale = deps
        .patch_scale(
            "dry",
            &PatchParams::default().dry_run(),
            &Patch::Merge(json!({"spec": {"replicas": 7}})),
        )
        .await
        .expect("dry scale");
    assert_eq!(scale.spec.and_then(|s| s.replicas), Some(7));

    let status = deps
        .patch_status(
            "dry",
            &PatchParams::default().dry_run(),
            &Patch::Merge(json!({"status": {"replicas": 9}})),
        )
        .await
        .expect("dry status");
    assert_eq!(status.status.and_then(|s| s.replicas), Some(9));
    let mut with_status = before.clone();
    with_status.status.get_or_insert_default().ready_replicas = Some(0);
    let status = deps
        .replace_status("dry", &dry, &with_status)
        .await
        .expect("dry status put");
    assert_eq!(status.status.and_then(|s| s.ready_replicas), Some(0));

    let after = deps.get("dry").await.expect("get");
    assert_eq!(
        after.metadata.resource_version, before.metadata.resource_version,
        "nothing stored"
    );
    assert_eq!(after.spec.replicas, Some(2));
    assert_eq!(
        after
            .status
            .as_ref()
            .map(|s| (s.replicas, s.ready_replicas)),
        Some((Some(2), Some(2)))
    );
    assert!(
        after
            .metadata
            .labels
            .is_none_or(|l| !l.contains_key("tier"))
    );
}

fn widget_crd() -> serde_json::Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}},
                "subresources": {"status": {}}}]},
    })
}

#[tokio::test]
async fn status_writes_change_only_the_status() {
    let (cluster, client) = start(1).await;
    cluster.create("", widget_crd()).expect("crd");
    let ar = kube::core::ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("example.com", "v1", "Widget"),
        "widgets",
    );
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &ar);
    let w: DynamicObject = serde_json::from_value(json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"size": 1}, "status": {"phase": "ignored"}})).expect("widget");
    let created = api
        .create(&PostParams::default(), &w)
        .await
        .expect("created");
    // With a status subresource, a create drops the status.
    assert!(created.data.get("status").is_none(), "{:?}", created.data);
    assert_eq!(created.metadata.generation, Some(1));

    // A status patch that also names the spec changes the status only.
    let patched = api
        .patch_status(
            "w",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"size": 99}, "status": {"phase": "Ready", "count": 3}})),
        )
        .await
        .expect("status patched");
    assert_eq!(
        patched.data["status"],
        json!({"phase": "Ready", "count": 3})
    );
    assert_eq!(patched.data["spec"], json!({"size": 1}));
    assert_eq!(patched.metadata.generation, Some(1));

    // A status PUT likewise.
    let mut body = patched.clone();
    body.data["spec"] = json!({"size": 50});
    body.data["status"] = json!({"phase": "Degraded"});
    let replaced = api
        .replace_status("w", &PostParams::default(), &body)
        .await
        .expect("status replaced");
    assert_eq!(replaced.data["status"], json!({"phase": "Degraded"}));
    assert_eq!(replaced.data["spec"], json!({"size": 1}));
    assert_eq!(replaced.metadata.generation, Some(1));

    // A main-resource patch changes the spec, bumps the generation and keeps the status.
    let main = api
        .patch(
            "w",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"size": 2}, "status": {"phase": "Hacked"}})),
        )
        .await
        .expect("patched");
    assert_eq!(main.data["spec"], json!({"size": 2}));
    assert_eq!(main.data["status"], json!({"phase": "Degraded"}));
    assert_eq!(main.metadata.generation, Some(2));
}

#[tokio::test]
async fn strategic_merge_patch_directives() {
    let (_cluster, client) = start(1).await;
    let deps: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let mut d = deployment("sm", 1);
    d["metadata"]["labels"] = json!({"a": "1", "b": "2"});
    d["metadata"]["annotations"] = json!({"x": "1", "y": "2"});
    d["metadata"]["finalizers"] = json!(["example.com/one", "example.com/two"]);
    let pod_spec = &mut d["spec"]["template"]["spec"];
    pod_spec["containers"][0]["args"] = json!(["--one", "--two"]);
    pod_spec["volumes"] =
        json!([{"name": "data", "emptyDir": {}}, {"name": "cache", "emptyDir": {}}]);
    pod_spec["tolerations"] = json!([
        {"key": "k1", "operator": "Exists", "effect": "NoSchedule"},
        {"key": "k2", "operator": "Exists", "effect": "NoExecute"},
    ]);
    let d: Deployment = serde_json::from_value(d).expect("deployment");
    deps.create(&PostParams::default(), &d)
        .await
        .expect("created");
    let patch = |v: serde_json::Value| {
        let deps = deps.clone();
        async move {
            serde_json::to_value(
                deps.patch("sm", &PatchParams::default(), &Patch::Strategic(v))
                    .await
                    .expect("patched"),
            )
            .expect("json")
        }
    };
    let pod_patch = |spec: serde_json::Value| json!({"spec": {"template": {"spec": spec}}});
    let volumes = |v: &serde_json::Value| -> Vec<String> {
        v["spec"]["template"]["spec"]["volumes"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| e["name"].as_str().unwrap_or_default().to_string())
            .collect()
    };

    // Volumes merge by name: one changes, one is added, the other stays; `$patch: delete`
    // removes one by name.
    let out = patch(pod_patch(json!({"volumes": [
        {"name": "cache", "emptyDir": {"medium": "Memory"}},
        {"name": "extra", "configMap": {"name": "cfg"}},
    ]})))
    .await;
    assert_eq!(volumes(&out), ["data", "cache", "extra"]);
    assert_eq!(
        out["spec"]["template"]["spec"]["volumes"][1]["emptyDir"],
        json!({"medium": "Memory"})
    );
    let out = patch(pod_patch(
        json!({"volumes": [{"name": "data", "$patch": "delete"}]}),
    ))
    .await;
    assert_eq!(volumes(&out), ["cache", "extra"]);

    // `$patch: replace` in a list replaces the whole list.
    let out = patch(pod_patch(
        json!({"volumes": [{"name": "only", "emptyDir": {}}, {"$patch": "replace"}]}),
    ))
    .await;
    assert_eq!(volumes(&out), ["only"]);

    // Tolerations have no merge key upstream: a patch replaces them whole.
    let out = patch(pod_patch(
        json!({"tolerations": [{"key": "k3", "operator": "Exists"}]}),
    ))
    .await;
    assert_eq!(
        out["spec"]["template"]["spec"]["tolerations"],
        json!([{"key": "k3", "operator": "Exists"}])
    );
    // The containers merge by name; their `args` have no merge key and are replaced.
    let out = patch(pod_patch(
        json!({"containers": [{"name": "main", "args": ["--three"]}]}),
    ))
    .await;
    let c = &out["spec"]["template"]["spec"]["containers"];
    assert_eq!(
        (&c[0]["args"], &c[0]["image"]),
        (&json!(["--three"]), &json!("nginx:1"))
    );

    // `$patch: replace` on a map replaces the map; `$patch: delete` on a map removes it.
    let out = patch(json!({"metadata": {"labels": {"c": "3", "$patch": "replace"}}})).await;
    assert_eq!(out["metadata"]["labels"], json!({"c": "3"}));
    let out = patch(json!({"metadata": {"annotations": {"$patch": "delete"}}})).await;
    assert!(
        out["metadata"]["annotations"]
            .as_object()
            .is_none_or(|a| !a.contains_key("x") && !a.contains_key("y")),
        "{}",
        out["metadata"]
    );
    let out = patch(json!({"metadata": {"labels": {"c": null, "d": "4"}}})).await;
    assert_eq!(out["metadata"]["labels"], json!({"d": "4"}));

    // `$deleteFromPrimitiveList` drops values from a merged primitive list.
    let out =
        patch(json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["example.com/one"]}}))
            .await;
    assert_eq!(out["metadata"]["finalizers"], json!(["example.com/two"]));
}

#[tokio::test]
async fn strategic_merge_patch_replaces_node_taints_whole() {
    let (_cluster, client) = start(1).await;
    let nodes: Api<Node> = Api::all(client.clone());
    nodes
        .patch(
            "node-1",
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {"taints": [
                {"key": "a", "value": "1", "effect": "NoSchedule"},
                {"key": "b", "effect": "NoExecute"},
            ]}})),
        )
        .await
        .expect("tainted");
    let node = nodes
        .patch(
            "node-1",
            &PatchParams::default(),
            &Patch::Strategic(
                json!({"spec": {"taints": [{"key": "a", "value": "2", "effect": "NoSchedule"}]}}),
            ),
        )
        .await
        .expect("patched");
    let taints: Vec<(String, Option<String>)> = node
        .spec
        .and_then(|s| s.taints)
        .unwrap_or_default()
        .into_iter()
        .map(|t| (t.key, t.value))
        .collect();
    assert_eq!(taints, [("a".to_string(), Some("2".to_string()))]);
}
