//! The Kubernetes API double, driven by the real `kube` client (as rok-plan's steps use it) and
//! by `kubectl`.

mod api;
mod controllers;
mod kubectl;
mod lab_command;
mod subresources;
mod writes;

use std::time::Duration;

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use rok_plan_lab::kube::{Cluster, ClusterOptions};

/// Starts a cluster with `nodes` nodes and a client built from the kubeconfig it wrote, with
/// kube's default 429/5xx retry turned off as the product does.
pub async fn start(nodes: usize) -> (Cluster, Client) {
    let cluster = Cluster::start(ClusterOptions {
        nodes,
        ..ClusterOptions::default()
    })
    .await
    .expect("cluster starts");
    let kc = Kubeconfig::read_from(cluster.kubeconfig()).expect("kubeconfig parses");
    let mut config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .expect("config");
    config.default_retry = false;
    let client = Client::try_from(config).expect("client");
    (cluster, client)
}

/// Bounds a wait that must not hang a failing test forever.
pub async fn within<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), f)
        .await
        .expect("timed out")
}

/// The `Status` of an API error.
pub fn api_status(e: kube::Error) -> kube::core::Status {
    match e {
        kube::Error::Api(s) => *s,
        other => panic!("expected an API error, got {other:?}"),
    }
}
