//! The control handle tests and the `lab` command use: start a cluster with N nodes on
//! 127.0.0.1, write a kubeconfig, seed workloads, script pods and logs, inject faults, read state.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, MutexGuard};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::task::JoinHandle;

use super::controllers;
use super::faults::{DelayRule, FailRule};
use super::ops::WriteOpts;
use super::server::{Shared, router};
use super::status::ApiError;
use super::store::now_rfc3339;
use super::world::{Delays, PodBehaviour, World};

/// Errors of the control handle.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// The listener could not be bound.
    #[error("failed to bind the Kubernetes API double: {0}")]
    Bind(#[source] std::io::Error),
    /// The kubeconfig could not be written.
    #[error("failed to write the kubeconfig {path}: {source}")]
    Kubeconfig {
        /// Where.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A seed object was refused by the API.
    #[error("failed to seed an object: {0}")]
    Seed(#[from] ApiError),
}

/// How to start a cluster.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// Number of nodes (`node-1` … `node-N`).
    pub nodes: usize,
    /// Where to write the kubeconfig (default: a file in the temp dir, removed on shutdown).
    pub kubeconfig: Option<PathBuf>,
    /// Port on 127.0.0.1 (0: any free port).
    pub port: u16,
    /// Controller delays.
    pub delays: Delays,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        ClusterOptions {
            nodes: 3,
            kubeconfig: None,
            port: 0,
            delays: Delays::default(),
        }
    }
}

/// A running simulated cluster.
#[derive(Debug)]
pub struct Cluster {
    shared: Arc<Shared>,
    addr: SocketAddr,
    kubeconfig: PathBuf,
    remove_kubeconfig: bool,
    tasks: Vec<JoinHandle<()>>,
}

/// A Node object as the lab's kubelets register it.
pub fn node_object(name: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64"}},
        "spec": {},
        "status": {
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status", "lastHeartbeatTime": now_rfc3339(), "lastTransitionTime": now_rfc3339()}],
            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}, {"type": "Hostname", "address": name}],
            "capacity": {"cpu": "4", "memory": "16Gi", "pods": "110"},
            "allocatable": {"cpu": "4", "memory": "16Gi", "pods": "110"},
            "nodeInfo": {"kubeletVersion": "v1.33.0", "containerRuntimeVersion": "containerd://2.0.0", "operatingSystem": "linux", "architecture": "amd64", "osImage": "lab", "kernelVersion": "6.1.0", "machineID": "", "systemUUID": "", "bootID": "", "kubeProxyVersion": ""},
        },
    })
}

fn kubeconfig_text(url: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: lab\n  cluster:\n    server: {url}\ncontexts:\n- name: lab\n  context:\n    cluster: lab\n    user: lab\n    namespace: default\ncurrent-context: lab\nusers:\n- name: lab\n  user: {{}}\npreferences: {{}}\n"
    )
}

