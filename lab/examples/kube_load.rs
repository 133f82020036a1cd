//! Load test of the Kubernetes API double: N pods on M nodes created through the real `kube`
//! client while W watchers watch all pods, then GET, LIST and PATCH rounds while the controllers
//! schedule and start the pods. Reports requests per second per verb, watch event latency (from
//! the request being sent to each watcher's first sighting of the change), how long the scheduler
//! and kubelets take to get every pod Running, and the CPU time the double itself used (it runs
//! on its own runtime, in threads named `lab-kube`, apart from the clients).
//!
//! `cargo run --release -p rok-plan-lab --example kube_load -- [PODS] [NODES] [WATCHERS]`
//! (defaults 5000 100 50). `LAB_LOAD_PAUSE=1` pauses the controllers until the requests are done.
//! `LAB_LOAD_WATCHER=typed` watches with `kube::runtime::watcher` over typed `Pod`s (as the
//! product does; the 50 clients then spend most of the CPU decoding pods) instead of the default
//! light watchers: the same `kube::Client` watch requests, decoding only the pod's name and
//! annotations.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::Request;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Config};
use rok_plan_lab::kube::{Cluster, ClusterOptions};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::Mutex;

/// Requests in flight at once in each round.
const CONCURRENCY: usize = 32;

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

/// Sighting latencies (ms) of creations and of patches, as the watchers saw them.
#[derive(Default)]
struct Latencies {
    created: Vec<f64>,
    patched: Vec<f64>,
}

/// What a light watcher decodes of a pod.
#[derive(Clone, Deserialize)]
struct PodStub {
    metadata: MetaStub,
}

#[derive(Clone, Deserialize)]
struct MetaStub {
    #[serde(default)]
    name: String,
    #[serde(default)]
    annotations: HashMap<String, String>,
}

/// Per pod, whether its creation and its patch were seen; records the latencies.
#[derive(Default)]
struct Sightings {
    seen: HashMap<String, (bool, bool)>,
    patched: usize,
}

impl Sightings {
    /// Notes a sighting; returns whether every pod was seen patched.
    async fn note(
        &mut self,
        name: String,
        annotations: Option<&std::collections::BTreeMap<String, String>>,
        stub: Option<&HashMap<String, String>>,
        want: usize,
        latencies: &Mutex<Latencies>,
    ) -> bool {
        let get = |k: &str| -> Option<u128> {
            annotations
                .and_then(|a| a.get(k))
                .or_else(|| stub.and_then(|a| a.get(k)))?
                .parse()
                .ok()
        };
        let now = nanos();
        let entry = self.seen.entry(name).or_default();
        let mut l = Latencies::default();
        if !entry.0
            && let Some(sent) = get("lab/sent-ns")
        {
            entry.0 = true;
            l.created.push(now.saturating_sub(sent) as f64 / 1e6);
        }
        if !entry.1
            && let Some(sent) = get("lab/patched-ns")
        {
            entry.1 = true;
            self.patched += 1;
            l.patched.push(now.saturating_sub(sent) as f64 / 1e6);
        }
        if !l.created.is_empty() || !l.patched.is_empty() {
            let mut all = latencies.lock().await;
            all.created.extend(l.created);
            all.patched.extend(l.patched);
        }
        self.patched == want
    }
}

/// Watches all pods with `kube::runtime::watcher` until every pod was seen created and patched.
async fn watch_typed(client: Client, want: usize, latencies: Arc<Mutex<Latencies>>) {
    let api: Api<Pod> = Api::all(client);
    let mut s = Sightings::default();
    let mut stream = watcher(api, watcher::Config::default())
        .default_backoff()
        .applied_objects()
        .boxed();
    while let Ok(Some(p)) = stream.try_next().await {
        let name = p.metadata.name.clone().unwrap_or_default();
        if s.note(
            name,
            p.metadata.annotations.as_ref(),
            None,
            want,
            &latencies,
        )
        .await
        {
            return;
        }
    }
}

