//! Load test of the Kubernetes API double: N pods on M nodes created through the real `kube`
//! client while W watchers watch all pods. Reports create requests per second, GET requests
//! per second, watch event latency (creation request sent to first sighting by each watcher)
//! and how long the scheduler and kubelets take to get every pod Running.
//!
//! `cargo run --release -p rok-plan-lab --example kube_load -- [PODS] [NODES] [WATCHERS]`
//! (defaults 5000 100 50).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Config};
use rok_plan_lab::kube::{Cluster, ClusterOptions};
use serde_json::json;
use tokio::sync::Mutex;

fn nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let (pods_n, nodes, watchers) = (
        args.first().copied().unwrap_or(5000),
        args.get(1).copied().unwrap_or(100),
        args.get(2).copied().unwrap_or(50),
    );
    let cluster = Cluster::start(ClusterOptions {
        nodes,
        ..ClusterOptions::default()
    })
    .await?;
    // `LAB_LOAD_PAUSE=1` measures the API alone, with the controllers paused while creating.
    let paused = std::env::var("LAB_LOAD_PAUSE").is_ok_and(|v| v == "1");
    cluster.pause_controllers(paused);
    let kc = Kubeconfig::read_from(cluster.kubeconfig())?;
    let mut config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default()).await?;
    config.default_retry = false;
    let client = Client::try_from(config)?;

    let latencies = Arc::new(Mutex::new(Vec::<f64>::new()));
    let mut handles = Vec::new();
    for _ in 0..watchers {
        let api: Api<Pod> = Api::all(client.clone());
        let latencies = latencies.clone();
        let want = pods_n;
        handles.push(tokio::spawn(async move {
            let mut seen = HashSet::new();
            let mut stream = watcher(api, watcher::Config::default())
                .default_backoff()
                .applied_objects()
                .boxed();
            while let Ok(Some(p)) = stream.try_next().await {
                let sent = p
                    .metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get("lab/sent-ns"))
                    .and_then(|s| s.parse::<u128>().ok());
                if let (Some(sent), Some(name)) = (sent, p.metadata.name.clone())
                    && seen.insert(name)
                {
                    latencies
                        .lock()
                        .await
                        .push((nanos().saturating_sub(sent)) as f64 / 1e6);
                    if seen.len() == want {
                        return;
                    }
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    let api: Api<Pod> = Api::namespaced(client.clone(), "default");
    let start = Instant::now();
    futures::stream::iter(0..pods_n)
        .map(|i| {
            let api = api.clone();
            async move {
                let p: Pod = serde_json::from_value(json!({
                    "metadata": {"name": format!("load-{i}"), "labels": {"app": "load"}, "annotations": {"lab/sent-ns": nanos().to_string()}},
                    "spec": {"containers": [{"name": "m", "image": "x"}]},
                }))
                .expect("pod");
                api.create(&PostParams::default(), &p).await.map(|_| ())
            }
        })
        .buffer_unordered(32)
        .try_collect::<Vec<_>>()
        .await?;
    let create_secs = start.elapsed().as_secs_f64();
    println!(
        "created {pods_n} pods on {nodes} nodes with {watchers} watchers: {:.0} creates/s",
        pods_n as f64 / create_secs
    );

    let gets = 2000.min(pods_n);
    let start = Instant::now();
    futures::stream::iter(0..gets)
        .map(|i| {
            let api = api.clone();
            async move { api.get(&format!("load-{i}")).await.map(|_| ()) }
        })
        .buffer_unordered(32)
        .try_collect::<Vec<_>>()
        .await?;
    println!("{:.0} GETs/s", gets as f64 / start.elapsed().as_secs_f64());

    cluster.pause_controllers(false);
    let start = Instant::now();
    let all_running = cluster
        .wait_for(Duration::from_secs(600), |w| {
            w.list("", "pods", Some("default"))
                .iter()
                .filter(|p| p["status"]["phase"] == "Running")
                .count()
                == pods_n
        })
        .await;
    println!(
        "all pods Running: {all_running} ({:.1}s after the last create)",
        start.elapsed().as_secs_f64()
    );

    for h in handles {
        let _ = tokio::time::timeout(Duration::from_secs(120), h).await;
    }
    let mut l = latencies.lock().await.clone();
    l.sort_by(|a, b| a.total_cmp(b));
    println!(
        "watch latency over {} first sightings: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        l.len(),
        percentile(&l, 0.5),
        percentile(&l, 0.99),
        l.last().copied().unwrap_or(0.0)
    );
    cluster.shutdown();
    Ok(())
}
