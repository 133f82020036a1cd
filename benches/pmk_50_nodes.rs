//! `plans/pmk-cluster-upgrade.toml` on 50 lab nodes with 20 pods each: the real `rok-plan`
//! drains and upgrades every node, one at a time, against the lab's Kubernetes API double.
//!
//! Prints the wall time, the time rok-plan spends itself (its own CPU time, user + system,
//! read from /proc while it is a zombie, so that its children are not counted), the time
//! it waits on the cluster (the rest: API round trips, watches, evictions waiting for pods
//! to stop, the node upgrade command), the steps' time by type, and the API requests
//! rok-plan sends per node (counted by a TCP proxy in front of the double; the upgrade
//! command's own kubectl requests go around it).
//!
//!   cargo bench --bench pmk_50_nodes
//!   BENCH_NODES=10 BENCH_PODS_PER_NODE=5 cargo bench --bench pmk_50_nodes   (a quick look)
//!
//! Linux only (/proc, waitid).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rok_plan_lab::kube::{Cluster, ClusterOptions, Delays};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const BIN: &str = env!("CARGO_BIN_EXE_rok-plan");

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Request counters of the proxy.
#[derive(Default)]
struct Counts {
    requests: AtomicUsize,
    watches: AtomicUsize,
}

/// A TCP proxy in front of the double counting HTTP/1.1 request lines (and the watches
/// among them) in what clients send.
async fn counting_proxy(upstream: SocketAddr) -> (SocketAddr, Arc<Counts>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the proxy");
    let addr = listener.local_addr().expect("proxy address");
    let counts = Arc::new(Counts::default());
    let shared = counts.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let counts = shared.clone();
            tokio::spawn(async move {
                let Ok(server) = tokio::net::TcpStream::connect(upstream).await else {
                    return;
                };
                let (mut cr, mut cw) = client.into_split();
                let (mut sr, mut sw) = server.into_split();
                let up = async move {
                    let mut buf = vec![0u8; 64 * 1024];
                    // Request lines split across reads: keep the tail of the last read.
                    let mut carry: Vec<u8> = Vec::new();
                    loop {
                        let n = match cr.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        let mut seen = std::mem::take(&mut carry);
                        seen.extend_from_slice(&buf[..n]);
                        let text = String::from_utf8_lossy(&seen);
                        for line in text.split("\r\n") {
                            if line.ends_with(" HTTP/1.1") {
                                counts.requests.fetch_add(1, Ordering::Relaxed);
                                if line.contains("watch=true") {
                                    counts.watches.fetch_add(1, Ordering::Relaxed);
                                }
                            }
                        }
                        let cut = text.rfind("\r\n").map_or(0, |i| i + 2);
                        carry = text.as_bytes()[cut..].to_vec();
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
    (addr, counts)
}

/// `apps` Deployments of `replicas` pods, each behind a budget allowing one disruption.
fn workloads(apps: usize, replicas: usize) -> Vec<Value> {
    let mut out = Vec::new();
    for i in 0..apps {
        let name = format!("app-{i}");
        out.push(json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "main", "image": "app:1"}]}}}}));
        out.push(json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": name},
            "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app": name}}}}));
    }
    out
}

