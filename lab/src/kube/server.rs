//! The HTTP front: routes Kubernetes API paths to discovery, the verbs and the subresources.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::events::EventLog;
use super::faults::{Faults, reason_for};
use super::fields;
use super::kinds::ResourceType;
use super::ops::{DeleteOpts, Part, WriteOpts};
use super::patch;
use super::status::{ApiError, Subject};
use super::store::{gr, now_rfc3339};
use super::world::World;
use super::{eviction, list, logs, scale, table, watch};

/// State shared by every request and the controllers: the world behind one lock, and beside it
/// what requests need without taking that lock (the event log watches read, the faults).
#[derive(Debug)]
pub struct Shared {
    world: Mutex<World>,
    log: Arc<EventLog>,
    faults: Mutex<Faults>,
}

impl Default for Shared {
    fn default() -> Self {
        Shared::new(World::new())
    }
}

impl Shared {
    /// Shares a world.
    pub fn new(world: World) -> Self {
        Shared {
            log: world.store.log(),
            world: Mutex::new(world),
            faults: Mutex::new(Faults::default()),
        }
    }

    /// Locks the world (a poisoned lock is taken over: the state stays usable).
    pub fn lock(&self) -> MutexGuard<'_, World> {
        self.world
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The event log.
    pub fn log(&self) -> &Arc<EventLog> {
        &self.log
    }

    /// Locks the faults.
    pub fn faults(&self) -> MutexGuard<'_, Faults> {
        self.faults
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Query parameters, last one wins.
pub type Query = BTreeMap<String, String>;

/// A JSON response.
pub fn json_response(code: u16, v: &Value) -> Response {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        v.to_string(),
    )
        .into_response()
}

/// A response whose JSON body is already rendered.
pub fn raw_json_response(code: u16, body: String) -> Response {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// An error response with its `Status` body.
pub fn error_response(e: &ApiError) -> Response {
    json_response(e.code, &e.to_status())
}

/// The router serving the API.
pub fn router(shared: Arc<Shared>) -> axum::Router {
    axum::Router::new()
        .nest(super::control::PREFIX, super::control::router())
        .fallback(handle)
        .with_state(shared)
}

async fn handle(State(sh): State<Arc<Shared>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_string();
    let query: Query = parts
        .uri
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    let (latency, fault) = {
        let mut f = sh.faults();
        (
            f.delay_for(parts.method.as_str(), &path),
            f.take(parts.method.as_str(), &path),
        )
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    if let Some(code) = fault {
        return error_response(&ApiError::new(
            code,
            reason_for(code),
            format!("injected fault: {code}"),
        ));
    }
    let bytes = match axum::body::to_bytes(body, 64 << 20).await {
        Ok(b) => b,
        Err(e) => return error_response(&ApiError::bad_request(e.to_string())),
    };
    match route(&sh, &parts.method, &parts.headers, &path, &query, &bytes).await {
        Ok(r) => r,
        Err(e) => error_response(&e),
    }
}

/// A parsed resource path.
#[derive(Debug, Clone)]
pub struct Target {
    /// The resource type.
    pub rt: ResourceType,
    /// Namespace ("" for cluster scope or all namespaces).
    pub ns: String,
    /// Object name.
    pub name: Option<String>,
    /// Subresource.
    pub sub: Option<String>,
}

fn not_found_path() -> ApiError {
    ApiError::new(404, "NotFound", "the server could not find the requested resource")
        .with_details(json!({"causes": [{"reason": "UnexpectedServerResponse", "message": "404 page not found"}]}))
}

fn parse_target(w: &World, path: &str) -> Result<Option<Target>, ApiError> {
    let segs: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let (group, version, rest) = match segs.as_slice() {
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return Ok(None),
    };
    if rest.is_empty() {
        return Ok(None);
    }
    let namespaced_res = |p: &str| {
        w.kinds
            .find(group, version, p)
            .is_some_and(|t| t.namespaced)
    };
    let (ns, rest) = match rest {
        ["namespaces", ns, plural, more @ ..] if namespaced_res(plural) => (ns.to_string(), {
            let mut v = vec![*plural];
            v.extend(more);
            v
        }),
        _ => (String::new(), rest.to_vec()),
    };
    let Some(rt) = w.kinds.find(group, version, rest[0]).cloned() else {
        return Err(not_found_path());
    };
    if rest.len() > 3 {
        return Err(not_found_path());
    }
    Ok(Some(Target {
        rt,
        ns,
        name: rest.get(1).map(|s| s.to_string()),
        sub: rest.get(2).map(|s| s.to_string()),
    }))
}

fn version_info() -> Value {
    json!({
        "major": "1", "minor": "33", "gitVersion": "v1.33.0", "gitCommit": "lab", "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.24.0", "compiler": "gc", "platform": "linux/amd64",
    })
}

fn manager(q: &Query, headers: &HeaderMap) -> String {
    if let Some(m) = q.get("fieldManager") {
        return m.clone();
    }
    let ua = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("unknown");
    ua.split('/').next().unwrap_or("unknown").to_string()
}

fn write_opts(q: &Query, headers: &HeaderMap) -> WriteOpts {
    WriteOpts {
        dry_run: q.get("dryRun").is_some_and(|v| v == "All"),
        manager: manager(q, headers),
        subresource: String::new(),
    }
}

/// Parses a JSON body (YAML is accepted when it is JSON, as kube and kubectl send).
pub fn parse_body(bytes: &[u8]) -> Result<Value, ApiError> {
    if bytes.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_slice(bytes).map_err(|e| ApiError::bad_request(format!("the body of the request was in an unknown format - accepted media types include: application/json, application/yaml: {e}")))
}

fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_string()
}

fn wants_aggregated(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("as=APIGroupDiscoveryList") && a.contains("v=v2"))
}

