//! API machinery: discovery, CRUD metadata, namespaces, selectors, paging, watch.

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, ListParams, PostParams, WatchEvent, WatchParams};
use kube::core::{DynamicObject, GroupVersionKind};
use kube::discovery::{Discovery, Scope};
use kube::runtime::{WatchStreamExt, conditions, wait::await_condition, watcher};
use serde_json::json;

use super::{api_status, start, within};

fn pod(name: &str, labels: serde_json::Value) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": labels},
        "spec": {"containers": [{"name": "main", "image": "busybox"}]},
    }))
    .expect("pod")
}

#[tokio::test]
async fn discovery_serves_builtin_kinds_and_established_crds() {
    let (_cluster, client) = start(1).await;
    let discovery = Discovery::new(client.clone())
        .run()
        .await
        .expect("discovery runs");
    let (ar, caps) = discovery
        .resolve_gvk(&GroupVersionKind::gvk("apps", "v1", "Deployment"))
        .expect("Deployment is served");
    assert_eq!(ar.plural, "deployments");
    assert_eq!(caps.scope, Scope::Namespaced);
    assert!(
        caps.subresources
            .iter()
            .any(|(s, _)| s.plural == "deployments/scale" || s.plural == "scale"),
        "scale listed: {:?}",
        caps.subresources
            .iter()
            .map(|(s, _)| s.plural.clone())
            .collect::<Vec<_>>()
    );
    assert!(
        discovery
            .resolve_gvk(&GroupVersionKind::gvk(
                "policy",
                "v1",
                "PodDisruptionBudget"
            ))
            .is_some()
    );

    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd: CustomResourceDefinition =
        serde_json::from_str(rok_plan_lab::kube::controllers::ROK_CRD).expect("crd");
    crds.create(&PostParams::default(), &crd)
        .await
        .expect("crd created");
    within(await_condition(
        crds,
        "rokclusters.rok.arrikto.com",
        conditions::is_crd_established(),
    ))
    .await
    .expect("established");
    let discovery = Discovery::new(client)
        .run()
        .await
        .expect("discovery runs again");
    let (ar, caps) = discovery
        .resolve_gvk(&GroupVersionKind::gvk(
            "rok.arrikto.com",
            "v1alpha1",
            "RokCluster",
        ))
        .expect("CRD served");
    assert_eq!(ar.plural, "rokclusters");
    assert_eq!(caps.scope, Scope::Namespaced);
}

#[tokio::test]
async fn aggregated_discovery_matches_legacy_discovery() {
    let (_cluster, client) = start(1).await;
    let discovery = Discovery::new(client)
        .run_aggregated()
        .await
        .expect("aggregated discovery runs");
    for (g, v, k, plural) in [
        ("", "v1", "Pod", "pods"),
        ("apps", "v1", "StatefulSet", "statefulsets"),
        (
            "policy",
            "v1",
            "PodDisruptionBudget",
            "poddisruptionbudgets",
        ),
    ] {
        let (ar, caps) = discovery
            .resolve_gvk(&GroupVersionKind::gvk(g, v, k))
            .expect("served");
        assert_eq!(
            (ar.plural.as_str(), caps.scope),
            (plural, Scope::Namespaced)
        );
    }
    let (_, caps) = discovery
        .resolve_gvk(&GroupVersionKind::gvk("", "v1", "Pod"))
        .expect("pods");
    let subs: Vec<String> = caps
        .subresources
        .iter()
        .map(|(s, _)| s.plural.clone())
        .collect();
    assert!(
        subs.iter().any(|s| s.ends_with("eviction")) && subs.iter().any(|s| s.ends_with("log")),
        "{subs:?}"
    );
}