/// rok-plan's own CPU time: waits for it to exit without reaping it, reads utime + stime
/// from /proc/PID/stat (its own, not its children's), then reaps it.
fn own_cpu_and_wait(mut child: std::process::Child) -> (Duration, std::process::ExitStatus) {
    let pid = child.id();
    // SAFETY: waitid with WNOWAIT only observes the exit of our own child; `info` is a
    // zeroed siginfo_t the kernel fills.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::waitid(libc::P_PID, pid, &mut info, libc::WEXITED | libc::WNOWAIT) };
    let cpu = if rc == 0 {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // Fields after the command name (which may hold spaces) in parentheses.
        let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks = |i: usize| {
            fields
                .get(i)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        // utime and stime are fields 14 and 15 of stat; `rest` starts at field 3.
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
        Duration::from_secs_f64((ticks(11) + ticks(12)) as f64 / hz)
    } else {
        Duration::ZERO
    };
    let status = child.wait().expect("rok-plan reaped");
    (cpu, status)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(bench());
}

async fn bench() {
    let nodes = env_usize("BENCH_NODES", 50);
    let per_node = env_usize("BENCH_PODS_PER_NODE", 20);
    let apps = nodes;
    let cluster = Cluster::start(ClusterOptions {
        nodes,
        delays: Delays {
            pod_start: Duration::from_millis(20),
            pod_stop: Duration::from_millis(10),
            job_run: Duration::ZERO,
        },
        ..ClusterOptions::default()
    })
    .await
    .expect("cluster");
    for obj in workloads(apps, per_node) {
        cluster.create("default", obj).expect("workload");
    }
    let pods = apps * per_node;
    let settled = cluster
        .wait_for(Duration::from_secs(300), |w| {
            w.list("", "pods", Some("default"))
                .iter()
                .filter(|p| p["status"]["phase"] == "Running")
                .count()
                >= pods
        })
        .await;
    assert!(settled, "the {pods} pods never ran");

    let dir = tempfile::tempdir().expect("temp dir");
    let (proxy, counts) = counting_proxy(cluster.addr()).await;
    let direct = std::fs::read_to_string(cluster.kubeconfig()).expect("kubeconfig");
    let via_proxy = direct.replace(&cluster.url(), &format!("http://{proxy}"));
    let kubeconfig = dir.path().join("kubeconfig-proxy");
    std::fs::write(&kubeconfig, via_proxy).expect("proxy kubeconfig");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let names: Vec<String> = (1..=nodes).map(|i| format!("\"node-{i}\"")).collect();
    let params = dir.path().join("params.toml");
    std::fs::write(
        &params,
        format!(
            "kube_context = \"lab\"\nnodes = [{}]\nnode_upgrade_command = {:?}\n\
             allow_unmanaged = true\nallow_emptydir_loss = true\ndrain_grace_period = \"1s\"\n",
            names.join(", "),
            root.join("lab/pmk-upgrade-node.sh").display().to_string()
        ),
    )
    .expect("params");

    println!(
        "pmk-cluster-upgrade: {nodes} nodes, {pods} pods ({apps} Deployments of {per_node}, each with a budget of one disruption)"
    );
    let started = Instant::now();
    let child = Command::new(BIN)
        .arg("execute")
        .arg(root.join("plans/pmk-cluster-upgrade.toml"))
        .arg("--params")
        .arg(&params)
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(["--eviction-retry", "200ms", "--quiet", "--state"])
        .arg(dir.path().join("state"))
        // The upgrade command's kubectl goes straight to the double (not counted).
        .env("KUBECONFIG", cluster.kubeconfig())
        .env_remove("ROK_PLAN_STATE")
        .spawn()
        .expect("rok-plan starts");
    let (cpu, status) = tokio::task::spawn_blocking(move || own_cpu_and_wait(child))
        .await
        .expect("joined");
    let wall = started.elapsed();
    assert!(status.success(), "rok-plan failed: {status}");

    let out = Command::new(BIN)
        .args(["status", "--output", "json", "--state"])
        .arg(dir.path().join("state"))
        .output()
        .expect("status");
    let doc: Value = serde_json::from_slice(&out.stdout).expect("status JSON");
    let mut by_step: BTreeMap<String, (usize, u64)> = BTreeMap::new();
    for s in doc["steps"].as_array().into_iter().flatten() {
        if s["state"] == "skipped" {
            continue;
        }
        let instance = s["instance"].as_str().unwrap_or_default();
        // "nodes/NODE/STEP" -> STEP; "STEP/ITEM" -> STEP.
        let step = match instance.strip_prefix("nodes/") {
            Some(rest) => rest.rsplit('/').next().unwrap_or(rest),
            None => instance.split('/').next().unwrap_or(instance),
        }
        .to_string();
        let e = by_step.entry(step).or_default();
        e.0 += 1;
        e.1 += s["duration_ms"].as_u64().unwrap_or(0);
    }
    let requests = counts.requests.load(Ordering::Relaxed);
    let watches = counts.watches.load(Ordering::Relaxed);
    let upgraded = cluster
        .list("", "nodes", None)
        .iter()
        .filter(|n| n["status"]["nodeInfo"]["kubeletVersion"] == "v1.34.0")
        .count();

    println!("nodes upgraded:             {upgraded}/{nodes}");
    println!("wall time:                  {:.1} s", wall.as_secs_f64());
    println!(
        "rok-plan itself (CPU):      {:.2} s ({:.1}% of the wall time; {:.0} ms per node)",
        cpu.as_secs_f64(),
        100.0 * cpu.as_secs_f64() / wall.as_secs_f64(),
        1000.0 * cpu.as_secs_f64() / nodes as f64
    );
    println!(
        "waiting on the cluster:     {:.1} s (wall time minus rok-plan's CPU)",
        wall.saturating_sub(cpu).as_secs_f64()
    );
    println!("steps, total time by step (instances):");
    for (step, (n, ms)) in &by_step {
        println!(
            "  {step:<26} {:>8.1} s  ({n}, {:.0} ms each)",
            *ms as f64 / 1000.0,
            *ms as f64 / (*n).max(1) as f64
        );
    }
    println!(
        "API requests by rok-plan:   {requests} ({:.1} per node; {watches} watches)",
        requests as f64 / nodes as f64
    );
    cluster.shutdown();
}
