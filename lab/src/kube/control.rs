//! The lab's control API: what [`Cluster`](super::Cluster) offers in Rust, served over HTTP by
//! the double itself under `/lab/v1/`, a prefix no real API server uses, so that the `lab kube`
//! commands can script a double another process started (`lab kube serve`). Requests to it skip
//! the injected faults and latency: a test that injects a 500 on every request must still be
//! able to clear it.
//!
//! | request | effect |
//! | --- | --- |
//! | `POST /lab/v1/logs` `{namespace, pod, container?, lines}` | appends log lines |
//! | `POST /lab/v1/behaviours` `{prefix, behaviour, ms?}` | how pods named `prefix…` behave |
//! | `POST /lab/v1/delays` `{pod_start_ms?, pod_stop_ms?, job_run_ms?}` | controller delays |
//! | `POST /lab/v1/faults/fail` `{code, count, method?, path_contains?}` | fails requests |
//! | `POST /lab/v1/faults/latency` `{ms}` | latency on every request |
//! | `POST /lab/v1/faults/delay` `{ms, count?, method?, path_contains?}` | delays requests |
//! | `POST /lab/v1/faults/drop-watches` | ends every open watch |
//! | `DELETE /lab/v1/faults` | clears injected errors, delays and latency |
//! | `POST /lab/v1/nodes` `{name}` | adds a Ready node |
//! | `GET /lab/v1/state?resource=R&namespace=NS` | a `List` of the objects |
//!
//! [`ControlClient`] calls it, finding the server from a kubeconfig; [`create_manifests`] seeds
//! YAML manifests into a [`Cluster`](super::Cluster).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Query as QueryParams, State};
use axum::response::Response;
use axum::routing::{delete, get, post};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};

use super::cluster::Cluster;
use super::faults::{DelayRule, FailRule};
use super::kinds::ResourceType;
use super::pod::container_names;
use super::server::{Query, Shared, error_response, json_response};
use super::status::{ApiError, Subject};
use super::world::{PodBehaviour, World};

/// Where the control API is served.
pub const PREFIX: &str = "/lab/v1";

/// The control API's routes, to be nested under [`PREFIX`].
pub fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/logs", post(append_logs))
        .route("/behaviours", post(set_behaviour))
        .route("/delays", post(set_delays))
        .route("/faults", delete(clear_faults))
        .route("/faults/fail", post(fail))
        .route("/faults/latency", post(latency))
        .route("/faults/delay", post(delay))
        .route("/faults/drop-watches", post(drop_watches))
        .route("/nodes", post(add_node))
        .route("/state", get(state))
}

fn answer(r: Result<Value, ApiError>) -> Response {
    match r {
        Ok(v) => json_response(200, &v),
        Err(e) => error_response(&e),
    }
}

fn body<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, ApiError> {
    let bytes = if bytes.is_empty() { b"{}" } else { bytes };
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request(format!("bad request body: {e}")))
}

/// Parses a behaviour name as the `lab` command spells it (`slow-ready` needs `ms`).
pub fn parse_behaviour(name: &str, ms: Option<u64>) -> Result<PodBehaviour, String> {
    match name {
        "normal" => Ok(PodBehaviour::Normal),
        "never-ready" => Ok(PodBehaviour::NeverReady),
        "fail" => Ok(PodBehaviour::Fail),
        "slow-ready" | "slow-start" => match ms {
            Some(ms) => Ok(PodBehaviour::SlowReady(Duration::from_millis(ms))),
            None => Err(format!("behaviour {name} needs a delay in milliseconds")),
        },
        other => Err(format!(
            "unknown pod behaviour {other:?} (one of normal, never-ready, slow-ready, fail)"
        )),
    }
}

#[derive(Deserialize)]
struct LogsBody {
    #[serde(default = "default_namespace")]
    namespace: String,
    pod: String,
    #[serde(default)]
    container: Option<String>,
    lines: Vec<String>,
}

fn default_namespace() -> String {
    "default".into()
}