#[tokio::test]
async fn crud_keeps_metadata_and_answers_real_statuses() {
    let (_cluster, client) = start(1).await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let mut cm: ConfigMap =
        serde_json::from_value(json!({"metadata": {"generateName": "cfg-"}, "data": {"a": "1"}}))
            .expect("cm");
    let created = cms
        .create(&PostParams::default(), &cm)
        .await
        .expect("created");
    let name = created.metadata.name.clone().expect("generated name");
    assert!(name.starts_with("cfg-") && name.len() == 9, "{name}");
    assert!(created.metadata.uid.is_some() && created.metadata.creation_timestamp.is_some());
    let rv = created.metadata.resource_version.clone().expect("rv");

    cm = created.clone();
    cm.data = Some([("a".to_string(), "2".to_string())].into());
    let replaced = cms
        .replace(&name, &PostParams::default(), &cm)
        .await
        .expect("replace with current rv");
    assert_ne!(replaced.metadata.resource_version, Some(rv));
    let stale = api_status(
        cms.replace(&name, &PostParams::default(), &cm)
            .await
            .expect_err("stale rv"),
    );
    assert_eq!((stale.code, stale.reason.as_str()), (409, "Conflict"));
    assert_eq!(
        stale.message,
        format!(
            "Operation cannot be fulfilled on configmaps \"{name}\": the object has been modified; please apply your changes to the latest version and try again"
        )
    );

    let again = api_status(
        cms.create(&PostParams::default(), &replaced)
            .await
            .expect_err("exists"),
    );
    assert_eq!((again.code, again.reason.as_str()), (409, "AlreadyExists"));
    let missing = api_status(cms.get("nope").await.expect_err("missing"));
    assert_eq!(
        (
            missing.code,
            missing.reason.as_str(),
            missing.message.as_str()
        ),
        (404, "NotFound", "configmaps \"nope\" not found")
    );
    let elsewhere: Api<ConfigMap> = Api::namespaced(client.clone(), "no-such-ns");
    let orphan: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "lost"}})).expect("cm");
    let e = api_status(
        elsewhere
            .create(&PostParams::default(), &orphan)
            .await
            .expect_err("missing namespace"),
    );
    assert_eq!(
        (e.code, e.message.as_str()),
        (404, "namespaces \"no-such-ns\" not found")
    );

    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let bad: Pod =
        serde_json::from_value(json!({"metadata": {"name": "bad"}, "spec": {"containers": []}}))
            .expect("pod");
    let invalid = api_status(
        pods.create(&PostParams::default(), &bad)
            .await
            .expect_err("invalid"),
    );
    assert_eq!(
        (
            invalid.code,
            invalid.reason.as_str(),
            invalid.message.as_str()
        ),
        (
            422,
            "Invalid",
            "Pod \"bad\" is invalid: spec.containers: Required value"
        )
    );

    // A finalizer holds the object with a deletionTimestamp until it is removed.
    let held: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "held", "finalizers": ["lab/hold"]}}))
            .expect("cm");
    cms.create(&PostParams::default(), &held)
        .await
        .expect("created");
    let pending = cms
        .delete("held", &DeleteParams::default())
        .await
        .expect("delete");
    assert!(
        pending
            .left()
            .is_some_and(|o| o.metadata.deletion_timestamp.is_some())
    );
    cms.patch(
        "held",
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .expect("unfinalized");
    assert!(cms.get_opt("held").await.expect("get").is_none());
}

