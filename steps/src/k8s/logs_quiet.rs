//! `kube.logs_quiet`: follows the logs of every selected pod (each container, or the one
//! named) with timestamps, and is done once none has logged anything for `quiet_for`.
//! Pods are watched meanwhile: a new pod is followed from its start, a pod that goes away
//! is dropped, a stream that ends (container restart, dropped connection) is reopened and
//! lines already seen are skipped by their timestamp.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, SystemTime};

use futures::{AsyncBufReadExt, StreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{ListParams, LogParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Api, ResourceExt};
use rok_plan_engine::duration::{DisplayDuration, parse_duration};
use rok_plan_engine::step::{Fields, StepContext, StepOutcome};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::client::{Kube, call, say};
use super::error::KubeError;
use super::opt_text;

/// How often a pod that keeps logging is reported.
const REPORT_EVERY: Duration = Duration::from_secs(5);
/// Pause before reopening a log stream that ended or could not be opened.
const REOPEN_AFTER: Duration = Duration::from_secs(1);

/// What a follower tells the step.
enum Heard {
    /// The stream was opened (or could not be, e.g. the container is not running yet).
    Opened(String),
    /// A line, with its timestamp.
    Line {
        pod: String,
        at: SystemTime,
        text: String,
    },
}

/// Aborts every follower when the step ends, however it ends.
#[derive(Default)]
struct Followers(HashMap<String, Vec<JoinHandle<()>>>);

impl Drop for Followers {
    fn drop(&mut self) {
        for h in self.0.values().flatten() {
            h.abort();
        }
    }
}

pub(crate) async fn run(
    kube: &Kube,
    ctx: &StepContext,
    f: &Fields,
) -> Result<StepOutcome, KubeError> {
    let selector = opt_text(f, "selector")
        .ok_or_else(|| KubeError::field("selector", "is empty"))?
        .to_string();
    let quiet_for = parse_duration(opt_text(f, "quiet_for").unwrap_or(""))
        .map_err(|e| KubeError::field("quiet_for", e.to_string()))?;
    let container = opt_text(f, "container").map(str::to_string);
    let conn = kube.conn(f).await?;
    let ns = opt_text(f, "namespace")
        .unwrap_or(&conn.namespace)
        .to_string();
    let pods: Api<Pod> = Api::namespaced(conn.client.clone(), &ns);
    if conn.dry_run {
        let lp = ListParams::default().labels(&selector);
        let found = call(ctx, &format!("LIST pods in {ns}"), || pods.list(&lp)).await?;
        say(
            ctx,
            format!(
                "would follow the logs of {} pod(s) selected by {selector} in {ns}",
                found.items.len()
            ),
        );
        return Ok(StepOutcome::done());
    }

    let started = SystemTime::now();
    let since_seconds = i64::try_from(quiet_for.as_secs().max(1)).unwrap_or(i64::MAX);
    let (tx, mut rx) = mpsc::unbounded_channel::<Heard>();
    let mut followers = Followers::default();
    let mut unopened: HashSet<String> = HashSet::new();
    let mut last_activity = started.checked_sub(quiet_for).unwrap_or(started);
    let mut last_by_pod: BTreeMap<String, (SystemTime, String)> = BTreeMap::new();
    let mut reported: HashMap<String, SystemTime> = HashMap::new();
    let mut listed = false;

    let config = watcher::Config::default().labels(&selector);
    let stream = watcher::watcher(pods.clone(), config).default_backoff();
    let mut stream = std::pin::pin!(stream);

    loop {
        let now = SystemTime::now();
        let quiet_at = last_activity + quiet_for;
        let until_quiet = quiet_at.duration_since(now).unwrap_or(Duration::ZERO);
        if listed && unopened.is_empty() && until_quiet.is_zero() {
            say(
                ctx,
                format!(
                    "quiet: none of the {} followed pod(s) logged for {}",
                    followers.0.len(),
                    DisplayDuration(quiet_for)
                ),
            );
            return Ok(StepOutcome::done());
        }
        tokio::select! {
            item = stream.next() => match item {
                Some(Ok(Event::InitDone)) => listed = true,
                Some(Ok(Event::Apply(p) | Event::InitApply(p))) => {
                    let key = p.name_any();
                    if !followers.0.contains_key(&key) && p.metadata.deletion_timestamp.is_none() {
                        let containers: Vec<String> = match &container {
                            Some(c) => vec![c.clone()],
                            None => p.spec.iter().flat_map(|s| s.containers.iter()).map(|c| c.name.clone()).collect(),
                        };
                        say(ctx, format!("following {key} ({})", containers.join(", ")));
                        let handles = containers.into_iter().map(|c| {
                            unopened.insert(format!("{key}/{c}"));
                            tokio::spawn(follow(pods.clone(), key.clone(), c, since_seconds, tx.clone()))
                        }).collect();
                        followers.0.insert(key, handles);
                    }
                }
                Some(Ok(Event::Delete(p))) => {
                    let key = p.name_any();
                    if let Some(hs) = followers.0.remove(&key) {
                        hs.iter().for_each(JoinHandle::abort);
                        unopened.retain(|k| !k.starts_with(&format!("{key}/")));
                        say(ctx, format!("{key} went away"));
                    }
                }
                Some(Ok(Event::Init)) => {}
                Some(Err(e)) => say(ctx, format!("watch of pods interrupted, resuming: {e}")),
                None => return Err(KubeError::Cancelled("the pod watch ended".into())),
            },
            Some(heard) = rx.recv() => match heard {
                Heard::Opened(key) => { unopened.remove(&key); }
                Heard::Line { pod, at, text } => {
                    let now = SystemTime::now();
                    // A clock ahead of ours must not push the quiet time into the future.
                    let at = at.min(now);
                    if at > last_activity {
                        last_activity = at;
                    }
                    let due = reported.get(&pod).is_none_or(|t| now.duration_since(*t).unwrap_or_default() >= REPORT_EVERY);
                    if due {
                        reported.insert(pod.clone(), now);
                        say(ctx, format!("{pod} logged: {}", clip(&text)));
                    }
                    last_by_pod.insert(pod, (at, text));
                }
            },
            () = tokio::time::sleep(until_quiet.max(Duration::from_millis(50))) => {}
            () = ctx.cancellation().cancelled() => {
                let now = SystemTime::now();
                let busy: Vec<String> = last_by_pod
                    .iter()
                    .filter(|(_, (at, _))| now.duration_since(*at).unwrap_or_default() < quiet_for)
                    .map(|(pod, (at, text))| format!("{pod} ({} ago: {})", DisplayDuration(Duration::from_secs(now.duration_since(*at).unwrap_or_default().as_secs())), clip(text)))
                    .collect();
                return Err(KubeError::Cancelled(format!(
                    "never quiet for {}: still logging: {}",
                    DisplayDuration(quiet_for),
                    if busy.is_empty() { "(none in the last moments)".to_string() } else { busy.join(", ") }
                )));
            }
        }
    }
}

/// Follows one container's log until aborted, reopening the stream when it ends.
async fn follow(
    pods: Api<Pod>,
    pod: String,
    container: String,
    since_seconds: i64,
    tx: mpsc::UnboundedSender<Heard>,
) {
    let key = format!("{pod}/{container}");
    let mut last_seen: Option<SystemTime> = None;
    // The recent history in one answer first: the pod counts as followed only once all of
    // it is read, so a line still in flight cannot make the pods look quiet.
    let history = LogParams {
        timestamps: true,
        container: Some(container.clone()),
        since_seconds: Some(since_seconds),
        ..LogParams::default()
    };
    if let Ok(text) = pods.logs(&pod, &history).await {
        for line in text.lines() {
            let (at, text) = split_timestamp(line);
            last_seen = Some(last_seen.map_or(at, |s| s.max(at)));
            let heard = Heard::Line {
                pod: pod.clone(),
                at,
                text: text.to_string(),
            };
            if tx.send(heard).is_err() {
                return;
            }
        }
    }
    loop {
        let lp = LogParams {
            follow: true,
            timestamps: true,
            container: Some(container.clone()),
            since_seconds: Some(since_seconds),
            ..LogParams::default()
        };
        let opened = pods.log_stream(&pod, &lp).await;
        if tx.send(Heard::Opened(key.clone())).is_err() {
            return;
        }
        if let Ok(reader) = opened {
            let mut lines = reader.lines();
            while let Some(Ok(line)) = lines.next().await {
                let (at, text) = split_timestamp(&line);
                // Reopened streams repeat what was already seen.
                if last_seen.is_some_and(|seen| at <= seen) {
                    continue;
                }
                last_seen = Some(at);
                let heard = Heard::Line {
                    pod: pod.clone(),
                    at,
                    text: text.to_string(),
                };
                if tx.send(heard).is_err() {
                    return;
                }
            }
        }
        tokio::time::sleep(REOPEN_AFTER).await;
    }
}

/// `2026-11-22T08:20:54.123456789Z text` → (time, text); a line without a readable
/// timestamp counts as logged now.
fn split_timestamp(line: &str) -> (SystemTime, &str) {
    match line.split_once(' ') {
        Some((ts, text)) => match humantime::parse_rfc3339(ts) {
            Ok(at) => (at, text),
            Err(_) => (SystemTime::now(), line),
        },
        None => match humantime::parse_rfc3339(line) {
            Ok(at) => (at, ""),
            Err(_) => (SystemTime::now(), line),
        },
    }
}

fn clip(text: &str) -> String {
    const MAX: usize = 160;
    if text.chars().count() <= MAX {
        text.to_string()
    } else {
        format!("{}…", text.chars().take(MAX).collect::<String>())
    }
}