async fn append_logs(State(sh): State<Arc<Shared>>, bytes: Bytes) -> Response {
    answer((|| {
        let b: LogsBody = body(&bytes)?;
        let mut w = sh.lock();
        let Some(pod) = w.get("", "pods", &b.namespace, &b.pod) else {
            return Err(ApiError::not_found(Subject {
                group: "",
                resource: "pods",
                name: &b.pod,
            }));
        };
        let names = container_names(&pod);
        // The same default as `kubectl logs`: the only container, else the caller must choose.
        let container = match b.container {
            Some(c) if names.contains(&c) => c,
            Some(c) => {
                return Err(ApiError::bad_request(format!(
                    "container {c} is not valid for pod {}, choose one of: [{}]",
                    b.pod,
                    names.join(" ")
                )));
            }
            None if names.len() == 1 => names[0].clone(),
            None => {
                return Err(ApiError::bad_request(format!(
                    "a container name must be specified for pod {}, choose one of: [{}]",
                    b.pod,
                    names.join(" ")
                )));
            }
        };
        for line in &b.lines {
            w.append_log(&b.namespace, &b.pod, &container, line);
        }
        Ok(
            json!({"namespace": b.namespace, "pod": b.pod, "container": container, "appended": b.lines.len()}),
        )
    })())
}

#[derive(Deserialize)]
struct BehaviourBody {
    prefix: String,
    behaviour: String,
    #[serde(default)]
    ms: Option<u64>,
}

async fn set_behaviour(State(sh): State<Arc<Shared>>, bytes: Bytes) -> Response {
    answer((|| {
        let b: BehaviourBody = body(&bytes)?;
        let behaviour = parse_behaviour(&b.behaviour, b.ms).map_err(ApiError::bad_request)?;
        sh.lock().set_behaviour(&b.prefix, behaviour);
        Ok(json!({"prefix": b.prefix, "behaviour": format!("{behaviour:?}")}))
    })())
}

#[derive(Deserialize)]
struct DelaysBody {
    pod_start_ms: Option<u64>,
    pod_stop_ms: Option<u64>,
    job_run_ms: Option<u64>,
}

async fn set_delays(State(sh): State<Arc<Shared>>, bytes: Bytes) -> Response {
    answer((|| {
        let b: DelaysBody = body(&bytes)?;
        let mut w = sh.lock();
        let d = &mut w.delays;
        // Only what the caller names changes, so one delay can be set without knowing the others.
        for (slot, ms) in [
            (&mut d.pod_start, b.pod_start_ms),
            (&mut d.pod_stop, b.pod_stop_ms),
            (&mut d.job_run, b.job_run_ms),
        ] {
            if let Some(ms) = ms {
                *slot = Duration::from_millis(ms);
            }
        }
        Ok(json!({
            "pod_start_ms": d.pod_start.as_millis() as u64,
            "pod_stop_ms": d.pod_stop.as_millis() as u64,
            "job_run_ms": d.job_run.as_millis() as u64,
        }))
    })())
}

/// Checks an HTTP method a fault rule is to match.
pub fn check_method(m: &str) -> Result<String, String> {
    let upper = m.to_ascii_uppercase();
    match upper.as_str() {
        "GET" | "POST" | "PUT" | "PATCH" | "DELETE" => Ok(upper),
        _ => Err(format!(
            "unknown HTTP method {m:?} (one of GET, POST, PUT, PATCH, DELETE; lists and watches are GETs)"
        )),
    }
}

fn method(m: Option<String>) -> Result<Option<String>, ApiError> {
    m.map(|m| check_method(&m).map_err(ApiError::bad_request))
        .transpose()
}

#[derive(Deserialize)]
struct FailBody {
    code: u16,
    count: u32,
    #[serde(default)]
    method: Option<String>,
    #[serde(default)]
    path_contains: String,
}

async fn fail(State(sh): State<Arc<Shared>>, bytes: Bytes) -> Response {
    answer((|| {
        let b: FailBody = body(&bytes)?;
        // Only error codes: the answer is a `Status` body clients read as a failure.
        if !(400..=599).contains(&b.code) {
            return Err(ApiError::bad_request(format!(
                "status code {} is not an error (400-599)",
                b.code
            )));
        }
        let method = method(b.method)?;
        sh.faults().rules.push(FailRule {
            method: method.clone(),
            path_contains: b.path_contains.clone(),
            code: b.code,
            remaining: b.count,
        });
        Ok(
            json!({"code": b.code, "count": b.count, "method": method, "path_contains": b.path_contains}),
        )
    })())
}

#[derive(Deserialize)]
struct LatencyBody {
    ms: u64,
}

async fn latency(State(sh): State<Arc<Shared>>, bytes: Bytes) -> Response {
    answer((|| {
        let b: LatencyBody = body(&bytes)?;
        sh.faults().latency = Duration::from_millis(b.ms);
        Ok(json!({"latency_ms": b.ms}))
    })())
}