impl Cluster {
    /// Starts a cluster: namespaces `default`, `kube-system`, `kube-public`, `kube-node-lease`,
    /// N Ready nodes, the controllers, and the API on 127.0.0.1.
    pub async fn start(opts: ClusterOptions) -> Result<Cluster, LabError> {
        let mut world = World::new();
        world.delays = opts.delays.clone();
        let mut cluster_seed = Vec::new();
        for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            cluster_seed.push(("", "namespaces", json!({"metadata": {"name": ns}})));
        }
        for i in 1..=opts.nodes {
            cluster_seed.push(("", "nodes", node_object(&format!("node-{i}"))));
        }
        for (group, plural, obj) in cluster_seed {
            if let Some(rt) = world.rt(group, plural) {
                world.create(&rt, "", obj, &WriteOpts::default())?;
            }
        }
        let shared = Arc::new(Shared::new(world));
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", opts.port))
            .await
            .map_err(LabError::Bind)?;
        let addr = listener.local_addr().map_err(LabError::Bind)?;
        let app = router(shared.clone());
        let serve = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let ctl = tokio::spawn(controllers::run(shared.clone()));
        let (kubeconfig, remove_kubeconfig) = match opts.kubeconfig {
            Some(p) => (p, false),
            None => (
                std::env::temp_dir().join(format!(
                    "lab-kube-{}-{}.yaml",
                    std::process::id(),
                    addr.port()
                )),
                true,
            ),
        };
        let url = format!("http://{addr}");
        std::fs::write(&kubeconfig, kubeconfig_text(&url)).map_err(|source| {
            LabError::Kubeconfig {
                path: kubeconfig.clone(),
                source,
            }
        })?;
        Ok(Cluster {
            shared,
            addr,
            kubeconfig,
            remove_kubeconfig,
            tasks: vec![serve, ctl],
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The address served.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The kubeconfig pointing at this cluster.
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// Locks the world to read or change state directly.
    pub fn world(&self) -> MutexGuard<'_, World> {
        self.shared.lock()
    }

    /// Creates an object (any kind the API serves) as a seed, in `ns` if namespaced.
    pub fn create(&self, ns: &str, obj: Value) -> Result<Value, LabError> {
        Ok(self.world().create_seed(Some(ns), obj)?)
    }

    /// Reads an object.
    pub fn get(&self, group: &str, plural: &str, ns: &str, name: &str) -> Option<Value> {
        self.world().get(group, plural, ns, name)
    }

    /// Lists objects.
    pub fn list(&self, group: &str, plural: &str, ns: Option<&str>) -> Vec<Value> {
        self.world().list(group, plural, ns)
    }

    /// Adds a Ready node.
    pub fn add_node(&self, name: &str) -> Result<Value, LabError> {
        self.create("", node_object(name))
    }

    /// Appends a line to a container's log.
    pub fn append_log(&self, ns: &str, pod: &str, container: &str, line: &str) {
        self.world().append_log(ns, pod, container, line);
    }

    /// Sets how pods whose name starts with `prefix` behave.
    pub fn set_behaviour(&self, prefix: &str, b: PodBehaviour) {
        self.world().set_behaviour(prefix, b);
    }

    /// Sets the controller delays.
    pub fn set_delays(&self, d: Delays) {
        self.world().delays = d;
    }

    /// Answers the next `n` requests whose method matches (any if `None`) and whose path
    /// contains `path_contains` with `code`.
    pub fn fail_next(&self, method: Option<&str>, path_contains: &str, code: u16, n: u32) {
        self.shared.faults().rules.push(FailRule {
            method: method.map(str::to_string),
            path_contains: path_contains.to_string(),
            code,
            remaining: n,
        });
    }

    /// Adds latency to every answer.
    pub fn set_latency(&self, d: Duration) {
        self.shared.faults().latency = d;
    }

    /// Holds the next `n` requests whose method matches (any if `None`) and whose path contains
    /// `path_contains` for `delay` before handling them (`n == None`: every matching request).
    pub fn delay_next(
        &self,
        method: Option<&str>,
        path_contains: &str,
        delay: Duration,
        n: Option<u32>,
    ) {
        self.shared.faults().delays.push(DelayRule {
            method: method.map(str::to_string),
            path_contains: path_contains.to_string(),
            delay,
            remaining: n,
        });
    }

    /// Ends every open watch.
    pub fn drop_watches(&self) {
        self.shared.faults().drop_all_watches();
    }

    /// Compacts the event log: watches from older resourceVersions get 410 Expired.
    pub fn compact(&self) {
        self.world().store.compact();
    }

    /// Pauses or resumes the controllers.
    pub fn pause_controllers(&self, paused: bool) {
        self.world().controllers_paused = paused;
    }

    /// Waits until `check` holds on the world (polling), or the timeout passes.
    pub async fn wait_for(&self, timeout: Duration, mut check: impl FnMut(&World) -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if check(&self.world()) {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Installs a Rok deployment at `version`: the RokCluster CRD, namespaces `rok` and
    /// `rok-system`, the `rok-operator` StatefulSet (rok-system), the `rok-csi-controller`
    /// StatefulSet and `rok-csi-node` DaemonSet (rok), and the RokCluster `rok` with `members`.
    pub fn install_rok(&self, version: &str, members: i64) -> Result<(), LabError> {
        let crd: Value = serde_json::from_str(controllers::ROK_CRD)
            .map_err(|e| ApiError::internal(e.to_string()))?;
        self.create("", crd)?;
        for ns in ["rok", "rok-system"] {
            self.create(
                "",
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
            )?;
        }
        let image = |c: &str| format!("gcr.io/arrikto-deploy/{c}:{version}");
        let workload = |kind: &str, name: &str, container: &str| {
            let mut spec = json!({
                "selector": {"matchLabels": {"app": name}},
                "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": container, "image": image(name)}]}},
            });
            if kind == "StatefulSet" {
                spec["replicas"] = json!(1);
                spec["serviceName"] = json!(name);
            }
            json!({"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": name, "labels": {"app": name}}, "spec": spec})
        };
        self.create(
            "rok-system",
            workload("StatefulSet", "rok-operator", "operator"),
        )?;
        self.create(
            "rok",
            workload("StatefulSet", "rok-csi-controller", "csi-controller"),
        )?;
        self.create("rok", workload("DaemonSet", "rok-csi-node", "csi-node"))?;
        self.create(
            "rok",
            json!({"apiVersion": "rok.arrikto.com/v1alpha1", "kind": "RokCluster", "metadata": {"name": "rok"},
                "spec": {"version": version, "members": members, "images": {"rok": image("roke"), "rokCSI": image("rok-csi")}}}),
        )?;
        Ok(())
    }

    /// Makes the Rok CSI pods log "operation pending" lines for `d` (so that "wait until
    /// nothing was logged for N s" steps have something to wait out).
    pub fn rok_operations_for(&self, d: Duration) {
        let mut w = self.world();
        w.rok_busy_until = Some(std::time::Instant::now() + d);
    }

    /// Stops serving and removes a kubeconfig the cluster chose itself.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        for t in self.tasks.drain(..) {
            t.abort();
        }
        if self.remove_kubeconfig {
            let _ = std::fs::remove_file(&self.kubeconfig);
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
    }
}
