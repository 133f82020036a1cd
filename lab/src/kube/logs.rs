//! `pods/log`: container log buffers with `container`, `follow`, `timestamps`, `sinceSeconds`,
//! `sinceTime`, `tailLines`, `limitBytes` and `previous`.

use std::sync::Arc;

use axum::response::Response;
use bytes::Bytes;

use super::pod::container_names;
use super::server::{Query, Shared, streaming};
use super::status::{ApiError, Subject};
use super::world::{LogLine, World};

/// Renders a line as the kubelet does (RFC 3339 with nanoseconds, then a space).
fn render(l: &LogLine, timestamps: bool) -> String {
    if timestamps {
        format!("{:.9} {}\n", l.ts, l.text)
    } else {
        format!("{}\n", l.text)
    }
}

struct Params {
    container: String,
    follow: bool,
    timestamps: bool,
    since: Option<jiff::Timestamp>,
    tail: Option<usize>,
    limit: Option<usize>,
}

fn params(w: &World, ns: &str, name: &str, q: &Query) -> Result<Params, ApiError> {
    let Some(pod) = w.get("", "pods", ns, name) else {
        return Err(ApiError::not_found(Subject {
            group: "",
            resource: "pods",
            name,
        }));
    };
    let names = container_names(&pod);
    let container = match q.get("container") {
        Some(c) if !c.is_empty() => c.clone(),
        _ if names.len() == 1 => names[0].clone(),
        _ => {
            return Err(ApiError::bad_request(format!(
                "a container name must be specified for pod {name}, choose one of: [{}]",
                names.join(" ")
            )));
        }
    };
    if !names.contains(&container) {
        return Err(ApiError::bad_request(format!(
            "container {container} is not valid for pod {name}"
        )));
    }
    let started = pod["status"]["containerStatuses"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| {
            c["name"] == container.as_str()
                && (c["state"]["running"].is_object() || c["state"]["terminated"].is_object())
        });
    if !started {
        return Err(ApiError::bad_request(format!(
            "container \"{container}\" in pod \"{name}\" is waiting to start: ContainerCreating"
        )));
    }
    if q.get("previous").is_some_and(|v| v == "true") {
        return Err(ApiError::bad_request(format!(
            "previous terminated container \"{container}\" in pod \"{name}\" not found"
        )));
    }
    let since = match (q.get("sinceSeconds"), q.get("sinceTime")) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(
                "",
                "PodLogOptions",
                "",
                &[(
                    "FieldValueForbidden",
                    "sinceTime",
                    "Forbidden: at most one of `sinceTime` or `sinceSeconds` may be specified",
                )],
            ));
        }
        (Some(s), None) => {
            let secs: i64 = s
                .parse()
                .map_err(|_| ApiError::bad_request(format!("invalid sinceSeconds {s}")))?;
            Some(jiff::Timestamp::now() - jiff::SignedDuration::from_secs(secs))
        }
        (None, Some(t)) => Some(
            t.parse::<jiff::Timestamp>()
                .map_err(|e| ApiError::bad_request(format!("invalid sinceTime {t}: {e}")))?,
        ),
        (None, None) => None,
    };
    Ok(Params {
        container,
        follow: q.get("follow").is_some_and(|v| v == "true"),
        timestamps: q.get("timestamps").is_some_and(|v| v == "true"),
        since,
        tail: q.get("tailLines").and_then(|t| t.parse().ok()),
        limit: q.get("limitBytes").and_then(|t| t.parse().ok()),
    })
}

/// Serves a log request (streamed when `follow`).
pub fn serve(sh: Arc<Shared>, ns: &str, name: &str, q: &Query) -> Result<Response, ApiError> {
    let (p, initial, mut next, mut changed, mut store_changed) = {
        let w = sh.lock();
        let p = params(&w, ns, name, q)?;
        let lines: Vec<LogLine> = w
            .logs
            .get(&(ns.to_string(), name.to_string(), p.container.clone()))
            .cloned()
            .unwrap_or_default();
        let total = lines.len();
        let mut sel: Vec<&LogLine> = lines
            .iter()
            .filter(|l| p.since.is_none_or(|s| l.ts >= s))
            .collect();
        if let Some(t) = p.tail {
            let skip = sel.len().saturating_sub(t);
            sel.drain(..skip);
        }
        let text: String = sel.iter().map(|l| render(l, p.timestamps)).collect();
        (
            p,
            text,
            total,
            w.logs_changed.subscribe(),
            w.store.subscribe(),
        )
    };
    let mut budget = p.limit.unwrap_or(usize::MAX);
    let mut first = initial.into_bytes();
    first.truncate(budget);
    budget -= first.len();
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    let key = (ns.to_string(), name.to_string(), p.container.clone());
    let (ns, name) = (ns.to_string(), name.to_string());
    tokio::spawn(async move {
        if !first.is_empty() && tx.send(Ok(Bytes::from(first))).await.is_err() {
            return;
        }
        if !p.follow {
            return;
        }
        loop {
            if budget == 0 {
                return;
            }
            tokio::select! {
                r = changed.changed() => if r.is_err() { return },
                r = store_changed.changed() => if r.is_err() { return },
            }
            let (chunk, gone) = {
                let w = sh.lock();
                let lines = w
                    .logs
                    .get(&key)
                    .map(|l| l[next.min(l.len())..].to_vec())
                    .unwrap_or_default();
                next += lines.len();
                let text: String = lines.iter().map(|l| render(l, p.timestamps)).collect();
                let gone = w.get("", "pods", &ns, &name).is_none_or(|pod| {
                    !super::pod::is_active(&pod) && pod["metadata"]["deletionTimestamp"].is_null()
                });
                (text, gone)
            };
            if !chunk.is_empty() {
                let mut b = chunk.into_bytes();
                b.truncate(budget);
                budget -= b.len();
                if tx.send(Ok(Bytes::from(b))).await.is_err() {
                    return;
                }
            }
            if gone {
                return;
            }
        }
    });
    Ok(streaming("text/plain", rx))
}