#[derive(Deserialize)]
struct DelayBody {
    ms: u64,
    #[serde(default)]
    count: Option<u32>,
    #[serde(default)]
    method: Option<String>,
    #[serde(default)]
    path_contains: String,
}

async fn delay(State(sh): State<Arc<Shared>>, bytes: Bytes) -> Response {
    answer((|| {
        let b: DelayBody = body(&bytes)?;
        let method = method(b.method)?;
        sh.faults().delays.push(DelayRule {
            method: method.clone(),
            path_contains: b.path_contains.clone(),
            delay: Duration::from_millis(b.ms),
            remaining: b.count,
        });
        Ok(
            json!({"delay_ms": b.ms, "count": b.count, "method": method, "path_contains": b.path_contains}),
        )
    })())
}

async fn drop_watches(State(sh): State<Arc<Shared>>) -> Response {
    sh.faults().drop_all_watches();
    json_response(200, &json!({"dropped": true}))
}

async fn clear_faults(State(sh): State<Arc<Shared>>) -> Response {
    sh.faults().clear();
    json_response(200, &json!({"cleared": true}))
}

#[derive(Deserialize)]
struct NodeBody {
    name: String,
}

async fn add_node(State(sh): State<Arc<Shared>>, bytes: Bytes) -> Response {
    answer((|| {
        let b: NodeBody = body(&bytes)?;
        let mut w = sh.lock();
        create_object(&mut w, super::cluster::node_object(&b.name))
    })())
}

/// Finds a resource type as a user names it: plural, singular, kind or short name, with an
/// optional `.group` (`deployments`, `deploy`, `Deployment`, `deployments.apps`). The core group
/// wins a tie, as kubectl prefers it (`events`).
pub fn resolve_resource<'a>(w: &'a World, name: &str) -> Option<&'a ResourceType> {
    let lower = name.to_ascii_lowercase();
    let (res, group) = match lower.split_once('.') {
        Some((r, g)) => (r.to_string(), Some(g.to_string())),
        None => (lower.clone(), None),
    };
    let mut found: Vec<&ResourceType> = w
        .kinds
        .types()
        .iter()
        .filter(|t| {
            (t.plural == res
                || t.singular == res
                || t.kind.to_ascii_lowercase() == res
                || t.short_names.contains(&res))
                && group.as_ref().is_none_or(|g| *g == t.group)
        })
        .collect();
    found.sort_by_key(|t| !t.group.is_empty());
    found.first().copied()
}

async fn state(State(sh): State<Arc<Shared>>, QueryParams(q): QueryParams<Query>) -> Response {
    answer((|| {
        let w = sh.lock();
        let ns = q
            .get("namespace")
            .filter(|n| !n.is_empty())
            .map(String::as_str);
        let types: Vec<ResourceType> = match q.get("resource").filter(|r| !r.is_empty()) {
            Some(r) => vec![resolve_resource(&w, r).cloned().ok_or_else(|| {
                ApiError::new(
                    404,
                    "NotFound",
                    format!("the server doesn't have a resource type \"{r}\""),
                )
            })?],
            None => {
                // Every resource once (the kind table lists some in several versions).
                let mut seen = std::collections::BTreeSet::new();
                w.kinds
                    .types()
                    .iter()
                    .filter(|t| {
                        !t.plural.contains('/') && seen.insert((t.group.clone(), t.plural.clone()))
                    })
                    .cloned()
                    .collect()
            }
        };
        let mut items = Vec::new();
        for t in &types {
            let ns = if t.namespaced { ns } else { None };
            for mut obj in w.list(&t.group, &t.plural, ns) {
                // Stored objects may lack them; a List's items carry them.
                obj["apiVersion"] = json!(t.api_version());
                obj["kind"] = json!(t.kind);
                items.push(obj);
            }
        }
        Ok(json!({"apiVersion": "v1", "kind": "List", "metadata": {}, "items": items}))
    })())
}

/// Creates one object of any kind the double serves, in `metadata.namespace` (or `default`) if
/// the kind is namespaced.
pub fn create_object(w: &mut World, obj: Value) -> Result<Value, ApiError> {
    // A manifest must say what it is (the seed would take a missing apiVersion as v1).
    if !obj["apiVersion"].is_string() {
        return Err(ApiError::bad_request("the object has no apiVersion"));
    }
    if !obj["kind"].is_string() {
        return Err(ApiError::bad_request("the object has no kind"));
    }
    w.create_seed(None, obj)
}