#[tokio::test]
async fn namespaces_terminate_and_refuse_new_content() {
    let (_cluster, client) = start(1).await;
    let nss: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": "team"}})).expect("ns");
    nss.create(&PostParams::default(), &ns)
        .await
        .expect("created");
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "team");
    let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "c"}})).expect("cm");
    cms.create(&PostParams::default(), &cm)
        .await
        .expect("created");
    let uid = nss
        .get("team")
        .await
        .expect("ns")
        .metadata
        .uid
        .expect("uid");
    let pinned: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "pinned", "finalizers": ["lab/hold"]}}))
            .expect("cm");
    cms.create(&PostParams::default(), &pinned)
        .await
        .expect("created");
    nss.delete("team", &DeleteParams::default())
        .await
        .expect("delete");
    // The finalizer keeps the namespace Terminating; new content is refused.
    let phase = nss
        .get("team")
        .await
        .expect("ns")
        .status
        .and_then(|s| s.phase);
    assert_eq!(phase.as_deref(), Some("Terminating"));
    let late: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "late"}})).expect("cm");
    let refused = api_status(
        cms.create(&PostParams::default(), &late)
            .await
            .expect_err("terminating"),
    );
    assert_eq!((refused.code, refused.reason.as_str()), (403, "Forbidden"));
    assert_eq!(
        refused.message,
        "configmaps \"late\" is forbidden: unable to create new content in namespace team because it is being terminated"
    );
    within(async {
        while cms
            .get("pinned")
            .await
            .expect("cm")
            .metadata
            .deletion_timestamp
            .is_none()
        {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await;
    cms.patch(
        "pinned",
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .expect("released");
    within(await_condition(nss, "team", conditions::is_deleted(&uid)))
        .await
        .expect("namespace gone");
    assert!(api_status(cms.get("c").await.expect_err("gone")).code == 404);
}

#[tokio::test]
async fn list_filters_by_labels_and_fields_and_pages() {
    let (_cluster, client) = start(2).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    for (i, app) in ["a", "b", "c", "a", "b"].iter().enumerate() {
        pods.create(
            &PostParams::default(),
            &pod(&format!("p{i}"), json!({"app": app, "idx": i.to_string()})),
        )
        .await
        .expect("pod");
    }
    let names = |l: kube::core::ObjectList<Pod>| {
        l.items
            .into_iter()
            .filter_map(|p| p.metadata.name)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(
            pods.list(&ListParams::default().labels("app in (a,c)"))
                .await
                .expect("list")
        ),
        ["p0", "p2", "p3"]
    );
    assert_eq!(
        names(
            pods.list(&ListParams::default().labels("app!=a,idx notin (4)"))
                .await
                .expect("list")
        ),
        ["p1", "p2"]
    );
    assert_eq!(
        names(
            pods.list(&ListParams::default().fields("metadata.name=p4"))
                .await
                .expect("list")
        ),
        ["p4"]
    );
    let first = pods
        .list(&ListParams::default().limit(2))
        .await
        .expect("page 1");
    let token = first.metadata.continue_.clone().expect("continue token");
    assert_eq!(names(first), ["p0", "p1"]);
    let second = pods
        .list(&ListParams::default().limit(2).continue_token(&token))
        .await
        .expect("page 2");
    assert_eq!(names(second), ["p2", "p3"]);
    let bad = api_status(
        pods.list(&ListParams::default().fields("spec.bogus=1"))
            .await
            .expect_err("bad field"),
    );
    assert_eq!(bad.code, 400);
    // Pods get scheduled: a node's pods are found by field selector, as drain lists them.
    within(async {
        loop {
            let on_nodes = pods
                .list(&ListParams::default().fields("spec.nodeName=node-1"))
                .await
                .expect("list")
                .items
                .len()
                + pods
                    .list(&ListParams::default().fields("spec.nodeName=node-2"))
                    .await
                    .expect("list")
                    .items
                    .len();
            if on_nodes == 5 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await;
}

#[tokio::test]
async fn watch_streams_changes_and_expires_compacted_versions() {
    let (cluster, client) = start(1).await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let mut stream = watcher(
        cms.clone(),
        watcher::Config::default().labels("watched=yes"),
    )
    .applied_objects()
    .boxed();
    let cm: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "w1", "labels": {"watched": "yes"}}}))
            .expect("cm");
    cms.create(&PostParams::default(), &cm)
        .await
        .expect("created");
    let seen = within(stream.try_next())
        .await
        .expect("stream ok")
        .expect("an object");
    assert_eq!(seen.metadata.name.as_deref(), Some("w1"));

    // Relabelled so that it no longer matches: the raw watch says DELETED.
    let from = cms
        .list(&ListParams::default())
        .await
        .expect("list")
        .metadata
        .resource_version
        .expect("rv");
    cms.patch(
        "w1",
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(json!({"metadata": {"labels": {"watched": "no"}}})),
    )
    .await
    .expect("relabelled");
    let mut selected = cms
        .watch(
            &WatchParams::default().labels("watched=yes").timeout(5),
            &from,
        )
        .await
        .expect("watch")
        .boxed();
    match within(selected.try_next())
        .await
        .expect("ok")
        .expect("event")
    {
        WatchEvent::Deleted(o) => assert_eq!(o.metadata.name.as_deref(), Some("w1")),
        other => panic!("expected DELETED when the selector stops matching, got {other:?}"),
    }

    let list = cms.list(&ListParams::default()).await.expect("list");
    let rv = list.metadata.resource_version.expect("list rv");
    let plain: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "w2"}})).expect("cm");
    cms.create(&PostParams::default(), &plain)
        .await
        .expect("created");
    let mut events = cms
        .watch(&WatchParams::default().timeout(5), &rv)
        .await
        .expect("watch")
        .boxed();
    match within(events.try_next()).await.expect("ok").expect("event") {
        WatchEvent::Added(o) => assert_eq!(o.metadata.name.as_deref(), Some("w2")),
        other => panic!("expected ADDED, got {other:?}"),
    }

    cluster.compact();
    let mut expired = cms
        .watch(&WatchParams::default().timeout(5), &rv)
        .await
        .expect("watch")
        .boxed();
    match within(expired.try_next())
        .await
        .expect("ok")
        .expect("event")
    {
        WatchEvent::Error(e) => assert_eq!((e.code, e.reason.as_str()), (410, "Expired")),
        other => panic!("expected a 410 ERROR event, got {other:?}"),
    }

    let current = cms
        .list(&ListParams::default())
        .await
        .expect("list")
        .metadata
        .resource_version
        .expect("rv");
    let mut bookmarks = cms
        .watch(&WatchParams::default().timeout(5), &current)
        .await
        .expect("watch")
        .boxed();
    match within(bookmarks.try_next())
        .await
        .expect("ok")
        .expect("event")
    {
        WatchEvent::Bookmark(b) => assert!(!b.metadata.resource_version.is_empty()),
        other => panic!("expected a BOOKMARK, got {other:?}"),
    }
}

