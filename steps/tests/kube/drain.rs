//! kube.drain: the pre-flight's refusals, evictions honouring budgets, a budget that never
//! allows it (until the attempt is cancelled), and kube's own 429 retry staying off.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use rok_plan_lab::kube::World;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{Lab, deployment, failure, ok, template};

/// Cordons every node but `keep` by hand, seeds `objects`, waits until `pods` pods run on
/// `keep`, then makes the other nodes schedulable again: the pods are all on `keep`.
async fn seed_on(lab: &Lab, keep: &str, objects: Vec<Value>, pods: usize) {
    let nodes: Vec<String> = lab
        .cluster
        .list("", "nodes", None)
        .iter()
        .map(|n| n["metadata"]["name"].as_str().unwrap_or("").to_string())
        .filter(|n| n != keep)
        .collect();
    for n in &nodes {
        let (o, out) = lab.run("kube.patch", json!({"resource": format!("node/{n}"), "merge": {"spec": {"unschedulable": true}}})).await;
        ok(&o, &out);
    }
    for o in objects {
        lab.cluster.create("default", o).expect("seed");
    }
    let keep_owned = keep.to_string();
    lab.until(move |w| {
        on_node(w, &keep_owned)
            .iter()
            .filter(|p| p["status"]["phase"] == "Running")
            .count()
            == pods
    })
    .await;
    lab.until(|w| {
        w.list("policy", "poddisruptionbudgets", Some("default"))
            .iter()
            .all(|p| p["status"]["observedGeneration"].is_number())
    })
    .await;
    for n in &nodes {
        let (o, out) = lab.run("kube.patch", json!({"resource": format!("node/{n}"), "merge": {"spec": {"unschedulable": null}}})).await;
        ok(&o, &out);
    }
}

fn on_node(w: &World, node: &str) -> Vec<Value> {
    w.list("", "pods", None)
        .into_iter()
        .filter(|p| p["spec"]["nodeName"] == node)
        .collect()
}

fn pdb(name: &str, app: &str, min_available: i64) -> Value {
    json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": name},
        "spec": {"minAvailable": min_available, "selector": {"matchLabels": {"app": app}}}})
}

fn daemonset(name: &str) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": name},
        "spec": {"selector": {"matchLabels": {"app": name}}, "template": template(name)}})
}

#[tokio::test]
async fn drain_evicts_through_budgets_and_leaves_daemonset_pods() {
    let lab = Lab::start(3).await;
    seed_on(
        &lab,
        "node-1",
        vec![
            deployment("web", 2),
            pdb("web-pdb", "web", 1),
            daemonset("agent"),
        ],
        3,
    )
    .await;
    let (outcome, out) = lab
        .run(
            "kube.drain",
            json!({"node": "node-1", "grace_period": "1s"}),
        )
        .await;
    ok(&outcome, &out);
    assert!(out.contains("DaemonSet pod"), "{out}");
    assert!(
        out.contains("node node-1 drained: 2 pod(s) evicted"),
        "{out}"
    );
    let left = on_node(&lab.cluster.world(), "node-1");
    assert!(
        left.iter().all(|p| p["metadata"]["name"]
            .as_str()
            .unwrap_or("")
            .starts_with("agent")),
        "{left:?}"
    );
    assert_eq!(
        lab.cluster.get("", "nodes", "", "node-1").expect("node")["spec"]["unschedulable"],
        true
    );
    lab.until(|w| crate::support::running(w, "web", 2)).await;
}

#[tokio::test]
async fn the_grace_period_reaches_the_evicted_pods() {
    let lab = Lab::start(2).await;
    seed_on(&lab, "node-1", vec![deployment("web", 2)], 2).await;
    // Evicted pods stay Terminating a while, so their grace can be read.
    lab.cluster.set_delays(rok_plan_lab::kube::Delays {
        pod_stop: std::time::Duration::from_millis(500),
        ..rok_plan_lab::kube::Delays::default()
    });
    let running = lab.start_step(
        "kube.drain",
        json!({"node": "node-1", "grace_period": "7s"}),
    );
    lab.until(|w| {
        let terminating: Vec<Value> = on_node(w, "node-1")
            .into_iter()
            .filter(|p| p["metadata"]["deletionTimestamp"].is_string())
            .collect();
        !terminating.is_empty()
            && terminating
                .iter()
                .all(|p| p["metadata"]["deletionGracePeriodSeconds"] == 7)
    })
    .await;
    let (outcome, out) = running.finish().await;
    ok(&outcome, &out);
}

#[tokio::test]
async fn mirror_pods_stay_and_do_not_stop_the_drain() {
    let lab = Lab::start(2).await;
    // A static pod as the kubelet mirrors it: no controller, the mirror annotation, owned
    // by its Node.
    lab.cluster
        .create(
            "kube-system",
            json!({"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "etcd-node-1", "namespace": "kube-system",
                    "annotations": {"kubernetes.io/config.mirror": "0123abcd"},
                    "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": "node-1",
                        "uid": lab.cluster.get("", "nodes", "", "node-1").expect("node")["metadata"]["uid"], "controller": true}]},
                "spec": {"nodeName": "node-1", "containers": [{"name": "etcd", "image": "etcd:3"}]}}),
        )
        .expect("mirror pod");
    seed_on(&lab, "node-1", vec![deployment("web", 1)], 2).await;
    let (outcome, out) = lab.run("kube.drain", json!({"node": "node-1"})).await;
    ok(&outcome, &out);
    assert!(out.contains("kube-system/etcd-node-1: mirror pod"), "{out}");
    assert!(
        lab.cluster
            .get("", "pods", "kube-system", "etcd-node-1")
            .is_some_and(|p| p["metadata"]["deletionTimestamp"].is_null()),
        "the mirror pod is left alone"
    );
}

