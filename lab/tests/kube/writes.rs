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

    let nodes: Api<Node> = Api::all(client.clone());
    let bad = api_status(
        nodes
            .patch(
                "node-1",
                &PatchParams::default(),
                &Patch::Strategic(json!({"spec": {"taints": [{"effect": "NoSchedule"}]}})),
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