#[tokio::test]
async fn dynamic_objects_work_through_discovery() {
    let (_cluster, client) = start(1).await;
    let discovery = Discovery::new(client.clone())
        .run()
        .await
        .expect("discovery");
    let (ar, _caps) = discovery
        .resolve_gvk(&GroupVersionKind::gvk("", "v1", "ConfigMap"))
        .expect("ConfigMap");
    let api: Api<DynamicObject> = Api::namespaced_with(client, "default", &ar);
    let obj: DynamicObject = serde_json::from_value(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "dyn"}, "data": {"k": "v"}})).expect("obj");
    api.create(&PostParams::default(), &obj)
        .await
        .expect("created");
    let got = api.get("dyn").await.expect("get");
    assert_eq!(got.data["data"]["k"], "v");
}

#[tokio::test]
async fn watcher_recovers_from_dropped_and_expired_watches() {
    let (cluster, client) = start(1).await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let mut stream = watcher(cms.clone(), watcher::Config::default())
        .default_backoff()
        .applied_objects()
        .boxed();
    for (i, fault) in ["drop", "compact"].iter().enumerate() {
        let name = format!("after-{fault}");
        match *fault {
            "drop" => cluster.drop_watches(),
            _ => {
                cluster.compact();
                cluster.drop_watches();
            }
        }
        let cm: ConfigMap =
            serde_json::from_value(json!({"metadata": {"name": name}})).expect("cm");
        cms.create(&PostParams::default(), &cm)
            .await
            .expect("created");
        within(async {
            loop {
                let o = stream
                    .try_next()
                    .await
                    .expect("watcher recovers")
                    .expect("object");
                if o.metadata.name.as_deref() == Some(name.as_str()) {
                    break;
                }
            }
        })
        .await;
        assert!(i < 2);
    }
}