/// Watches all pods through the kube client's watch requests, decoding only names and
/// annotations, until every pod was seen created and patched.
async fn watch_light(client: Client, want: usize, latencies: Arc<Mutex<Latencies>>) {
    let mut s = Sightings::default();
    let Ok(req) = Request::new("/api/v1/pods").watch(&WatchParams::default(), "0") else {
        return;
    };
    let Ok(stream) = client.request_events::<PodStub>(req).await else {
        return;
    };
    let mut stream = std::pin::pin!(stream);
    while let Ok(Some(e)) = stream.try_next().await {
        let (WatchEvent::Added(p) | WatchEvent::Modified(p)) = e else {
            continue;
        };
        if s.note(
            p.metadata.name,
            None,
            Some(&p.metadata.annotations),
            want,
            &latencies,
        )
        .await
        {
            return;
        }
    }
}

/// Runs `n` requests, `CONCURRENCY` at a time; returns requests per second.
async fn round<F, Fut>(n: usize, f: F) -> Result<f64, kube::Error>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = Result<(), kube::Error>>,
{
    let start = Instant::now();
    futures::stream::iter(0..n)
        .map(f)
        .buffer_unordered(CONCURRENCY)
        .try_collect::<Vec<_>>()
        .await?;
    Ok(n as f64 / start.elapsed().as_secs_f64())
}

fn report(what: &str, l: &mut [f64]) {
    l.sort_by(|a, b| a.total_cmp(b));
    println!(
        "watch latency of {what} over {} sightings: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        l.len(),
        percentile(l, 0.5),
        percentile(l, 0.99),
        l.last().copied().unwrap_or(0.0)
    );
}

/// CPU time (user + system) used so far by this process's threads whose name starts with
/// `prefix`, from `/proc/self/task` (Linux); `None` elsewhere.
fn cpu_seconds(prefix: &str) -> Option<f64> {
    // Clock ticks per second: 100 on every Linux this runs on (USER_HZ).
    const TICKS: f64 = 100.0;
    let mut total = 0u64;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let dir = task.ok()?.path();
        let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        if !comm.starts_with(prefix) {
            continue;
        }
        let stat = std::fs::read_to_string(dir.join("stat")).unwrap_or_default();
        // Fields after the `(comm)`: state is the 3rd field, utime the 14th, stime the 15th.
        let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks = |i: usize| {
            fields
                .get(i)
                .and_then(|f| f.parse::<u64>().ok())
                .unwrap_or(0)
        };
        total += ticks(11) + ticks(12);
    }
    Some(total as f64 / TICKS)
}

/// The load-test settings.
struct Settings {
    pods: usize,
    nodes: usize,
    watchers: usize,
    paused: bool,
    typed: bool,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let settings = Settings {
        pods: args.first().copied().unwrap_or(5000),
        nodes: args.get(1).copied().unwrap_or(100),
        watchers: args.get(2).copied().unwrap_or(50),
        paused: std::env::var("LAB_LOAD_PAUSE").is_ok_and(|v| v == "1"),
        typed: std::env::var("LAB_LOAD_WATCHER").is_ok_and(|v| v == "typed"),
    };
    // The double runs on its own runtime so that its CPU time can be told from the clients'.
    let server = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("lab-kube")
        .enable_all()
        .build()?;
    let clients = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("load-client")
        .enable_all()
        .build()?;
    let cluster = server.block_on(Cluster::start(ClusterOptions {
        nodes: settings.nodes,
        ..ClusterOptions::default()
    }))?;
    let outcome = clients.block_on(load(&cluster, &settings));
    server.block_on(async { cluster.shutdown() });
    outcome
}