fn wants_table(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("as=Table"))
}

async fn route(
    sh: &Arc<Shared>,
    method: &Method,
    headers: &HeaderMap,
    path: &str,
    q: &Query,
    body: &[u8],
) -> Result<Response, ApiError> {
    match path.trim_end_matches('/') {
        "/version" => return Ok(json_response(200, &version_info())),
        "/healthz" | "/readyz" | "/livez" => return Ok((StatusCode::OK, "ok").into_response()),
        // An empty OpenAPI v2 document (an empty protobuf message): kubectl's client-side
        // validation then knows no schema and accepts the objects, as with --validate=false.
        "/openapi/v2" => {
            return Ok((
                StatusCode::OK,
                [(
                    header::CONTENT_TYPE,
                    "application/com.github.proto-openapi.spec.v2.v1.0+protobuf",
                )],
                "",
            )
                .into_response());
        }
        _ => {}
    }
    let target = {
        let w = sh.lock();
        match parse_target(&w, path)? {
            Some(t) => t,
            None => {
                let trimmed = path.trim_end_matches('/');
                if method == Method::GET
                    && (trimmed == "/api" || trimmed == "/apis")
                    && wants_aggregated(headers)
                {
                    let doc = w.kinds.aggregated(trimmed == "/api");
                    return Ok((
                        StatusCode::OK,
                        [(
                            header::CONTENT_TYPE,
                            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList",
                        )],
                        doc.to_string(),
                    )
                        .into_response());
                }
                return match (method, w.kinds.discovery(path)) {
                    (&Method::GET, Some(doc)) => Ok(json_response(200, &doc)),
                    _ => Err(not_found_path()),
                };
            }
        }
    };
    let Target { rt, ns, name, sub } = target;
    if rt.namespaced && name.is_some() && ns.is_empty() {
        return Err(not_found_path());
    }
    let table = wants_table(headers);
    // The double decodes JSON (and YAML that is JSON) only; protobuf and CBOR bodies are refused
    // the way kube-apiserver refuses a type it cannot decode.
    if matches!(*method, Method::POST | Method::PUT) && !body.is_empty() {
        let ct = content_type(headers);
        if !(ct == "application/json" || ct == "application/yaml" || ct.is_empty()) {
            return Err(ApiError::new(
                415,
                "UnsupportedMediaType",
                format!(
                    "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml; got {ct:?}"
                ),
            ));
        }
    }
    match (name, sub.as_deref(), method.clone()) {
        (None, None, Method::GET) => {
            if q.get("watch").is_some_and(|v| v == "true" || v == "1") {
                return watch::serve(sh.clone(), &rt, &ns, q);
            }
            let page = list::page(&sh.lock(), &rt, &ns, q)?;
            // Rendered after the lock is released.
            if table {
                return Ok(json_response(200, &table::table(&rt, &page.to_value(&rt))));
            }
            Ok(raw_json_response(200, page.to_json(&rt)))
        }
        (None, None, Method::POST) => {
            let obj = parse_body(body)?;
            let mut w = sh.lock();
            let created = w.create(&rt, &ns, obj, &write_opts(q, headers))?;
            Ok(json_response(201, &created))
        }
        (None, None, Method::DELETE) => {
            let mut w = sh.lock();
            let items: Vec<Value> = list::page(&w, &rt, &ns, q)?.to_value(&rt)["items"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let opts = delete_opts(q, body)?;
            for it in &items {
                let n = it["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                let nns = it["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                w.delete(&rt, &nns, &n, &opts)?;
            }
            Ok(json_response(
                200,
                &json!({"kind": format!("{}List", rt.kind), "apiVersion": rt.api_version(), "metadata": {}, "items": items}),
            ))
        }
        (Some(name), None, m) => object_verb(sh, &rt, &ns, &name, &m, headers, q, body, table),
        (Some(name), Some("status"), m) => status_verb(sh, &rt, &ns, &name, &m, headers, q, body),
        (Some(name), Some("scale"), m) if rt.has_sub("scale") => {
            scale::serve(sh, &rt, &ns, &name, &m, headers, q, body)
        }
        (Some(name), Some("eviction"), Method::POST) if rt.kind == "Pod" => {
            eviction::serve(sh, &rt, &ns, &name, q, body)
        }
        (Some(name), Some("log"), Method::GET) if rt.kind == "Pod" => {
            logs::serve(sh.clone(), &ns, &name, q)
        }
        (_, Some(s), _) if ["scale", "eviction", "log", "status"].contains(&s) => {
            Err(ApiError::method_not_allowed())
        }
        (_, Some(_), _) => Err(not_found_path()),
        _ => Err(ApiError::method_not_allowed()),
    }
}

/// Parses DELETE options from the query and the body.
pub fn delete_opts(q: &Query, body: &[u8]) -> Result<DeleteOpts, ApiError> {
    let b = parse_body(body)?;
    let grace = q
        .get("gracePeriodSeconds")
        .and_then(|s| s.parse().ok())
        .or_else(|| b["gracePeriodSeconds"].as_i64());
    let propagation = q
        .get("propagationPolicy")
        .cloned()
        .or_else(|| b["propagationPolicy"].as_str().map(str::to_string))
        .or_else(|| match b["orphanDependents"].as_bool() {
            Some(true) => Some("Orphan".into()),
            _ => None,
        });
    if let Some(p) = &propagation
        && !["Background", "Foreground", "Orphan"].contains(&p.as_str())
    {
        return Err(ApiError::invalid(
            "",
            "DeleteOptions",
            "",
            &[(
                "FieldValueNotSupported",
                "propagationPolicy",
                &format!(
                    "Unsupported value: \"{p}\": supported values: \"Foreground\", \"Background\", \"Orphan\""
                ),
            )],
        ));
    }
    let dry_run = q.get("dryRun").is_some_and(|v| v == "All")
        || b["dryRun"]
            .as_array()
            .is_some_and(|a| a.iter().any(|v| v == "All"));
    Ok(DeleteOpts {
        propagation,
        grace,
        uid: b["preconditions"]["uid"].as_str().map(str::to_string),
        rv: b["preconditions"]["resourceVersion"]
            .as_str()
            .map(str::to_string),
        dry_run,
    })
}

#[allow(clippy::too_many_arguments)]
fn object_verb(
    sh: &Arc<Shared>,
    rt: &ResourceType,
    ns: &str,
    name: &str,
    m: &Method,
    headers: &HeaderMap,
    q: &Query,
    body: &[u8],
    table: bool,
) -> Result<Response, ApiError> {
    let subject = Subject {
        group: &rt.group,
        resource: &rt.plural,
        name,
    };
    let store_ns = if rt.namespaced { ns } else { "" };
    match *m {
        Method::GET => {
            let (obj, rv) = {
                let w = sh.lock();
                let obj = w
                    .store
                    .get_arc(&gr(rt), store_ns, name)
                    .cloned()
                    .ok_or_else(|| ApiError::not_found(subject))?;
                (obj, w.store.rv())
            };
            if table {
                let obj = with_version(rt, (*obj).clone());
                let list = json!({"metadata": {"resourceVersion": rv.to_string()}, "items": [obj]});
                return Ok(json_response(200, &table::table(rt, &list)));
            }
            Ok(raw_json_response(200, list::object_json(rt, &obj)))
        }
        Method::PUT => {
            let obj = parse_body(body)?;
            let mut w = sh.lock();
            let out = w.update(rt, ns, name, obj, Part::Main, &write_opts(q, headers))?;
            Ok(json_response(200, &with_version(rt, out)))
        }
        Method::PATCH => {
            let patch_body = parse_body(body)?;
            let ct = content_type(headers);
            let mut w = sh.lock();
            let (out, code) = patch_object(&mut w, rt, ns, name, &ct, &patch_body, q, headers, "")?;
            Ok(json_response(code, &with_version(rt, out)))
        }
        Method::DELETE => {
            let opts = delete_opts(q, body)?;
            let mut w = sh.lock();
            let out = w.delete(rt, ns, name, &opts)?;
            Ok(json_response(200, &out))
        }
        _ => Err(ApiError::method_not_allowed()),
    }
}

/// The object as the requested version serves it.
pub fn with_version(rt: &ResourceType, mut obj: Value) -> Value {
    if obj.is_object() && obj["kind"] != "Status" {
        obj["apiVersion"] = json!(rt.api_version());
    }
    obj
}

/// Applies a PATCH of any supported type; `sub` is "" or "status". Returns the object and the
/// HTTP code (201 when apply created it).
#[allow(clippy::too_many_arguments)]
pub fn patch_object(
    w: &mut World,
    rt: &ResourceType,
    ns: &str,
    name: &str,
    ct: &str,
    body: &Value,
    q: &Query,
    headers: &HeaderMap,
    sub: &str,
) -> Result<(Value, u16), ApiError> {
    let store_ns = if rt.namespaced { ns } else { "" };
    let current = w.store.get(&gr(rt), store_ns, name).cloned();
    let opts = write_opts(q, headers);
    let part = if sub == "status" {
        Part::Status
    } else {
        Part::Main
    };
    let subject = Subject {
        group: &rt.group,
        resource: &rt.plural,
        name,
    };
    if ct == "application/apply-patch+yaml" {
        let Some(manager) = q.get("fieldManager") else {
            return Err(ApiError::bad_request(
                "PATCH, fieldManager is required for apply requests",
            ));
        };
        let force = q.get("force").is_some_and(|v| v == "true");
        if !body.is_object() {
            return Err(ApiError::bad_request(
                "the body of an apply patch must be an object",
            ));
        }
        if let Some(n) = body["metadata"]["name"].as_str()
            && n != name
        {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({n}) does not match the name on the URL ({name})"
            )));
        }
        let applied = fields::apply(
            current.as_ref(),
            body,
            manager,
            force,
            sub,
            &now_rfc3339(),
            rt.list_types(),
        )?;
        let mut obj = applied.object;
        return match current {
            None => {
                if sub == "status" {
                    return Err(ApiError::not_found(subject));
                }
                obj["metadata"]["name"] = json!(name);
                let mf = obj["metadata"]["managedFields"].clone();
                let mut created = w.create(
                    rt,
                    ns,
                    obj,
                    &WriteOpts {
                        dry_run: opts.dry_run,
                        manager: String::new(),
                        subresource: String::new(),
                    },
                )?;
                if !opts.dry_run {
                    // Keep what the create hooks did (a new CRD is established at once).
                    let store_ns = if rt.namespaced { ns } else { "" };
                    if let Some(now) = w.store.get(&gr(rt), store_ns, name) {
                        created = now.clone();
                    }
                    created["metadata"]["managedFields"] = mf;
                    created = w.store.put(&gr(rt), created);
                }
                Ok((created, 201))
            }
            Some(_) => {
                let part = if sub == "status" {
                    Part::Status
                } else {
                    Part::Applied
                };
                Ok((w.update(rt, ns, name, obj, part, &opts)?, 200))
            }
        };
    }
    let Some(mut obj) = current else {
        return Err(ApiError::not_found(subject));
    };
    match ct {
        "application/merge-patch+json" => patch::merge_patch(&mut obj, body),
        "application/strategic-merge-patch+json" => {
            if rt.crd.is_some() {
                return Err(ApiError::unsupported_patch(ct));
            }
            patch::strategic_merge(&mut obj, body)?
        }
        "application/json-patch+json" => patch::json_patch(&mut obj, body)?,
        other => return Err(ApiError::unsupported_patch(other)),
    }
    Ok((w.update(rt, ns, name, obj, part, &opts)?, 200))
}