#[tokio::test]
async fn preflight_refuses_naming_each_pod_why_and_the_field_that_allows_it() {
    let lab = Lab::start(2).await;
    let mut cache = deployment("cache", 1);
    cache["spec"]["template"]["spec"]["volumes"] = json!([{"name": "scratch", "emptyDir": {}}]);
    let lonely = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "lonely", "labels": {"app": "lonely"}},
        "spec": {"containers": [{"name": "main", "image": "lonely:1"}]}});
    seed_on(
        &lab,
        "node-1",
        vec![cache, lonely, deployment("db", 1), pdb("db-pdb", "db", 1)],
        3,
    )
    .await;
    let (outcome, out) = lab.run("kube.drain", json!({"node": "node-1"})).await;
    let reason = failure(&outcome, &out);
    assert!(
        reason.contains("default/lonely: unmanaged") && reason.contains("allow_unmanaged = true"),
        "{reason}"
    );
    assert!(
        reason.contains("emptyDir volume scratch") && reason.contains("allow_emptydir_loss = true"),
        "{reason}"
    );
    assert!(
        reason.contains("PodDisruptionBudget default/db-pdb allows no disruption now")
            && reason.contains("wait_for_budgets = true"),
        "{reason}"
    );
    assert_ne!(
        lab.cluster.get("", "nodes", "", "node-1").expect("node")["spec"]["unschedulable"],
        true,
        "a refused drain changes nothing"
    );
    // The same pre-flight in a server dry run.
    let step = lab
        .dry_run_registry()
        .get("kube.drain")
        .expect("type")
        .clone();
    let (outcome, out) = crate::support::start_with(step.clone(), json!({"node": "node-1"}))
        .finish()
        .await;
    assert!(failure(&outcome, &out).contains("default/lonely"));
    let (outcome, out) = crate::support::start_with(
        step,
        json!({"node": "node-1", "allow_unmanaged": "true", "allow_emptydir_loss": true, "wait_for_budgets": true}),
    )
    .finish()
    .await;
    ok(&outcome, &out);
    assert!(out.contains("would cordon it and evict 3 pod(s)"), "{out}");
}

/// A TCP proxy in front of the lab that counts requests whose bytes contain `needle`.
async fn counting_proxy(
    upstream: SocketAddr,
    needle: &'static [u8],
) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let count = Arc::new(AtomicUsize::new(0));
    let counter = count.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let counter = counter.clone();
            tokio::spawn(async move {
                let Ok(server) = tokio::net::TcpStream::connect(upstream).await else {
                    return;
                };
                let (mut cr, mut cw) = client.into_split();
                let (mut sr, mut sw) = server.into_split();
                let up = async move {
                    let mut buf = vec![0u8; 16 * 1024];
                    let mut carry: Vec<u8> = Vec::new();
                    loop {
                        let n = match cr.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        let mut seen = std::mem::take(&mut carry);
                        seen.extend_from_slice(&buf[..n]);
                        counter.fetch_add(
                            seen.windows(needle.len()).filter(|w| *w == needle).count(),
                            Ordering::SeqCst,
                        );
                        carry = seen[seen.len().saturating_sub(needle.len() - 1)..].to_vec();
                        if sw.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                };
                let down = async move {
                    let _ = tokio::io::copy(&mut sr, &mut cw).await;
                };
                tokio::join!(up, down);
            });
        }
    });
    (addr, count)
}

#[tokio::test]
async fn a_budget_that_never_allows_it_blocks_until_cancelled_one_request_per_round() {
    let cluster = rok_plan_lab::kube::Cluster::start(rok_plan_lab::kube::ClusterOptions {
        nodes: 2,
        ..Default::default()
    })
    .await
    .expect("cluster");
    let (proxy, evictions) = counting_proxy(cluster.addr(), b"/eviction").await;
    let dir = tempfile::tempdir().expect("dir");
    let kubeconfig = dir.path().join("kubeconfig");
    let text = std::fs::read_to_string(cluster.kubeconfig()).expect("kubeconfig");
    std::fs::write(
        &kubeconfig,
        text.replace(&cluster.url(), &format!("http://{proxy}")),
    )
    .expect("write");
    let lab = Lab::with_kubeconfig(cluster, kubeconfig);
    seed_on(
        &lab,
        "node-1",
        vec![deployment("db", 1), pdb("db-pdb", "db", 1)],
        1,
    )
    .await;

    let drain = lab.start_step(
        "kube.drain",
        json!({"node": "node-1", "wait_for_budgets": true}),
    );
    drain.until_said("eviction round 3:").await;
    drain.cancel.cancel();
    let (outcome, out) = drain.finish().await;
    let reason = failure(&outcome, &out);
    assert!(
        reason.contains("PodDisruptionBudget default/db-pdb"),
        "{reason}"
    );
    assert!(out.contains("still waiting: default/db-"), "{out}");
    let rounds = out.matches("eviction round ").count();
    assert_eq!(
        evictions.load(Ordering::SeqCst),
        rounds,
        "one eviction request per round: kube's own 429 retry must be off\n{out}"
    );
}