async fn load(cluster: &Cluster, settings: &Settings) -> Result<(), Box<dyn std::error::Error>> {
    let Settings {
        pods: pods_n,
        nodes,
        watchers,
        paused,
        typed,
    } = *settings;
    cluster.pause_controllers(paused);
    let kc = Kubeconfig::read_from(cluster.kubeconfig())?;
    let mut config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default()).await?;
    config.default_retry = false;
    let client = Client::try_from(config)?;
    println!(
        "{pods_n} pods on {nodes} nodes, {watchers} {} watchers of all pods, {CONCURRENCY} requests in flight{}",
        if typed { "typed" } else { "light" },
        if paused { ", controllers paused" } else { "" }
    );
    let wall = Instant::now();
    let cpu_before = cpu_seconds("lab-kube");

    let latencies = Arc::new(Mutex::new(Latencies::default()));
    let handles: Vec<_> = (0..watchers)
        .map(|_| {
            let (client, latencies) = (client.clone(), latencies.clone());
            tokio::spawn(async move {
                if typed {
                    watch_typed(client, pods_n, latencies).await;
                } else {
                    watch_light(client, pods_n, latencies).await;
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;

    let api: Api<Pod> = Api::namespaced(client.clone(), "default");
    let creates = round(pods_n, |i| {
        let api = api.clone();
        async move {
            let p: Pod = serde_json::from_value(json!({
                "metadata": {"name": format!("load-{i}"), "labels": {"app": "load", "shard": (i % 10).to_string()}, "annotations": {"lab/sent-ns": nanos().to_string()}},
                "spec": {"containers": [{"name": "m", "image": "x"}]},
            }))
            .map_err(kube::Error::SerdeError)?;
            api.create(&PostParams::default(), &p).await.map(|_| ())
        }
    })
    .await?;
    println!("CREATE: {creates:.0} requests/s");

    let gets = round(pods_n.min(5000), |i| {
        let api = api.clone();
        async move { api.get(&format!("load-{i}")).await.map(|_| ()) }
    })
    .await?;
    println!("GET: {gets:.0} requests/s");

    // A LIST of one shard (a tenth of the pods) by label selector, in pages of 100.
    let lists = round(200, |i| {
        let api = api.clone();
        async move {
            let lp = ListParams::default()
                .labels(&format!("app=load,shard={}", i % 10))
                .limit(100);
            api.list(&lp).await.map(|_| ())
        }
    })
    .await?;
    println!("LIST (label selector, page of 100 of {pods_n} pods): {lists:.0} requests/s");

    let patches = round(pods_n, |i| {
        let api = api.clone();
        async move {
            let patch =
                json!({"metadata": {"annotations": {"lab/patched-ns": nanos().to_string()}}});
            api.patch(
                &format!("load-{i}"),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
            .map(|_| ())
        }
    })
    .await?;
    println!("PATCH (merge): {patches:.0} requests/s");

    cluster.pause_controllers(false);
    let start = Instant::now();
    // Read through the control handle (the world's lock), as tests do.
    let all_running = cluster
        .wait_for(Duration::from_secs(600), |w| {
            w.store
                .list(&("".to_string(), "pods".to_string()), Some("default"))
                .iter()
                .filter(|p| p["status"]["phase"] == "Running")
                .count()
                == pods_n
        })
        .await;
    println!(
        "all pods Running: {all_running} ({:.1}s after the last request)",
        start.elapsed().as_secs_f64()
    );

    for h in handles {
        let _ = tokio::time::timeout(Duration::from_secs(120), h).await;
    }
    let wall = wall.elapsed().as_secs_f64();
    let mut l = latencies.lock().await;
    let l = &mut *l;
    report("creations", &mut l.created);
    report("patches", &mut l.patched);
    if let (Some(before), Some(after)) = (cpu_before, cpu_seconds("lab-kube")) {
        let used = after - before;
        println!(
            "the double used {used:.1} s of CPU in {wall:.1} s ({:.0}% of one core); the clients the rest",
            100.0 * used / wall
        );
    }
    Ok(())
}
