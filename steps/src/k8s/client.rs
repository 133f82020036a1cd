//! Connections to clusters: one `kube::Client` per kubeconfig context, built on first use
//! and shared by every Kubernetes step of the run, and [`call`], the one retry loop for
//! API requests.
//!
//! kube 5 retries 429/503/504 by default (up to 15 times over minutes). That turns a
//! PodDisruptionBudget's 429 into a silent four-minute stall, so every client here is
//! built with `default_retry = false` and [`call`] decides what is worth retrying.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::discovery::{ApiCapabilities, ApiResource, Discovery};
use kube::{Client, Config};
use rok_plan_engine::step::{Fields, StepContext, Stream};

use super::KubeOptions;
use super::error::KubeError;

/// Attempts of one request before a transient error is given up on.
const ATTEMPTS: u32 = 8;
/// The first pause between attempts (doubled each time, up to [`MAX_BACKOFF`]).
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// The run's Kubernetes state, shared by every Kubernetes step type (clones share it).
#[derive(Clone)]
pub(crate) struct Kube {
    inner: Arc<Clients>,
}

impl std::fmt::Debug for Kube {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kube")
            .field("options", &self.inner.options)
            .finish()
    }
}

struct Clients {
    options: KubeOptions,
    conns: tokio::sync::Mutex<HashMap<String, Arc<Conn>>>,
}

impl Kube {
    /// Kubernetes access with these options; nothing is connected until a step runs.
    pub(crate) fn new(options: KubeOptions) -> Self {
        Self {
            inner: Arc::new(Clients {
                options,
                conns: tokio::sync::Mutex::default(),
            }),
        }
    }

    /// The run-wide options.
    pub(crate) fn options(&self) -> &KubeOptions {
        &self.inner.options
    }

    /// The connection for the step's `context` (the kubeconfig's current one when unset).
    pub(crate) async fn conn(&self, fields: &Fields) -> Result<Arc<Conn>, KubeError> {
        let context = super::opt_text(fields, "context").unwrap_or("").to_string();
        let mut conns = self.inner.conns.lock().await;
        if let Some(c) = conns.get(&context) {
            return Ok(c.clone());
        }
        let conn = Arc::new(Conn::connect(&self.inner.options, &context).await?);
        conns.insert(context, conn.clone());
        Ok(conn)
    }
}

/// One cluster, as one kubeconfig context sees it.
pub(crate) struct Conn {
    /// The client (kube's default retry off).
    pub(crate) client: Client,
    /// The context's namespace, else `default`.
    pub(crate) namespace: String,
    /// Writes carry `dryRun=All`.
    pub(crate) dry_run: bool,
    /// Pause between refused evictions.
    pub(crate) eviction_retry: Duration,
    /// The API server and context, for errors: "https://… (context prod)".
    pub(crate) server: String,
    discovery: tokio::sync::Mutex<Option<Arc<Discovery>>>,
    pinned: tokio::sync::Mutex<HashMap<String, (ApiResource, ApiCapabilities)>>,
}

impl Conn {
    async fn connect(options: &KubeOptions, context: &str) -> Result<Conn, KubeError> {
        let config_err = |message: String| KubeError::Config {
            context: context.to_string(),
            message,
        };
        let mut config = if options.kubeconfig.is_none() && context.is_empty() {
            // $KUBECONFIG, ~/.kube/config, else the in-cluster service account.
            Config::infer()
                .await
                .map_err(|e| config_err(e.to_string()))?
        } else {
            let kubeconfig = match &options.kubeconfig {
                Some(path) => Kubeconfig::read_from(path)
                    .map_err(|e| config_err(format!("{}: {e}", path.display())))?,
                None => Kubeconfig::read().map_err(|e| config_err(e.to_string()))?,
            };
            let pick = KubeConfigOptions {
                context: (!context.is_empty()).then(|| context.to_string()),
                ..KubeConfigOptions::default()
            };
            Config::from_custom_kubeconfig(kubeconfig, &pick)
                .await
                .map_err(|e| config_err(e.to_string()))?
        };
        config.default_retry = false;
        let server = match context {
            "" => format!("{} (current context)", config.cluster_url),
            c => format!("{} (context {c})", config.cluster_url),
        };
        let namespace = config.default_namespace.clone();
        let client = Client::try_from(config).map_err(|e| config_err(e.to_string()))?;
        Ok(Conn {
            client,
            server,
            namespace,
            dry_run: options.server_dry_run,
            eviction_retry: options.eviction_retry_interval,
            discovery: tokio::sync::Mutex::default(),
            pinned: tokio::sync::Mutex::default(),
        })
    }

