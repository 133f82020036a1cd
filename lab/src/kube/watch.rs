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
    let (mut changed, mut dropped, start) = {
        let w = sh.lock();
        (
            w.store.subscribe(),
            w.faults.drop_watches.subscribe(),
            w.store.rv(),
        )
    };
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
        // The initial state and its resourceVersion are read under one lock.
        let (current, start) = match since {
            Some(_) => (Vec::new(), start),
            None => {
                let w = sh.lock();
                (
                    w.store
                        .list_owned(&key, None)
                        .into_iter()
                        .filter(|o| matches(o))
                        .collect::<Vec<_>>(),
                    w.store.rv(),
                )
            }
        };
        let mut at = match since {
            Some(rv) => rv,
            None => {
                for mut o in current {
                    o["apiVersion"] = json!(api_version);
                    if tx.send(line("ADDED", &o)).await.is_err() {
                        return;
                    }
                }
                start
            }
        };
        dropped.mark_unchanged();
        loop {
            let events = sh.lock().store.events_since(&key, at);
            match events {
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
                        let was = e.before.as_ref().is_some_and(&matches);
                        let now = e.kind != EventType::Deleted && matches(&e.object);
                        let kind = match (was, now) {
                            (false, true) => "ADDED",
                            (true, true) => "MODIFIED",
                            (true, false) => "DELETED",
                            (false, false) => continue,
                        };
                        let bytes = if e.object["apiVersion"] == api_version.as_str() {
                            line_json(kind, &e.json)
                        } else {
                            let mut o = (*e.object).clone();
                            o["apiVersion"] = json!(api_version);
                            line(kind, &o)
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
                        let latest = sh.lock().store.rv();
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
