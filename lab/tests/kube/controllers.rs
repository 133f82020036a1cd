//! Controllers: DaemonSets on cordoned nodes, Jobs, the Rok operator, faults.

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