/// Errors of the control client and of seeding manifests.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// A YAML document could not be parsed.
    #[error("{what}: {message}")]
    Yaml {
        /// What was parsed (a file, a kubeconfig).
        what: String,
        /// The parser's complaint.
        message: String,
    },
    /// The kubeconfig names no usable server.
    #[error("kubeconfig {path}: {message}")]
    Kubeconfig {
        /// Which kubeconfig.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A manifest's object was refused.
    #[error("{what}: {kind} {name}: {source}")]
    Create {
        /// Where the object came from.
        what: String,
        /// Its kind.
        kind: String,
        /// Its name.
        name: String,
        /// Why.
        #[source]
        source: Box<ApiError>,
    },
    /// The server could not be reached or answered garbage.
    #[error(
        "cannot reach the lab's Kubernetes API double at {url} (is `lab kube serve` running?): {message}"
    )]
    Unreachable {
        /// The server's URL.
        url: String,
        /// What went wrong.
        message: String,
    },
    /// The server refused the request.
    #[error("the server at {url} answered {code}: {message}")]
    Refused {
        /// The server's URL.
        url: String,
        /// The status code.
        code: u16,
        /// The `Status` message (or the body).
        message: String,
    },
}

/// Parses multi-document YAML (or JSON) into objects; empty documents are skipped and `List`s
/// are flattened into their items, as `kubectl apply -f` does.
pub fn parse_manifests(what: &str, text: &str) -> Result<Vec<Value>, ControlError> {
    let mut out = Vec::new();
    for doc in serde_yaml_ng::Deserializer::from_str(text) {
        let v = Value::deserialize(doc).map_err(|e| ControlError::Yaml {
            what: what.to_string(),
            message: e.to_string(),
        })?;
        match v {
            Value::Null => {}
            Value::Object(_) if v["kind"].as_str().is_some_and(|k| k.ends_with("List")) => {
                out.extend(v["items"].as_array().into_iter().flatten().cloned());
            }
            Value::Object(_) => out.push(v),
            other => {
                return Err(ControlError::Yaml {
                    what: what.to_string(),
                    message: format!("a document is not an object: {other}"),
                });
            }
        }
    }
    Ok(out)
}

/// Creates the objects of a manifest file's text in order (a Namespace before what goes in it),
/// `what` naming the file in errors.
pub fn create_manifests(
    cluster: &Cluster,
    what: &str,
    text: &str,
) -> Result<Vec<Value>, ControlError> {
    let objs = parse_manifests(what, text)?;
    let mut w = cluster.world();
    let mut created = Vec::new();
    for obj in objs {
        let kind = obj["kind"].as_str().unwrap_or("object").to_string();
        let name = obj["metadata"]["name"]
            .as_str()
            .or(obj["metadata"]["generateName"].as_str())
            .unwrap_or("(unnamed)")
            .to_string();
        created.push(
            create_object(&mut w, obj).map_err(|source| ControlError::Create {
                what: what.to_string(),
                kind,
                name,
                source: Box::new(source),
            })?,
        );
    }
    Ok(created)
}

/// The server URL of a kubeconfig's current context (else of its only cluster).
pub fn server_of_kubeconfig(path: &Path) -> Result<String, ControlError> {
    let text = std::fs::read_to_string(path).map_err(|e| ControlError::Kubeconfig {
        path: path.to_path_buf(),
        message: format!("cannot read it: {e}"),
    })?;
    let kc: Value = serde_yaml_ng::from_str(&text).map_err(|e| ControlError::Yaml {
        what: format!("kubeconfig {}", path.display()),
        message: e.to_string(),
    })?;
    let bad = |message: String| ControlError::Kubeconfig {
        path: path.to_path_buf(),
        message,
    };
    let clusters = kc["clusters"].as_array().cloned().unwrap_or_default();
    let current = kc["current-context"].as_str().unwrap_or_default();
    let cluster_name = kc["contexts"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["name"] == current)
        .and_then(|c| c["context"]["cluster"].as_str());
    let cluster = match cluster_name {
        Some(n) => clusters.iter().find(|c| c["name"] == n),
        None if clusters.len() == 1 => clusters.first(),
        None => None,
    }
    .ok_or_else(|| bad("no cluster for the current context".into()))?;
    let server = cluster["cluster"]["server"]
        .as_str()
        .ok_or_else(|| bad("the cluster has no server".into()))?;
    Ok(server.to_string())
}

/// Calls the control API of a running double.
#[derive(Debug, Clone)]
pub struct ControlClient {
    url: String,
    host: String,
    port: u16,
    timeout: Duration,
}

