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
use super::store::gr;

/// How often a bookmark is sent when the client allows them.
const BOOKMARK_EVERY: Duration = Duration::from_secs(1);

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
        let mut at = match since {
            Some(rv) => rv,
            None => {
                let initial: Vec<Value> = sh
                    .lock()
                    .store
                    .list_owned(&key, None)
                    .into_iter()
                    .filter(|o| matches(o))
                    .collect();
                for mut o in initial {
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
                        if !matches(&e.object) {
                            continue;
                        }
                        let mut o = e.object;
                        o["apiVersion"] = json!(api_version);
                        if tx.send(line(e.kind.as_str(), &o)).await.is_err() {
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
