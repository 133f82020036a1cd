//! WATCH: one JSON event per line, from a resourceVersion, with bookmarks, `timeoutSeconds`,
//! and an ERROR event with a 410 `Expired` Status once the version is compacted away.

use std::sync::Arc;
use std::time::Duration;

use axum::response::Response;
use bytes::Bytes;
use serde_json::{Value, json};

use super::kinds::ResourceType;
use super::selectors::{FieldSelector, LabelSelector};
use super::server::{Query, Shared, streaming};
use super::status::ApiError;
use super::store::{EventType, gr};

/// How often a bookmark is sent when the client allows them.
const BOOKMARK_EVERY: Duration = Duration::from_secs(1);

fn line_json(kind: &str, json: &str) -> Result<Bytes, std::io::Error> {
    Ok(Bytes::from(format!(
        "{{\"type\":\"{kind}\",\"object\":{json}}}\n"
    )))
}

fn line(kind: &str, object: &Value) -> Result<Bytes, std::io::Error> {
    let mut s = json!({"type": kind, "object": object}).to_string();
    s.push('\n');
    Ok(Bytes::from(s))
}

/// Starts a watch stream.
pub fn serve(
    sh: Arc<Shared>,
    rt: &ResourceType,
    ns: &str,
    q: &Query,
) -> Result<Response, ApiError> {
    let labels = LabelSelector::parse(
        q.get("labelSelector")
            .map(String::as_str)
            .unwrap_or_default(),
    )?;
    let fields = FieldSelector::parse(
        q.get("fieldSelector")
            .map(String::as_str)
            .unwrap_or_default(),
        &rt.kind,
    )?;
    let since: Option<u64> = match q.get("resourceVersion").map(String::as_str) {
        None | Some("") | Some("0") => None,
        Some(v) => Some(
            v.parse()
                .map_err(|_| ApiError::bad_request(format!("invalid resource version: {v}")))?,
        ),
    };
    let timeout = Duration::from_secs(
        q.get("timeoutSeconds")
            .and_then(|t| t.parse().ok())
            .unwrap_or(1800),
    );
    let bookmarks = q.get("allowWatchBookmarks").is_some_and(|v| v == "true");
    let (tx, rx) = tokio::sync::mpsc::channel(256);
    let rt = rt.clone();
    let key = gr(&rt);
    let scope = if rt.namespaced && !ns.is_empty() {
        Some(ns.to_string())
    } else {
        None
    };
    // Subscribed before the starting point is read: no change can slip in between.
    let log = sh.log().clone();
    let mut changed = log.subscribe();
    let mut dropped = sh.faults().drop_watches.subscribe();
    let api_version = rt.api_version();
    let matches = move |o: &Value| {
        labels.matches(o)
            && fields.matches(o)
            && scope
                .as_deref()
                .is_none_or(|s| o["metadata"]["namespace"].as_str() == Some(s))
    };
    tokio::spawn(async move {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut at = match since {
            Some(rv) => rv,
            None => {
                // The initial state and its resourceVersion are read under one lock; the
                // objects are shared, and serialized after the lock is released.
                let (current, start) = {
                    let w = sh.lock();
                    let current: Vec<Arc<Value>> = w
                        .store
                        .iter(&key, None)
                        .filter(|o| matches(o))
                        .cloned()
                        .collect();
                    (current, w.store.rv())
                };
                for o in current {
                    let bytes = line_json("ADDED", &super::list::object_json(&rt, &o));
                    if tx.send(bytes).await.is_err() {
                        return;
                    }
                }
                start
            }
        };
        dropped.mark_unchanged();
        loop {
            // Only the event log's lock is taken: watches never wait on the world.
            match log.since(&key, at) {
                Err(oldest) => {
                    let _ = tx
                        .send(line("ERROR", &ApiError::expired(at, oldest).to_status()))
                        .await;
                    return;
                }
                Ok(events) => {
                    for e in events {
                        at = e.rv;
                        // An object that stops matching the selectors is sent as DELETED, one
                        // that starts matching as ADDED, as the API server's watch cache does.
                        let was = e.before.as_deref().is_some_and(&matches);
                        let now = e.kind != EventType::Deleted && matches(&e.object);
                        let kind = match (was, now) {
                            (false, true) => EventType::Added,
                            (true, true) => EventType::Modified,
                            (true, false) => EventType::Deleted,
                            (false, false) => continue,
                        };
                        let bytes = if e.object["apiVersion"] == api_version.as_str() {
                            Ok(e.line(kind))
                        } else {
                            let mut o = (*e.object).clone();
                            o["apiVersion"] = json!(api_version);
                            line(kind.as_str(), &o)
                        };
                        if tx.send(bytes).await.is_err() {
                            return;
                        }
                    }
                }
            }
            let tick = tokio::time::sleep(BOOKMARK_EVERY);
            tokio::select! {
                r = changed.changed() => if r.is_err() { return },
                _ = dropped.changed() => return,
                _ = tokio::time::sleep_until(deadline) => return,
                _ = tick => {
                    if bookmarks {
                        let latest = log.latest();
                        let b = json!({"kind": rt.kind, "apiVersion": api_version, "metadata": {"resourceVersion": latest.max(at).to_string(), "annotations": {"k8s.io/initial-events-end": "true"}}});
                        if tx.send(line("BOOKMARK", &b)).await.is_err() {
                            return;
                        }
                    }
                }
            }
        }
    });
    Ok(streaming("application/json", rx))
}