#[tokio::test]
async fn wrong_methods_and_media_types_get_real_statuses() {
    let (cluster, _client) = start(1).await;
    let url = cluster.url();
    let http = |method: &'static str, path: &'static str, ct: &'static str, body: &'static str| {
        let url = url.clone();
        async move {
            let out = tokio::process::Command::new("curl")
                .args([
                    "-s",
                    "-X",
                    method,
                    "-H",
                    &format!("Content-Type: {ct}"),
                    "--data",
                    body,
                    &format!("{url}{path}"),
                ])
                .output()
                .await
                .expect("curl");
            serde_json::from_slice::<serde_json::Value>(&out.stdout).expect("a Status body")
        }
    };
    let s = http(
        "POST",
        "/api/v1/namespaces/default/pods/p/log",
        "application/json",
        "{}",
    )
    .await;
    assert_eq!(
        (s["code"].clone(), s["reason"].clone()),
        (json!(405), json!("MethodNotAllowed"))
    );
    let s = http("PATCH", "/api/v1/namespaces", "application/json", "{}").await;
    assert_eq!(s["code"], 405);
    let s = http("PATCH", "/api/v1/namespaces/default", "text/plain", "{}").await;
    assert_eq!(
        (s["code"].clone(), s["reason"].clone()),
        (json!(415), json!("UnsupportedMediaType"))
    );
    let s = http(
        "POST",
        "/api/v1/namespaces/default/configmaps",
        "application/vnd.kubernetes.protobuf",
        "k8s",
    )
    .await;
    assert_eq!(s["code"], 415);
    let s = http(
        "GET",
        "/apis/nope.example.com/v1/things",
        "application/json",
        "",
    )
    .await;
    assert_eq!(
        (s["code"].clone(), s["reason"].clone()),
        (json!(404), json!("NotFound"))
    );
}

#[tokio::test]
async fn version_reports_the_served_kubernetes_release() {
    let (_cluster, client) = start(1).await;
    let info = client.apiserver_version().await.expect("version");
    assert_eq!(
        (
            info.major.as_str(),
            info.minor.as_str(),
            info.git_version.as_str(),
            info.platform.as_str()
        ),
        ("1", "33", "v1.33.0", "linux/amd64")
    );
}

#[tokio::test]
async fn crd_discovery_lists_the_declared_subresources() {
    let (_cluster, client) = start(1).await;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    // One CRD declares status and scale (RokCluster), one declares none.
    let rok: CustomResourceDefinition =
        serde_json::from_str(rok_plan_lab::kube::controllers::ROK_CRD).expect("crd");
    let plain: CustomResourceDefinition = serde_json::from_value(json!({
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "scope": "Cluster",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]},
    }))
    .expect("crd");
    for crd in [&rok, &plain] {
        crds.create(&PostParams::default(), crd)
            .await
            .expect("crd created");
        within(await_condition(
            crds.clone(),
            crd.metadata.name.as_deref().expect("name"),
            conditions::is_crd_established(),
        ))
        .await
        .expect("established");
    }
    let discovery = Discovery::new(client).run().await.expect("discovery");
    let subs = |gvk: GroupVersionKind| {
        let (_, caps) = discovery.resolve_gvk(&gvk).expect("served");
        let mut s: Vec<String> = caps
            .subresources
            .iter()
            .map(|(ar, _)| ar.plural.clone())
            .collect();
        s.sort();
        (caps.scope, s)
    };
    assert_eq!(
        subs(GroupVersionKind::gvk(
            "rok.arrikto.com",
            "v1alpha1",
            "RokCluster"
        )),
        (
            Scope::Namespaced,
            vec!["scale".to_string(), "status".to_string()]
        )
    );
    assert_eq!(
        subs(GroupVersionKind::gvk("example.com", "v1", "Widget")),
        (Scope::Cluster, vec![])
    );
}

