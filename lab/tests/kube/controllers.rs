//! Controllers: DaemonSets on cordoned nodes, Jobs, the Rok operator, faults.

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, DynamicObject, GroupVersionKind};
use kube::runtime::{conditions, wait::await_condition};
use rok_plan_lab::kube::PodBehaviour;
use serde_json::json;

use super::{api_status, start, within};

#[tokio::test]
async fn daemonset_runs_on_every_node_including_cordoned_ones() {
    let (_cluster, client) = start(3).await;
    let nodes: Api<Node> = Api::all(client.clone());
    nodes.cordon("node-2").await.expect("cordon");
    let dss: Api<DaemonSet> = Api::namespaced(client.clone(), "kube-system");
    let ds: DaemonSet = serde_json::from_value(json!({"metadata": {"name": "agent"}, "spec": {"selector": {"matchLabels": {"app": "agent"}}, "template": {"metadata": {"labels": {"app": "agent"}}, "spec": {"containers": [{"name": "a", "image": "x"}]}}}})).expect("ds");
    dss.create(&PostParams::default(), &ds)
        .await
        .expect("created");
    within(async {
        while dss
            .get_status("agent")
            .await
            .expect("ds")
            .status
            .is_none_or(|s| s.number_ready != 3 || s.desired_number_scheduled != 3)
        {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "kube-system");
    let on_cordoned = pods
        .list(
            &ListParams::default()
                .fields("spec.nodeName=node-2")
                .labels("app=agent"),
        )
        .await
        .expect("list");
    assert_eq!(on_cordoned.items.len(), 1);
}

#[tokio::test]
async fn jobs_complete_or_fail() {
    let (cluster, client) = start(1).await;
    let jobs: Api<Job> = Api::namespaced(client.clone(), "default");
    let job = |name: &str| -> Job {
        serde_json::from_value(json!({"metadata": {"name": name}, "spec": {"backoffLimit": 1, "template": {"spec": {"containers": [{"name": "w", "image": "x"}]}}}})).expect("job")
    };
    jobs.create(&PostParams::default(), &job("ok"))
        .await
        .expect("created");
    within(await_condition(
        jobs.clone(),
        "ok",
        conditions::is_job_completed(),
    ))
    .await
    .expect("complete");
    assert_eq!(
        jobs.get("ok")
            .await
            .expect("job")
            .status
            .and_then(|s| s.succeeded),
        Some(1)
    );

    cluster.set_behaviour("bad-", PodBehaviour::Fail);
    jobs.create(&PostParams::default(), &job("bad"))
        .await
        .expect("created");
    within(async {
        loop {
            let s = jobs
                .get("bad")
                .await
                .expect("job")
                .status
                .unwrap_or_default();
            if s.conditions
                .iter()
                .flatten()
                .any(|c| c.type_ == "Failed" && c.status == "True")
            {
                assert_eq!(s.failed, Some(2));
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await;
}

#[tokio::test]
async fn rok_operator_upgrades_through_a_job() {
    let (cluster, client) = start(2).await;
    let crd: serde_json::Value =
        serde_json::from_str(rok_plan_lab::kube::controllers::ROK_CRD).expect("crd");
    cluster.create("", crd).expect("crd installed");
    cluster
        .create(
            "",
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "rok"}}),
        )
        .expect("ns");
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("rok.arrikto.com", "v1alpha1", "RokCluster"),
        "rokclusters",
    );
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), "rok", &ar);
    let rc: DynamicObject = serde_json::from_value(json!({"apiVersion": "rok.arrikto.com/v1alpha1", "kind": "RokCluster", "metadata": {"name": "rok"}, "spec": {"version": "v1", "members": 2}})).expect("rc");
    api.patch("rok", &PatchParams::apply("rok-plan"), &Patch::Apply(&rc))
        .await
        .expect("applied");
    let status = |o: &DynamicObject, k: &str| o.data["status"][k].clone();
    within(async {
        loop {
            let o = api.get("rok").await.expect("rc");
            if status(&o, "phase") == "Running" && status(&o, "readyMembers") == 2 {
                assert_eq!(
                    (status(&o, "version"), status(&o, "health")),
                    (json!("v1"), json!("OK"))
                );
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await;
    let v2: DynamicObject = serde_json::from_value(json!({"apiVersion": "rok.arrikto.com/v1alpha1", "kind": "RokCluster", "metadata": {"name": "rok"}, "spec": {"version": "v2", "members": 2}})).expect("rc");
    api.patch("rok", &PatchParams::apply("rok-plan"), &Patch::Apply(&v2))
        .await
        .expect("applied");
    let jobs: Api<Job> = Api::namespaced(client.clone(), "rok");
    within(async {
        let mut saw_job = false;
        loop {
            saw_job |= !jobs
                .list(&ListParams::default().labels("app=rok-upgrade"))
                .await
                .expect("jobs")
                .items
                .is_empty();
            let o = api.get("rok").await.expect("rc");
            if status(&o, "version") == "v2"
                && status(&o, "phase") == "Running"
                && status(&o, "readyMembers") == 2
            {
                assert!(saw_job, "an upgrade Job ran");
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    })
    .await;
}

#[tokio::test]
async fn injected_faults_reach_the_client() {
    let (cluster, client) = start(1).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    cluster.fail_next(Some("GET"), "/pods", 503, 1);
    let e = api_status(
        pods.list(&ListParams::default())
            .await
            .expect_err("injected"),
    );
    assert_eq!((e.code, e.reason.as_str()), (503, "ServiceUnavailable"));
    pods.list(&ListParams::default())
        .await
        .expect("only the next request fails");
}

#[tokio::test]
async fn rok_upgrade_follows_the_guide() {
    use k8s_openapi::api::apps::v1::StatefulSet;
    let (cluster, client) = start(2).await;
    cluster.install_rok("v1", 1).expect("rok installed");
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("rok.arrikto.com", "v1alpha1", "RokCluster"),
        "rokclusters",
    );
    let rcs: Api<DynamicObject> = Api::namespaced_with(client.clone(), "rok", &ar);
    let phase_version = |o: &DynamicObject| {
        (
            o.data["status"]["phase"].clone(),
            o.data["status"]["version"].clone(),
        )
    };
    within(async {
        while phase_version(&rcs.get("rok").await.expect("rc")) != (json!("Running"), json!("v1")) {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await;
    // rok-csi-node runs on every node; its pods log while operations are pending.
    let pods: Api<Pod> = Api::namespaced(client.clone(), "rok");
    let csi_nodes = pods
        .list(&ListParams::default().labels("app=rok-csi-node"))
        .await
        .expect("list")
        .items;
    assert_eq!(csi_nodes.len(), 2);
    cluster.rok_operations_for(std::time::Duration::from_millis(300));
    let first = csi_nodes[0].metadata.name.clone().expect("name");
    within(async {
        loop {
            let logs = pods
                .logs(
                    &first,
                    &kube::api::LogParams {
                        container: Some("csi-node".into()),
                        ..Default::default()
                    },
                )
                .await
                .expect("logs");
            if logs.contains("operation pending") {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await;

    // Scale the operator down: a new version waits for it.
    let operators: Api<StatefulSet> = Api::namespaced(client.clone(), "rok-system");
    operators
        .patch_scale(
            "rok-operator",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 0}})),
        )
        .await
        .expect("scaled");
    within(async {
        while operators
            .get("rok-operator")
            .await
            .expect("sts")
            .status
            .is_none_or(|s| s.replicas != 0)
        {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await;
    let v2: DynamicObject = serde_json::from_value(json!({"apiVersion": "rok.arrikto.com/v1alpha1", "kind": "RokCluster", "metadata": {"name": "rok"}, "spec": {"version": "v2"}})).expect("rc");
    rcs.patch(
        "rok",
        &PatchParams::apply("rok-plan").force(),
        &Patch::Apply(&v2),
    )
    .await
    .expect("applied");
    tokio::task::yield_now().await;
    assert_eq!(
        phase_version(&rcs.get("rok").await.expect("rc")).1,
        json!("v1"),
        "no operator, no upgrade"
    );

    operators
        .patch_scale(
            "rok-operator",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 1}})),
        )
        .await
        .expect("scaled up");
    let jobs: Api<Job> = Api::namespaced(client.clone(), "rok");
    within(async {
        while phase_version(&rcs.get("rok").await.expect("rc")) != (json!("Running"), json!("v2")) {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await;
    let upgrade_jobs = jobs
        .list(&ListParams::default().labels("app=rok-upgrade"))
        .await
        .expect("jobs")
        .items;
    assert_eq!(upgrade_jobs.len(), 1);
    assert!(upgrade_jobs[0].status.as_ref().and_then(|s| s.succeeded) == Some(1));
}

async fn poll_until<F: std::future::Future<Output = bool>>(mut f: impl FnMut() -> F) {
    within(async {
        while !f().await {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await;
}

#[tokio::test]
async fn statefulset_rolls_from_the_highest_ordinal() {
    use k8s_openapi::api::apps::v1::StatefulSet;
    let (cluster, client) = start(2).await;
    let sts: Api<StatefulSet> = Api::namespaced(client.clone(), "default");
    let s: StatefulSet = serde_json::from_value(json!({"metadata": {"name": "db"}, "spec": {"replicas": 3, "serviceName": "db", "selector": {"matchLabels": {"app": "db"}}, "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [{"name": "m", "image": "db:1"}]}}}})).expect("sts");
    sts.create(&PostParams::default(), &s)
        .await
        .expect("created");
    let done = |image: &'static str| {
        let sts = sts.clone();
        let cluster = &cluster;
        move || {
            let sts = sts.clone();
            async move {
                let s = sts.get("db").await.expect("sts");
                let st = s.status.unwrap_or_default();
                let images: Vec<String> = cluster
                    .list("", "pods", Some("default"))
                    .iter()
                    .filter_map(|p| {
                        p["spec"]["containers"][0]["image"]
                            .as_str()
                            .map(str::to_string)
                    })
                    .collect();
                st.ready_replicas == Some(3)
                    && st.updated_replicas == Some(3)
                    && st.current_revision == st.update_revision
                    && images.len() == 3
                    && images.iter().all(|i| i == image)
            }
        }
    };
    poll_until(done("db:1")).await;
    let uid_of = |n: &str| {
        cluster
            .get("", "pods", "default", n)
            .and_then(|p| p["metadata"]["uid"].as_str().map(str::to_string))
    };
    let before: Vec<_> = ["db-0", "db-1", "db-2"].iter().map(|n| uid_of(n)).collect();
    let rv = sts
        .list(&ListParams::default())
        .await
        .expect("list")
        .metadata
        .resource_version
        .expect("rv");
    sts.patch("db", &PatchParams::default(), &Patch::Strategic(json!({"spec": {"template": {"spec": {"containers": [{"name": "m", "image": "db:2"}]}}}}))).await.expect("patched");
    // The highest ordinal goes first, one pod at a time.
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let mut deleted = Vec::new();
    within(async {
        let mut events = pods
            .watch(
                &kube::api::WatchParams::default()
                    .labels("app=db")
                    .timeout(20),
                &rv,
            )
            .await
            .expect("watch")
            .boxed();
        while deleted.len() < 3 {
            if let Some(kube::api::WatchEvent::Deleted(p)) = events.try_next().await.expect("event")
            {
                deleted.push(p.metadata.name.unwrap_or_default());
            }
        }
    })
    .await;
    assert_eq!(deleted, ["db-2", "db-1", "db-0"]);
    poll_until(done("db:2")).await;
    let after: Vec<_> = ["db-0", "db-1", "db-2"].iter().map(|n| uid_of(n)).collect();
    assert!(
        before.iter().zip(&after).all(|(a, b)| a != b),
        "every pod replaced"
    );
}

#[tokio::test]
async fn replication_controller_scale_bounce() {
    use k8s_openapi::api::core::v1::ReplicationController;
    let (_cluster, client) = start(2).await;
    let rcs: Api<ReplicationController> = Api::namespaced(client.clone(), "default");
    let rc: ReplicationController = serde_json::from_value(json!({"metadata": {"name": "legacy"}, "spec": {"replicas": 2, "template": {"metadata": {"labels": {"app": "legacy"}}, "spec": {"containers": [{"name": "m", "image": "x"}]}}}})).expect("rc");
    rcs.create(&PostParams::default(), &rc)
        .await
        .expect("created");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let count = |n: usize| {
        let (rcs, pods) = (rcs.clone(), pods.clone());
        move || {
            let (rcs, pods) = (rcs.clone(), pods.clone());
            async move {
                let ready = rcs
                    .get("legacy")
                    .await
                    .expect("rc")
                    .status
                    .and_then(|s| s.ready_replicas)
                    .unwrap_or(0) as usize;
                let listed = pods
                    .list(&ListParams::default().labels("app=legacy"))
                    .await
                    .expect("pods")
                    .items;
                ready == n
                    && listed.len() == n
                    && listed
                        .iter()
                        .all(|p| p.metadata.generate_name.as_deref() == Some("legacy-"))
            }
        }
    };
    poll_until(count(2)).await;
    assert_eq!(
        rcs.get_scale("legacy")
            .await
            .expect("scale")
            .status
            .and_then(|s| s.selector)
            .as_deref(),
        Some("app=legacy")
    );
    rcs.patch_scale(
        "legacy",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 0}})),
    )
    .await
    .expect("to zero");
    poll_until(count(0)).await;
    rcs.patch_scale(
        "legacy",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 2}})),
    )
    .await
    .expect("back up");
    poll_until(count(2)).await;
}

#[tokio::test]
async fn pods_can_be_slow_never_ready_and_terminate_gracefully() {
    use rok_plan_lab::kube::Delays;
    let (cluster, client) = start(1).await;
    cluster.set_delays(Delays {
        pod_start: std::time::Duration::from_millis(200),
        pod_stop: std::time::Duration::from_millis(200),
        ..Delays::default()
    });
    cluster.set_behaviour("stuck", PodBehaviour::NeverReady);
    cluster.set_behaviour(
        "slow",
        PodBehaviour::SlowReady(std::time::Duration::from_millis(200)),
    );
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    for name in ["stuck", "slow", "fine"] {
        let p: Pod = serde_json::from_value(json!({"metadata": {"name": name}, "spec": {"containers": [{"name": "m", "image": "x"}]}})).expect("pod");
        let created = pods
            .create(&PostParams::default(), &p)
            .await
            .expect("created");
        assert_eq!(
            created.status.and_then(|s| s.phase).as_deref(),
            Some("Pending")
        );
    }
    let ready = |p: &Pod| {
        p.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
    };
    within(await_condition(pods.clone(), "fine", |p: Option<&Pod>| {
        p.is_some_and(ready)
    }))
    .await
    .expect("fine gets ready");
    within(await_condition(pods.clone(), "slow", |p: Option<&Pod>| {
        p.is_some_and(ready)
    }))
    .await
    .expect("slow gets ready");
    within(await_condition(
        pods.clone(),
        "stuck",
        conditions::is_pod_running(),
    ))
    .await
    .expect("stuck runs");
    assert!(
        !ready(&pods.get("stuck").await.expect("pod")),
        "never ready"
    );

    let uid = pods
        .get("fine")
        .await
        .expect("pod")
        .metadata
        .uid
        .expect("uid");
    let pending = pods
        .delete("fine", &Default::default())
        .await
        .expect("delete");
    let terminating = pending.left().expect("graceful deletion returns the pod");
    assert!(terminating.metadata.deletion_timestamp.is_some());
    assert_eq!(terminating.metadata.deletion_grace_period_seconds, Some(30));
    within(await_condition(
        pods.clone(),
        "fine",
        conditions::is_deleted(&uid),
    ))
    .await
    .expect("gone after its grace");
}

#[tokio::test]
async fn parallel_statefulset_starts_every_pod_at_once() {
    use k8s_openapi::api::apps::v1::StatefulSet;
    let (cluster, client) = start(2).await;
    // Pods that never become Ready: OrderedReady would stop at web-0; Parallel does not wait.
    cluster.set_behaviour("web-", PodBehaviour::NeverReady);
    let sts: Api<StatefulSet> = Api::namespaced(client.clone(), "default");
    let spec = |policy: &str| -> StatefulSet {
        serde_json::from_value(json!({"metadata": {"name": if policy == "Parallel" { "web" } else { "ordered" }}, "spec": {"replicas": 3, "podManagementPolicy": policy, "serviceName": "web", "selector": {"matchLabels": {"app": policy}}, "template": {"metadata": {"labels": {"app": policy}}, "spec": {"containers": [{"name": "m", "image": "x"}]}}}})).expect("sts")
    };
    sts.create(&PostParams::default(), &spec("Parallel"))
        .await
        .expect("created");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let names = |sel: &'static str| {
        let pods = pods.clone();
        async move {
            let mut n: Vec<String> = pods
                .list(&ListParams::default().labels(sel))
                .await
                .expect("list")
                .items
                .into_iter()
                .filter_map(|p| p.metadata.name)
                .collect();
            n.sort();
            n
        }
    };
    poll_until(|| async { names("app=Parallel").await == ["web-0", "web-1", "web-2"] }).await;

    // Scaling down removes every extra pod at once too.
    sts.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 1}})),
    )
    .await
    .expect("scaled");
    poll_until(|| async { names("app=Parallel").await == ["web-0"] }).await;

    // The same set OrderedReady: web-0 never gets Ready, so no other pod is created.
    cluster.set_behaviour("ordered-", PodBehaviour::NeverReady);
    sts.create(&PostParams::default(), &spec("OrderedReady"))
        .await
        .expect("created");
    poll_until(|| async { names("app=OrderedReady").await == ["ordered-0"] }).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(names("app=OrderedReady").await, ["ordered-0"]);
}

#[tokio::test]
async fn injected_latency_delays_only_matching_requests() {
    use kube::config::{KubeConfigOptions, Kubeconfig};
    let (cluster, _) = start(1).await;
    // A client that gives up after one second.
    let kc = Kubeconfig::read_from(cluster.kubeconfig()).expect("kubeconfig");
    let mut config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .expect("config");
    config.default_retry = false;
    config.read_timeout = Some(std::time::Duration::from_secs(1));
    let client = kube::Client::try_from(config).expect("client");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let nodes: Api<Node> = Api::all(client.clone());
    cluster.delay_next(
        Some("GET"),
        "/pods",
        std::time::Duration::from_secs(5),
        Some(1),
    );
    // Other requests are not held.
    nodes
        .list(&ListParams::default())
        .await
        .expect("nodes are not delayed");
    let e = pods
        .list(&ListParams::default())
        .await
        .expect_err("held past the client's timeout");
    assert!(
        !matches!(e, kube::Error::Api(_)),
        "a timeout, not an answer: {e:?}"
    );
    // The rule was for one request only.
    pods.list(&ListParams::default())
        .await
        .expect("the next request is answered");
}

fn is_active(p: &Pod) -> bool {
    p.metadata.deletion_timestamp.is_none()
        && p.status
            .as_ref()
            .and_then(|s| s.phase.as_deref())
            .is_none_or(|ph| ph != "Succeeded" && ph != "Failed")
}

#[tokio::test]
async fn job_runs_at_most_parallelism_pods_until_completions() {
    let (cluster, client) = start(2).await;
    cluster.set_delays(rok_plan_lab::kube::Delays {
        job_run: std::time::Duration::from_millis(300),
        ..Default::default()
    });
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    // Every pod event, in order: the number of running pods is known at each step.
    let mut events = pods
        .watch(
            &kube::api::WatchParams::default().labels("job-name=batch"),
            "0",
        )
        .await
        .expect("watch")
        .boxed();
    let jobs: Api<Job> = Api::namespaced(client.clone(), "default");
    let job: Job = serde_json::from_value(json!({"metadata": {"name": "batch"}, "spec": {"completions": 3, "parallelism": 2, "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "w", "image": "x"}]}}}})).expect("job");
    jobs.create(&PostParams::default(), &job)
        .await
        .expect("created");
    let mut seen = std::collections::BTreeMap::new();
    let mut most = 0;
    within(async {
        loop {
            match events.try_next().await.expect("event").expect("open") {
                kube::api::WatchEvent::Added(p) | kube::api::WatchEvent::Modified(p) => {
                    seen.insert(p.metadata.name.clone().expect("name"), p);
                }
                kube::api::WatchEvent::Deleted(p) => {
                    seen.remove(p.metadata.name.as_deref().expect("name"));
                }
                _ => {}
            }
            most = most.max(seen.values().filter(|p| is_active(p)).count());
            let succeeded = seen
                .values()
                .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Succeeded"))
                .count();
            if succeeded == 3 {
                break;
            }
        }
    })
    .await;
    assert_eq!(most, 2, "two pods ran at once, never more");
    within(await_condition(
        jobs.clone(),
        "batch",
        conditions::is_job_completed(),
    ))
    .await
    .expect("complete");
    let status = jobs
        .get("batch")
        .await
        .expect("job")
        .status
        .expect("status");
    assert_eq!(
        (status.succeeded, status.failed, status.active),
        (Some(3), Some(0), Some(0))
    );
    assert!(status.completion_time.is_some());
    let all = pods
        .list(&ListParams::default().labels("job-name=batch"))
        .await
        .expect("pods")
        .items;
    assert_eq!(all.len(), 3, "no pod beyond the completions");
}

#[tokio::test]
async fn rok_upgrade_takes_the_members_down_and_can_fail() {
    let (cluster, client) = start(2).await;
    cluster.install_rok("v1", 2).expect("rok installed");
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("rok.arrikto.com", "v1alpha1", "RokCluster"),
        "rokclusters",
    );
    let rcs: Api<DynamicObject> = Api::namespaced_with(client.clone(), "rok", &ar);
    let summary = |o: &DynamicObject| {
        let s = &o.data["status"];
        (
            s["phase"].as_str().unwrap_or_default().to_string(),
            s["health"].as_str().unwrap_or_default().to_string(),
            s["version"].as_str().unwrap_or_default().to_string(),
            s["totalMembers"].as_i64().unwrap_or(-1),
            s["readyMembers"].as_i64().unwrap_or(-1),
        )
    };
    let settled = |want: (&'static str, &'static str, &'static str, i64, i64)| {
        let rcs = rcs.clone();
        async move {
            within(async {
                let mut seen = Vec::new();
                loop {
                    let s = summary(&rcs.get("rok").await.expect("rc"));
                    if seen.last() != Some(&s) {
                        seen.push(s.clone());
                    }
                    if (s.0.as_str(), s.1.as_str(), s.2.as_str(), s.3, s.4) == want {
                        return seen;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
            })
            .await
        }
    };
    settled(("Running", "OK", "v1", 2, 2)).await;

    // The upgrade Job runs for a while: the members are down meanwhile.
    cluster.set_delays(rok_plan_lab::kube::Delays {
        job_run: std::time::Duration::from_millis(500),
        ..Default::default()
    });
    let apply = |version: &str| {
        let rcs = rcs.clone();
        let rc: DynamicObject = serde_json::from_value(json!({"apiVersion": "rok.arrikto.com/v1alpha1", "kind": "RokCluster", "metadata": {"name": "rok"}, "spec": {"version": version}})).expect("rc");
        async move {
            rcs.patch(
                "rok",
                &PatchParams::apply("rok-plan").force(),
                &Patch::Apply(&rc),
            )
            .await
            .expect("applied");
        }
    };
    apply("v2").await;
    let seen = settled(("Running", "OK", "v2", 2, 2)).await;
    assert!(
        seen.iter().any(|s| s
            == &(
                "Upgrading".to_string(),
                "WARNING".to_string(),
                "v1".to_string(),
                0,
                0
            )),
        "the members went away before the upgrade: {seen:?}"
    );
    assert!(
        seen.iter().all(|s| matches!(
            (s.0.as_str(), s.1.as_str()),
            ("Upgrading" | "Scaling", "WARNING") | ("Running", "OK")
        )),
        "{seen:?}"
    );

    // A failing upgrade Job leaves the cluster Failed, at the old version, with no members.
    cluster.set_delays(rok_plan_lab::kube::Delays::default());
    cluster.set_behaviour("rok-upgrade", PodBehaviour::Fail);
    apply("v3").await;
    settled(("Failed", "ERROR", "v2", 0, 0)).await;
    let jobs: Api<Job> = Api::namespaced(client.clone(), "rok");
    let failed = jobs
        .list(&ListParams::default().labels("app=rok-upgrade"))
        .await
        .expect("jobs")
        .items
        .into_iter()
        .filter(|j| {
            j.status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|c| c.iter().any(|c| c.type_ == "Failed" && c.status == "True"))
        })
        .count();
    assert_eq!(failed, 1);
}

#[tokio::test]
async fn rok_csi_pods_log_only_while_operations_are_pending() {
    let (cluster, client) = start(1).await;
    cluster.install_rok("v1", 1).expect("rok installed");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "rok");
    let running = |sel: &'static str| {
        let pods = pods.clone();
        async move {
            within(async {
                loop {
                    let l = pods
                        .list(
                            &ListParams::default()
                                .labels(sel)
                                .fields("status.phase=Running"),
                        )
                        .await
                        .expect("list")
                        .items;
                    if let Some(p) = l.into_iter().next() {
                        return p.metadata.name.expect("name");
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
            })
            .await
        }
    };
    let node = running("app=rok-csi-node").await;
    let controller = running("app=rok-csi-controller").await;
    let logs = |pod: String, container: &'static str| {
        let pods = pods.clone();
        async move {
            pods.logs(
                &pod,
                &kube::api::LogParams {
                    container: Some(container.into()),
                    ..Default::default()
                },
            )
            .await
            .expect("logs")
        }
    };
    assert_eq!(logs(node.clone(), "csi-node").await, "", "quiet when idle");
    cluster.rok_operations_for(std::time::Duration::from_millis(400));
    let mut last = String::new();
    within(async {
        loop {
            let n = logs(node.clone(), "csi-node").await;
            let c = logs(controller.clone(), "csi-controller").await;
            if n.lines().count() >= 2 && c.contains("operation pending") {
                last = n;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(
        last.lines()
            .all(|l| l.starts_with("INFO rok-csi: task ") && l.contains("operation pending")),
        "{last}"
    );
    // Once the operations are over, the logs stop growing.
    within(async {
        loop {
            let a = logs(node.clone(), "csi-node").await;
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            let b = logs(node.clone(), "csi-node").await;
            if a == b {
                break;
            }
        }
    })
    .await;
}

/// Follows the pods of `app` through a watch, event by event, and reports after each event
/// how many are live (not terminating) and how many of those are Ready, and how many live pods
/// of the old template were still there when a new-template pod appeared.
struct PodTracker {
    pods: std::collections::BTreeMap<String, Pod>,
}

impl PodTracker {
    fn apply(&mut self, e: kube::api::WatchEvent<Pod>) {
        match e {
            kube::api::WatchEvent::Added(p) | kube::api::WatchEvent::Modified(p) => {
                self.pods.insert(p.metadata.name.clone().expect("name"), p);
            }
            kube::api::WatchEvent::Deleted(p) => {
                self.pods.remove(p.metadata.name.as_deref().expect("name"));
            }
            _ => {}
        }
    }
    fn live(&self) -> impl Iterator<Item = &Pod> {
        self.pods
            .values()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
    }
    fn ready(p: &Pod) -> bool {
        p.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
    }
    fn image(p: &Pod) -> String {
        p.spec
            .as_ref()
            .and_then(|s| s.containers[0].image.clone())
            .unwrap_or_default()
    }
}

async fn roll(strategy: serde_json::Value) -> Vec<(usize, usize, usize, usize)> {
    use k8s_openapi::api::apps::v1::Deployment;
    let (cluster, client) = start(2).await;
    cluster.set_delays(rok_plan_lab::kube::Delays {
        pod_start: std::time::Duration::from_millis(100),
        pod_stop: std::time::Duration::from_millis(100),
        ..Default::default()
    });
    let deps: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let d: Deployment = serde_json::from_value(json!({"metadata": {"name": "web"}, "spec": {"replicas": 4, "strategy": strategy, "selector": {"matchLabels": {"app": "web"}}, "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "v1"}]}}}})).expect("deployment");
    deps.create(&PostParams::default(), &d)
        .await
        .expect("created");
    within(await_condition(
        deps.clone(),
        "web",
        conditions::is_deployment_completed(),
    ))
    .await
    .expect("rolled out");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let list = pods
        .list(&ListParams::default().labels("app=web"))
        .await
        .expect("list");
    let mut tracker = PodTracker {
        pods: list
            .items
            .into_iter()
            .map(|p| (p.metadata.name.clone().expect("name"), p))
            .collect(),
    };
    let rv = list.metadata.resource_version.expect("rv");
    let mut events = pods
        .watch(&kube::api::WatchParams::default().labels("app=web"), &rv)
        .await
        .expect("watch")
        .boxed();
    deps.patch(
        "web",
        &PatchParams::default(),
        &Patch::Strategic(
            json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "v2"}]}}}}),
        ),
    )
    .await
    .expect("new template");
    // (live, ready, old pods present, new pods present) after each event.
    let mut steps = Vec::new();
    within(async {
        loop {
            tracker.apply(events.try_next().await.expect("event").expect("open"));
            let live = tracker.live().count();
            let ready = tracker.live().filter(|p| PodTracker::ready(p)).count();
            let old = tracker
                .pods
                .values()
                .filter(|p| PodTracker::image(p) == "v1")
                .count();
            let new = tracker
                .pods
                .values()
                .filter(|p| PodTracker::image(p) == "v2")
                .count();
            steps.push((live, ready, old, new));
            let new_ready = tracker
                .live()
                .filter(|p| PodTracker::image(p) == "v2" && PodTracker::ready(p))
                .count();
            if old == 0 && new_ready == 4 && tracker.pods.len() == 4 {
                break;
            }
        }
    })
    .await;
    steps
}

#[tokio::test]
async fn deployment_rolls_within_max_surge_and_max_unavailable() {
    let steps = roll(
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 1}}),
    )
    .await;
    // Never more than replicas + maxSurge live pods, never fewer than replicas - maxUnavailable
    // Ready ones.
    assert!(steps.iter().all(|s| s.0 <= 5), "{steps:?}");
    assert!(steps.iter().all(|s| s.1 >= 3), "{steps:?}");
    // Old and new pods ran side by side.
    assert!(steps.iter().any(|s| s.2 > 0 && s.3 > 0), "{steps:?}");
}

#[tokio::test]
async fn deployment_with_zero_unavailable_keeps_every_replica_ready() {
    let steps = roll(
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0}}),
    )
    .await;
    assert!(steps.iter().all(|s| s.0 <= 5), "{steps:?}");
    assert!(steps.iter().all(|s| s.1 >= 4), "{steps:?}");
}

#[tokio::test]
async fn deployment_recreate_removes_old_pods_before_starting_new_ones() {
    let steps = roll(json!({"type": "Recreate"})).await;
    // No new pod while any old pod (terminating ones included) is still there.
    assert!(steps.iter().all(|s| s.2 == 0 || s.3 == 0), "{steps:?}");
    assert!(steps.iter().any(|s| s.2 == 0 && s.3 == 0), "{steps:?}");
}