#[allow(clippy::too_many_arguments)]
fn status_verb(
    sh: &Arc<Shared>,
    rt: &ResourceType,
    ns: &str,
    name: &str,
    m: &Method,
    headers: &HeaderMap,
    q: &Query,
    body: &[u8],
) -> Result<Response, ApiError> {
    if !rt.has_sub("status") {
        return Err(not_found_path());
    }
    match *m {
        Method::GET => object_verb(sh, rt, ns, name, m, headers, q, body, false),
        Method::PUT => {
            let obj = parse_body(body)?;
            let mut w = sh.lock();
            let out = w.update(rt, ns, name, obj, Part::Status, &write_opts(q, headers))?;
            Ok(json_response(200, &out))
        }
        Method::PATCH => {
            let b = parse_body(body)?;
            let mut w = sh.lock();
            let (out, code) = patch_object(
                &mut w,
                rt,
                ns,
                name,
                &content_type(headers),
                &b,
                q,
                headers,
                "status",
            )?;
            Ok(json_response(code, &out))
        }
        _ => Err(ApiError::method_not_allowed()),
    }
}

/// Used by the watch and log streams: a chunked response body from a channel.
pub fn streaming(
    content_type: &'static str,
    rx: tokio::sync::mpsc::Receiver<Result<bytes::Bytes, std::io::Error>>,
) -> Response {
    let stream = tokio_stream::wrappers::ReceiverStream::new(rx);
    Response::builder()
        .status(200)
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}