#[tokio::test]
async fn field_selectors_pick_by_phase_and_namespace() {
    let (cluster, client) = start(1).await;
    cluster
        .create(
            "",
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "other"}}),
        )
        .expect("ns");
    let here: Api<Pod> = Api::namespaced(client.clone(), "default");
    let there: Api<Pod> = Api::namespaced(client.clone(), "other");
    here.create(&PostParams::default(), &pod("run-a", json!({})))
        .await
        .expect("pod");
    there
        .create(&PostParams::default(), &pod("run-b", json!({})))
        .await
        .expect("pod");
    for (api, name) in [(&here, "run-a"), (&there, "run-b")] {
        within(await_condition(
            api.clone(),
            name,
            conditions::is_pod_running(),
        ))
        .await
        .expect("running");
    }
    // With the controllers stopped, a new pod stays Pending.
    cluster.pause_controllers(true);
    here.create(&PostParams::default(), &pod("waiting", json!({})))
        .await
        .expect("pod");
    let all: Api<Pod> = Api::all(client.clone());
    let names = |l: kube::core::ObjectList<Pod>| {
        let mut n: Vec<String> = l
            .items
            .into_iter()
            .filter_map(|p| p.metadata.name)
            .collect();
        n.sort();
        n
    };
    let list = |api: Api<Pod>, sel: &'static str| async move {
        api.list(&ListParams::default().fields(sel))
            .await
            .expect("list")
    };
    assert_eq!(
        names(list(all.clone(), "status.phase=Running").await),
        ["run-a", "run-b"]
    );
    assert_eq!(
        names(list(all.clone(), "status.phase!=Running").await),
        ["waiting"]
    );
    assert_eq!(
        names(list(here.clone(), "status.phase=Running").await),
        ["run-a"]
    );
    assert_eq!(
        names(list(all.clone(), "metadata.namespace=other").await),
        ["run-b"]
    );
    assert_eq!(
        names(
            list(
                all.clone(),
                "metadata.namespace=default,status.phase=Pending"
            )
            .await
        ),
        ["waiting"]
    );
    // Labels a kind does not index are refused, as kube-apiserver refuses them.
    let deps: Api<k8s_openapi::api::apps::v1::Deployment> = Api::all(client.clone());
    let e = api_status(
        deps.list(&ListParams::default().fields("status.phase=Running"))
            .await
            .expect_err("not a Deployment field"),
    );
    assert_eq!(
        (e.code, e.message.as_str()),
        (400, "field label not supported: status.phase")
    );
    let e = api_status(
        all.list(&ListParams::default().fields("status.phase"))
            .await
            .expect_err("no operator"),
    );
    assert_eq!(e.code, 400);
    assert!(e.message.contains("status.phase"), "{}", e.message);
}

#[tokio::test]
async fn watch_with_a_timeout_ends_by_itself() {
    let (_cluster, client) = start(1).await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "seen"}})).expect("cm");
    cms.create(&PostParams::default(), &cm)
        .await
        .expect("created");
    let started = std::time::Instant::now();
    let events: Vec<WatchEvent<ConfigMap>> = within(async {
        cms.watch(&WatchParams::default().timeout(1), "0")
            .await
            .expect("watch")
            .try_collect()
            .await
            .expect("events")
    })
    .await;
    let elapsed = started.elapsed();
    assert!(
        matches!(events.first(), Some(WatchEvent::Added(c)) if c.metadata.name.as_deref() == Some("seen")),
        "{events:?}"
    );
    assert!(
        elapsed >= std::time::Duration::from_millis(900)
            && elapsed < std::time::Duration::from_secs(5),
        "the watch ran {elapsed:?}"
    );
}