impl ControlClient {
    /// A client for the double at `url` (`http://127.0.0.1:PORT`).
    pub fn new(url: &str) -> Result<ControlClient, ControlError> {
        let unreachable = |message: String| ControlError::Unreachable {
            url: url.to_string(),
            message,
        };
        let parsed = url::Url::parse(url).map_err(|e| unreachable(format!("bad URL: {e}")))?;
        // The double serves plain HTTP; a TLS server is a real cluster, which has no control API.
        if parsed.scheme() != "http" {
            return Err(unreachable(
                "not a lab double: the double serves plain http://".into(),
            ));
        }
        let host = parsed
            .host_str()
            .ok_or_else(|| unreachable("the URL has no host".into()))?
            .to_string();
        Ok(ControlClient {
            url: url.trim_end_matches('/').to_string(),
            host,
            port: parsed.port_or_known_default().unwrap_or(80),
            timeout: Duration::from_secs(30),
        })
    }

    /// A client for the server a kubeconfig points at.
    pub fn from_kubeconfig(path: &Path) -> Result<ControlClient, ControlError> {
        ControlClient::new(&server_of_kubeconfig(path)?)
    }

    /// The server's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Sends `method` to `PREFIX` + `path` with a JSON body; the answer's JSON.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, ControlError> {
        let unreachable = |message: String| ControlError::Unreachable {
            url: self.url.clone(),
            message,
        };
        let (code, bytes) = tokio::time::timeout(self.timeout, self.exchange(method, path, body))
            .await
            .map_err(|_| unreachable(format!("no answer within {:?}", self.timeout)))?
            .map_err(|e| unreachable(e.to_string()))?;
        let v: Value = serde_json::from_slice(&bytes).unwrap_or_else(
            |_| json!({"message": String::from_utf8_lossy(&bytes).trim().to_string()}),
        );
        if (200..300).contains(&code) {
            return Ok(v);
        }
        let mut message = v["message"].as_str().unwrap_or_default().to_string();
        if code == 404 && message == "the server could not find the requested resource" {
            message.push_str(" (no lab control API here: is this a lab double?)");
        }
        Err(ControlError::Refused {
            url: self.url.clone(),
            code,
            message,
        })
    }

    /// One HTTP/1.1 exchange on a fresh connection; the status and the body.
    async fn exchange(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> std::io::Result<(u16, Vec<u8>)> {
        use http_body_util::BodyExt;
        let payload = body.map(Value::to_string).unwrap_or_default();
        let stream = tokio::net::TcpStream::connect((self.host.as_str(), self.port)).await?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .map_err(std::io::Error::other)?;
        // The connection is driven beside the request and ends with it.
        tokio::spawn(connection);
        let request = hyper::Request::builder()
            .method(method)
            .uri(format!("{PREFIX}{path}"))
            .header(hyper::header::HOST, format!("{}:{}", self.host, self.port))
            .header(hyper::header::USER_AGENT, "lab")
            .header(hyper::header::ACCEPT, "application/json")
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(http_body_util::Full::new(Bytes::from(payload)))
            .map_err(std::io::Error::other)?;
        let answer = sender
            .send_request(request)
            .await
            .map_err(std::io::Error::other)?;
        let code = answer.status().as_u16();
        let bytes = answer
            .into_body()
            .collect()
            .await
            .map_err(std::io::Error::other)?
            .to_bytes();
        Ok((code, bytes.to_vec()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests_split_skip_empty_documents_and_flatten_lists() {
        let text = "---\napiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\n# nothing\n---\n{\"apiVersion\": \"v1\", \"kind\": \"List\", \"items\": [{\"apiVersion\": \"v1\", \"kind\": \"Pod\", \"metadata\": {\"name\": \"p\"}}]}\n";
        let objs = parse_manifests("m.yaml", text).expect("parses");
        assert_eq!(objs.len(), 2);
        assert_eq!(objs[1]["kind"], "Pod");
        let err = parse_manifests("m.yaml", "- a\n- b\n").expect_err("not an object");
        assert!(
            err.to_string()
                .starts_with("m.yaml: a document is not an object")
        );
    }

    #[test]
    fn behaviours_parse_as_the_command_spells_them() {
        assert_eq!(
            parse_behaviour("slow-start", Some(5)),
            Ok(PodBehaviour::SlowReady(Duration::from_millis(5)))
        );
        assert!(parse_behaviour("slow-ready", None).is_err());
        assert!(parse_behaviour("sleepy", None).is_err());
    }
}