    /// Every resource type the cluster serves; `refresh` asks again (a CRD was just added).
    pub(crate) async fn discovery(
        &self,
        ctx: &StepContext,
        refresh: bool,
    ) -> Result<Arc<Discovery>, KubeError> {
        let mut cached = self.discovery.lock().await;
        if !refresh && let Some(d) = cached.as_ref() {
            return Ok(d.clone());
        }
        // The first request a step sends: if the cluster cannot be reached, say which.
        let what = format!("API discovery at {}", self.server);
        let d = call(ctx, &what, || Discovery::new(self.client.clone()).run()).await?;
        let d = Arc::new(d);
        *cached = Some(d.clone());
        Ok(d)
    }

    /// The resource type of `apiVersion` + `kind`, asked of that group version only.
    pub(crate) async fn pinned_kind(
        &self,
        ctx: &StepContext,
        gvk: &kube::api::GroupVersionKind,
    ) -> Result<Option<(ApiResource, ApiCapabilities)>, KubeError> {
        let key = format!("{}/{}/{}", gvk.group, gvk.version, gvk.kind);
        if let Some(hit) = self.pinned.lock().await.get(&key) {
            return Ok(Some(hit.clone()));
        }
        let what = format!("discovery of {} at {}", gvk.api_version(), self.server);
        match call(ctx, &what, || {
            kube::discovery::pinned_kind(&self.client, gvk)
        })
        .await
        {
            Ok(found) => {
                self.pinned.lock().await.insert(key, found.clone());
                Ok(Some(found))
            }
            Err(KubeError::Api { code: 404, .. }) => Ok(None),
            Err(KubeError::Client {
                source: kube::Error::Discovery(_),
                ..
            }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Forgets what discovery learned (after a CRD was applied or deleted).
    pub(crate) async fn forget_kinds(&self) {
        *self.discovery.lock().await = None;
        self.pinned.lock().await.clear();
    }
}

/// Which answers [`call_with`] retries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Retry {
    /// 429, 5xx and lost connections.
    Transient,
    /// 5xx and lost connections, not 429 (an eviction's 429 is a PDB's answer).
    ServerErrors,
}

/// Sends a request made by `f`, retrying transient failures (5xx, 429, lost connections)
/// with backoff, each retry reported on the step's output. Stops when `ctx` is cancelled.
///
/// # Errors
/// The API's error, naming the request `what`; [`KubeError::Cancelled`].
pub(crate) async fn call<T, F, Fut>(ctx: &StepContext, what: &str, f: F) -> Result<T, KubeError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, kube::Error>>,
{
    call_with(ctx, what, Retry::Transient, f).await
}

/// [`call`] with a choice of what to retry.
///
/// # Errors
/// As [`call`].
pub(crate) async fn call_with<T, F, Fut>(
    ctx: &StepContext,
    what: &str,
    retry: Retry,
    mut f: F,
) -> Result<T, KubeError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, kube::Error>>,
{
    let mut backoff = FIRST_BACKOFF;
    let mut attempt = 1;
    loop {
        let answer = tokio::select! {
            a = f() => a,
            // Say what was in flight: "timed out after 2s: cancelled" alone tells nothing.
            () = ctx.cancellation().cancelled() => return Err(KubeError::Cancelled(format!("during {what}"))),
        };
        let err = match answer {
            Ok(v) => return Ok(v),
            Err(e) => e,
        };
        if attempt >= ATTEMPTS || !is_transient(&err, retry) {
            return Err(KubeError::from_kube(what, err));
        }
        ctx.output().write(
            Stream::Stderr,
            &format!(
                "{}; retrying in {} ms (attempt {}/{ATTEMPTS})\n",
                KubeError::from_kube(what, err),
                backoff.as_millis(),
                attempt + 1
            ),
        );
        pause(ctx, backoff)
            .await
            .map_err(|_| KubeError::Cancelled(format!("while retrying {what}")))?;
        backoff = (backoff * 2).min(MAX_BACKOFF);
        attempt += 1;
    }
}

fn is_transient(e: &kube::Error, retry: Retry) -> bool {
    match e {
        kube::Error::Api(s) => match s.code {
            429 => retry == Retry::Transient,
            500 | 502 | 503 | 504 => true,
            _ => false,
        },
        kube::Error::HyperError(_) | kube::Error::Service(_) => true,
        _ => false,
    }
}

/// Sleeps `d`, or returns [`KubeError::Cancelled`] when the attempt is cancelled first.
///
/// # Errors
/// [`KubeError::Cancelled`].
pub(crate) async fn pause(ctx: &StepContext, d: Duration) -> Result<(), KubeError> {
    tokio::select! {
        () = tokio::time::sleep(d) => Ok(()),
        () = ctx.cancellation().cancelled() => Err(KubeError::Cancelled(String::new())),
    }
}

/// Writes one progress line to the step's output (stdout).
pub(crate) fn say(ctx: &StepContext, line: impl AsRef<str>) {
    let mut line = line.as_ref().to_string();
    line.push('\n');
    ctx.output().write(Stream::Stdout, &line);
}
