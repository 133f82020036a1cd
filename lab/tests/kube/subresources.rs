//! Subresources: scale, eviction (with PDBs, retry off), logs, cordon.

use futures::{AsyncBufReadExt, TryStreamExt};
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, EvictParams, ListParams, LogParams, Patch, PatchParams, PostParams};
use kube::runtime::{conditions, wait::await_condition};
use rok_plan_lab::kube::PodBehaviour;
use serde_json::json;

use super::{api_status, start, within};

fn workload(kind: &str, name: &str, replicas: i32) -> serde_json::Value {
    json!({
        "apiVersion": "apps/v1", "kind": kind, "metadata": {"name": name},
        "spec": {"replicas": replicas, "serviceName": name, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "main", "image": "busybox"}]}}},
    })
}

async fn ready_pods(pods: &Api<Pod>, sel: &str, n: usize) -> Vec<Pod> {
    within(async {
        loop {
            let list = pods
                .list(&ListParams::default().labels(sel))
                .await
                .expect("list")
                .items;
            let ready: Vec<Pod> = list
                .into_iter()
                .filter(|p| p.metadata.deletion_timestamp.is_none())
                .filter(|p| {
                    p.status
                        .as_ref()
                        .and_then(|s| s.conditions.as_ref())
                        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
                })
                .collect();
            if ready.len() == n {
                return ready;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await
}

#[tokio::test]
async fn scale_subresource_resizes_deployments_and_statefulsets() {
    let (_cluster, client) = start(2).await;
    let deps: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let d: Deployment = serde_json::from_value(workload("Deployment", "web", 1)).expect("d");
    deps.create(&PostParams::default(), &d)
        .await
        .expect("created");
    let scale = deps.get_scale("web").await.expect("scale");
    assert_eq!(
        scale
            .status
            .as_ref()
            .and_then(|s| s.selector.clone())
            .as_deref(),
        Some("app=web")
    );
    deps.patch_scale(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 3}})),
    )
    .await
    .expect("scaled");
    within(await_condition(
        deps.clone(),
        "web",
        conditions::is_deployment_completed(),
    ))
    .await
    .expect("complete");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    ready_pods(&pods, "app=web", 3).await;

    let sts: Api<StatefulSet> = Api::namespaced(client.clone(), "default");
    let s: StatefulSet = serde_json::from_value(workload("StatefulSet", "db", 3)).expect("sts");
    sts.create(&PostParams::default(), &s)
        .await
        .expect("created");
    let mut names: Vec<String> = ready_pods(&pods, "app=db", 3)
        .await
        .into_iter()
        .filter_map(|p| p.metadata.name)
        .collect();
    names.sort();
    assert_eq!(names, ["db-0", "db-1", "db-2"]);
    sts.patch_scale(
        "db",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 1}})),
    )
    .await
    .expect("scaled down");
    within(async {
        loop {
            let left: Vec<String> = pods
                .list(&ListParams::default().labels("app=db"))
                .await
                .expect("list")
                .items
                .into_iter()
                .filter_map(|p| p.metadata.name)
                .collect();
            if left == ["db-0"] {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await;
    let status = sts
        .get_status("db")
        .await
        .expect("status")
        .status
        .expect("status");
    assert_eq!((status.replicas, status.ready_replicas), (1, Some(1)));
}

#[tokio::test]
async fn eviction_respects_pod_disruption_budgets() {
    let (cluster, client) = start(2).await;
    let deps: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let pdbs: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), "default");
    let d: Deployment = serde_json::from_value(workload("Deployment", "web", 2)).expect("d");
    deps.create(&PostParams::default(), &d)
        .await
        .expect("created");
    let ready = ready_pods(&pods, "app=web", 2).await;
    let victim = ready[0].metadata.name.clone().expect("name");

    let pdb: PodDisruptionBudget = serde_json::from_value(json!({"metadata": {"name": "web-pdb"}, "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "web"}}}})).expect("pdb");
    pdbs.create(&PostParams::default(), &pdb)
        .await
        .expect("pdb");
    within(async {
        while pdbs
            .get("web-pdb")
            .await
            .expect("pdb")
            .status
            .is_none_or(|s| s.expected_pods != Some(2))
        {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await;
    let refused = api_status(
        pods.evict(&victim, &EvictParams::default())
            .await
            .expect_err("budget"),
    );
    assert_eq!(
        (refused.code, refused.reason.as_str()),
        (429, "TooManyRequests")
    );
    assert_eq!(
        refused.message,
        "Cannot evict pod as it would violate the pod's disruption budget."
    );
    let cause = &refused.details.expect("details").causes[0];
    assert_eq!(
        (cause.reason.as_str(), cause.message.as_str()),
        (
            "DisruptionBudget",
            "The disruption budget web-pdb needs 2 healthy pods and has 2 currently"
        )
    );

    let second: PodDisruptionBudget = serde_json::from_value(json!({"metadata": {"name": "web-pdb-2"}, "spec": {"maxUnavailable": "50%", "selector": {"matchLabels": {"app": "web"}}}})).expect("pdb");
    pdbs.create(&PostParams::default(), &second)
        .await
        .expect("pdb");
    let several = api_status(
        pods.evict(&victim, &EvictParams::default())
            .await
            .expect_err("two budgets"),
    );
    assert_eq!(several.code, 500);
    pdbs.delete("web-pdb-2", &Default::default())
        .await
        .expect("deleted");

    pdbs.patch(
        "web-pdb",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"minAvailable": 1}})),
    )
    .await
    .expect("relaxed");
    within(async {
        while pdbs
            .get("web-pdb")
            .await
            .expect("pdb")
            .status
            .is_none_or(|s| s.disruptions_allowed != Some(1) || s.observed_generation != Some(2))
        {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await;
    // A dry run (kube sends dryRun=All in the query) is answered but evicts nothing.
    let rehearsed = pods
        .evict(
            &victim,
            &EvictParams {
                post_options: PostParams {
                    dry_run: true,
                    ..PostParams::default()
                },
                ..EvictParams::default()
            },
        )
        .await
        .expect("dry run");
    assert_eq!(
        rehearsed.status,
        Some(kube::core::response::StatusSummary::Success)
    );
    let still = pods.get(&victim).await.expect("still there");
    assert!(still.metadata.deletion_timestamp.is_none());

    let ok = pods
        .evict(&victim, &EvictParams::default())
        .await
        .expect("evicted");
    assert_eq!(
        ok.status,
        Some(kube::core::response::StatusSummary::Success)
    );
    let uid = ready[0].metadata.uid.clone().expect("uid");
    within(await_condition(
        pods.clone(),
        &victim,
        conditions::is_deleted(&uid),
    ))
    .await
    .expect("gone");

    // A Running pod that never gets Ready is evictable while the budget is healthy.
    cluster.set_behaviour("sick", PodBehaviour::NeverReady);
    let sick: Pod = serde_json::from_value(json!({"metadata": {"name": "sick", "labels": {"app": "web"}}, "spec": {"containers": [{"name": "main", "image": "busybox"}]}})).expect("pod");
    pods.create(&PostParams::default(), &sick)
        .await
        .expect("created");
    within(await_condition(
        pods.clone(),
        "sick",
        conditions::is_pod_running(),
    ))
    .await
    .expect("running");
    ready_pods(&pods, "app=web", 2).await;
    pods.evict("sick", &EvictParams::default())
        .await
        .expect("unready pod evicted");
}

#[tokio::test]
async fn logs_stream_with_timestamps_and_filters() {
    let (cluster, client) = start(1).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let p: Pod = serde_json::from_value(json!({"metadata": {"name": "talker"}, "spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "y"}]}})).expect("pod");
    pods.create(&PostParams::default(), &p)
        .await
        .expect("created");
    within(await_condition(
        pods.clone(),
        "talker",
        conditions::is_pod_running(),
    ))
    .await
    .expect("running");
    for i in 0..5 {
        cluster.append_log("default", "talker", "a", &format!("line {i}"));
    }
    let e = api_status(
        pods.logs("talker", &LogParams::default())
            .await
            .expect_err("two containers"),
    );
    assert_eq!(
        (e.code, e.message.as_str()),
        (
            400,
            "a container name must be specified for pod talker, choose one of: [a b]"
        )
    );
    let tail = pods
        .logs(
            "talker",
            &LogParams {
                container: Some("a".into()),
                tail_lines: Some(2),
                ..LogParams::default()
            },
        )
        .await
        .expect("logs");
    assert_eq!(tail, "line 3\nline 4\n");
    let limited = pods
        .logs(
            "talker",
            &LogParams {
                container: Some("a".into()),
                limit_bytes: Some(8),
                ..LogParams::default()
            },
        )
        .await
        .expect("logs");
    assert_eq!(limited, "line 0\nl");

    let mut lines = pods
        .log_stream(
            "talker",
            &LogParams {
                container: Some("a".into()),
                follow: true,
                timestamps: true,
                since_seconds: Some(3600),
                ..LogParams::default()
            },
        )
        .await
        .expect("stream")
        .lines();
    let first = within(lines.try_next())
        .await
        .expect("read")
        .expect("a line");
    let (ts, text) = first.split_once(' ').expect("timestamp then text");
    assert!(
        ts.parse::<jiff::Timestamp>().is_ok() && ts.len() == "2026-11-22T05:00:00.000000000Z".len(),
        "{ts}"
    );
    assert_eq!(text, "line 0");
    for _ in 1..5 {
        within(lines.try_next()).await.expect("read");
    }
    cluster.append_log("default", "talker", "a", "later");
    let later = within(lines.try_next()).await.expect("read").expect("line");
    assert!(later.ends_with(" later"), "{later}");
}

#[tokio::test]
async fn cordon_keeps_new_pods_off_the_node() {
    let (_cluster, client) = start(2).await;
    let nodes: Api<Node> = Api::all(client.clone());
    nodes.cordon("node-1").await.expect("cordon");
    within(async {
        loop {
            let n = nodes.get("node-1").await.expect("node");
            let tainted = n
                .spec
                .as_ref()
                .and_then(|s| s.taints.as_ref())
                .is_some_and(|t| {
                    t.iter().any(|t| {
                        t.key == "node.kubernetes.io/unschedulable" && t.effect == "NoSchedule"
                    })
                });
            if tainted && n.spec.as_ref().and_then(|s| s.unschedulable) == Some(true) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await;
    let cordoned = nodes
        .list(&ListParams::default().fields("spec.unschedulable=true"))
        .await
        .expect("list");
    assert_eq!(cordoned.items.len(), 1);
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let pinned: Pod = serde_json::from_value(json!({"metadata": {"name": "pinned"}, "spec": {"nodeSelector": {"kubernetes.io/hostname": "node-1"}, "containers": [{"name": "m", "image": "x"}]}})).expect("pod");
    pods.create(&PostParams::default(), &pinned)
        .await
        .expect("created");
    within(async {
        loop {
            let p = pods.get("pinned").await.expect("pod");
            let unschedulable = p
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|c| {
                    c.iter()
                        .any(|c| c.type_ == "PodScheduled" && c.status == "False")
                });
            if unschedulable {
                assert_eq!(
                    p.status.as_ref().and_then(|s| s.phase.as_deref()),
                    Some("Pending")
                );
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await;
    nodes.uncordon("node-1").await.expect("uncordon");
    within(await_condition(
        pods,
        "pinned",
        conditions::is_pod_running(),
    ))
    .await
    .expect("runs after uncordon");
}

#[tokio::test]
async fn crd_scale_subresource_follows_its_paths() {
    use kube::core::{ApiResource, DynamicObject, GroupVersionKind};
    let (cluster, client) = start(1).await;
    cluster.install_rok("v1", 1).expect("rok");
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("rok.arrikto.com", "v1alpha1", "RokCluster"),
        "rokclusters",
    );
    let api: Api<DynamicObject> = Api::namespaced_with(client, "rok", &ar);
    api.patch_scale(
        "rok",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 2}})),
    )
    .await
    .expect("scaled");
    assert_eq!(api.get("rok").await.expect("rc").data["spec"]["members"], 2);
    within(async {
        while api
            .get_scale("rok")
            .await
            .expect("scale")
            .status
            .map(|s| s.replicas)
            != Some(2)
        {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await;
}

#[tokio::test]
async fn pod_disruption_budgets_take_percentages() {
    let (cluster, client) = start(2).await;
    let deps: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let pdbs: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), "default");
    let d: Deployment = serde_json::from_value(workload("Deployment", "web", 5)).expect("d");
    deps.create(&PostParams::default(), &d)
        .await
        .expect("created");
    let ready = ready_pods(&pods, "app=web", 5).await;
    // Percentages of the 5 expected pods round up, as the disruption controller does:
    // minAvailable 50% needs 3 (2.5 up), maxUnavailable 30% lets 2 go (1.5 up), so needs 3.
    for (name, spec) in [
        ("min-half", json!({"minAvailable": "50%"})),
        ("max-30", json!({"maxUnavailable": "30%"})),
    ] {
        let mut spec = spec;
        spec["selector"] = json!({"matchLabels": {"app": "web"}});
        let pdb: PodDisruptionBudget =
            serde_json::from_value(json!({"metadata": {"name": name}, "spec": spec})).expect("pdb");
        pdbs.create(&PostParams::default(), &pdb)
            .await
            .expect("pdb");
        let status = within(async {
            loop {
                let s = pdbs.get(name).await.expect("pdb").status;
                if let Some(s) = s.filter(|s| s.expected_pods == Some(5)) {
                    return s;
                }
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        })
        .await;
        assert_eq!(
            (
                status.desired_healthy,
                status.current_healthy,
                status.disruptions_allowed
            ),
            (Some(3), Some(5), Some(2)),
            "{name}"
        );
        pdbs.delete(name, &Default::default())
            .await
            .expect("deleted");
    }
    // With a 40% budget (2 of 5 may go), a third eviction in a row is refused.
    let pdb: PodDisruptionBudget = serde_json::from_value(json!({"metadata": {"name": "web-pdb"}, "spec": {"maxUnavailable": "40%", "selector": {"matchLabels": {"app": "web"}}}})).expect("pdb");
    pdbs.create(&PostParams::default(), &pdb)
        .await
        .expect("pdb");
    within(async {
        while pdbs
            .get("web-pdb")
            .await
            .expect("pdb")
            .status
            .is_none_or(|s| s.disruptions_allowed != Some(2))
        {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await;
    // The controllers stand still, so the evicted pods are not replaced: each eviction spends
    // the budget.
    cluster.pause_controllers(true);
    for p in &ready[..2] {
        pods.evict(
            p.metadata.name.as_deref().expect("name"),
            &EvictParams::default(),
        )
        .await
        .expect("within the budget");
    }
    let refused = api_status(
        pods.evict(
            ready[2].metadata.name.as_deref().expect("name"),
            &EvictParams::default(),
        )
        .await
        .expect_err("budget spent"),
    );
    assert_eq!(refused.code, 429);
}

/// A Running pod `talker` with one container `a`, for the log tests.
async fn running_talker(client: &kube::Client) -> Api<Pod> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let p: Pod = serde_json::from_value(json!({"metadata": {"name": "talker"}, "spec": {"containers": [{"name": "a", "image": "x"}]}})).expect("pod");
    pods.create(&PostParams::default(), &p)
        .await
        .expect("created");
    within(await_condition(
        pods.clone(),
        "talker",
        conditions::is_pod_running(),
    ))
    .await
    .expect("running");
    pods
}

#[tokio::test]
async fn logs_since_time_skips_older_lines() {
    let (cluster, client) = start(1).await;
    let pods = running_talker(&client).await;
    cluster.append_log("default", "talker", "a", "before");
    // The line's own timestamp, as `timestamps=true` shows it.
    let stamped = pods
        .logs(
            "talker",
            &LogParams {
                timestamps: true,
                ..LogParams::default()
            },
        )
        .await
        .expect("logs");
    let (first_ts, _) = stamped.split_once(' ').expect("timestamp");
    let first_ts: jiff::Timestamp = first_ts.parse().expect("RFC 3339");
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    cluster.append_log("default", "talker", "a", "after");
    let since = |t: jiff::Timestamp| {
        let pods = pods.clone();
        async move {
            pods.logs(
                "talker",
                &LogParams {
                    since_time: Some(t),
                    ..LogParams::default()
                },
            )
            .await
            .expect("logs")
        }
    };
    // kube sends sinceTime in whole seconds (RFC 3339): from the first line's second on, both
    // lines; from a second later, none of them.
    let second = first_ts.round(jiff::Unit::Second).expect("round");
    let from_second = if second > first_ts {
        second - jiff::SignedDuration::from_secs(1)
    } else {
        second
    };
    assert_eq!(since(from_second).await, "before\nafter\n");
    assert_eq!(
        since(from_second + jiff::SignedDuration::from_secs(2)).await,
        ""
    );
}

#[tokio::test]
async fn pod_disruption_budgets_take_an_integer_max_unavailable() {
    let (cluster, client) = start(2).await;
    // db-2 runs but never becomes Ready.
    cluster.set_behaviour("db-2", PodBehaviour::NeverReady);
    let stss: Api<StatefulSet> = Api::namespaced(client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let pdbs: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), "default");
    for name in ["web", "db"] {
        let mut s = workload("StatefulSet", name, 3);
        s["spec"]["podManagementPolicy"] = json!("Parallel");
        let s: StatefulSet = serde_json::from_value(s).expect("sts");
        stss.create(&PostParams::default(), &s)
            .await
            .expect("created");
        let pdb: PodDisruptionBudget = serde_json::from_value(json!({"metadata": {"name": name}, "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app": name}}}})).expect("pdb");
        pdbs.create(&PostParams::default(), &pdb)
            .await
            .expect("pdb");
    }
    ready_pods(&pods, "app=web", 3).await;
    ready_pods(&pods, "app=db", 2).await;
    let settled = |name: &'static str, healthy: i32| {
        let pdbs = pdbs.clone();
        async move {
            within(async {
                loop {
                    let s = pdbs.get(name).await.expect("pdb").status;
                    if let Some(s) = s.filter(|s| {
                        s.expected_pods == Some(3) && s.current_healthy == Some(healthy)
                    }) {
                        return s;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
            })
            .await
        }
    };
    // 3 expected pods, one may be unavailable: 2 must stay healthy.
    let web = settled("web", 3).await;
    assert_eq!(
        (web.desired_healthy, web.disruptions_allowed),
        (Some(2), Some(1))
    );
    let db = settled("db", 2).await;
    assert_eq!(
        (db.desired_healthy, db.disruptions_allowed),
        (Some(2), Some(0))
    );
    let allowed = |s: &k8s_openapi::api::policy::v1::PodDisruptionBudgetStatus| {
        s.conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == "DisruptionAllowed")
            .map(|c| c.status.clone())
    };
    assert_eq!(allowed(&web).as_deref(), Some("True"));
    assert_eq!(allowed(&db).as_deref(), Some("False"));
    let refused = api_status(
        pods.evict("db-0", &EvictParams::default())
            .await
            .expect_err("no disruption allowed"),
    );
    assert_eq!(refused.code, 429);
}

#[tokio::test]
async fn logs_since_seconds_drops_older_lines() {
    use rok_plan_lab::kube::world::LogLine;
    let (cluster, client) = start(1).await;
    let pods = running_talker(&client).await;
    // Lines written ten minutes and one minute ago, then one now.
    {
        let now = jiff::Timestamp::now();
        let mut w = cluster.world();
        let buf = w
            .logs
            .entry(("default".into(), "talker".into(), "a".into()))
            .or_default();
        for (mins, text) in [(10, "old"), (1, "recent")] {
            buf.push(LogLine {
                ts: now - jiff::SignedDuration::from_mins(mins),
                text: text.into(),
            });
        }
    }
    cluster.append_log("default", "talker", "a", "now");
    let since = |secs: i64| {
        let pods = pods.clone();
        async move {
            pods.logs(
                "talker",
                &LogParams {
                    since_seconds: Some(secs),
                    ..LogParams::default()
                },
            )
            .await
            .expect("logs")
        }
    };
    assert_eq!(since(3600).await, "old\nrecent\nnow\n");
    assert_eq!(since(300).await, "recent\nnow\n");
    assert_eq!(since(30).await, "now\n");
    assert_eq!(
        pods.logs("talker", &LogParams::default())
            .await
            .expect("logs"),
        "old\nrecent\nnow\n"
    );
}
