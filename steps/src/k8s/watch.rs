//! Waiting by watch: the objects a list+watch sees are kept up to date and judged after
//! every change. kube's `watcher` re-watches from the last resourceVersion (re-listing
//! after a 410) when a watch drops, so a broken stream costs a reconnect, not the wait.
//! `await_condition` has no timeout of its own; this stops when the attempt is cancelled
//! (the step's `timeout`, Ctrl-C) and says what it was still waiting for.

use std::collections::BTreeMap;
use std::fmt::Debug;

use futures::StreamExt;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Resource, ResourceExt};
use rok_plan_engine::step::StepContext;
use serde::de::DeserializeOwned;

use super::client::say;
use super::error::KubeError;

/// What a judge says about the objects seen so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Verdict {
    /// The wait is over.
    pub(crate) done: bool,
    /// Where things stand, in words (printed when it changes).
    pub(crate) status: String,
}

impl Verdict {
    /// Done, with a last word.
    pub(crate) fn done(status: impl Into<String>) -> Self {
        Self {
            done: true,
            status: status.into(),
        }
    }

    /// Not yet.
    pub(crate) fn waiting(status: impl Into<String>) -> Self {
        Self {
            done: false,
            status: status.into(),
        }
    }
}

/// Watches what `api` + `config` select until `judge` says done, printing each new status.
///
/// # Errors
/// [`KubeError::Cancelled`] with the last status when the attempt is cancelled first.
pub(crate) async fn watch_until<K>(
    ctx: &StepContext,
    api: Api<K>,
    config: watcher::Config,
    mut judge: impl FnMut(&[&K]) -> Verdict,
) -> Result<String, KubeError>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + 'static,
{
    let stream = watcher::watcher(api, config).default_backoff();
    let mut stream = std::pin::pin!(stream);
    let mut objects: BTreeMap<String, K> = BTreeMap::new();
    let mut relisting: BTreeMap<String, K> = BTreeMap::new();
    let mut last_status = String::new();
    let mut last_error = String::new();
    loop {
        let item = tokio::select! {
            item = stream.next() => item,
            () = ctx.cancellation().cancelled() => return Err(KubeError::Cancelled(still(&last_status))),
        };
        let Some(item) = item else {
            // The watcher's stream does not end by itself; treat it like a dropped watch.
            return Err(KubeError::Cancelled(still(&last_status)));
        };
        let changed = match item {
            Ok(Event::Init) => {
                relisting.clear();
                false
            }
            Ok(Event::InitApply(o)) => {
                relisting.insert(key(&o), o);
                false
            }
            Ok(Event::InitDone) => {
                objects = std::mem::take(&mut relisting);
                true
            }
            Ok(Event::Apply(o)) => {
                objects.insert(key(&o), o);
                true
            }
            Ok(Event::Delete(o)) => {
                objects.remove(&key(&o));
                true
            }
            Err(e) => {
                let msg = format!("watch interrupted, resuming: {e}");
                if msg != last_error {
                    say(ctx, &msg);
                    last_error = msg;
                }
                false
            }
        };
        if !changed {
            continue;
        }
        last_error.clear();
        let seen: Vec<&K> = objects.values().collect();
        let verdict = judge(&seen);
        if verdict.status != last_status {
            say(ctx, &verdict.status);
            last_status = verdict.status;
        }
        if verdict.done {
            return Ok(last_status);
        }
    }
}

fn still(status: &str) -> String {
    if status.is_empty() {
        "nothing seen yet".into()
    } else {
        format!("still {status}")
    }
}

fn key<K: Resource>(o: &K) -> String {
    format!("{}/{}", o.namespace().unwrap_or_default(), o.name_any())
}

/// A watcher config for one object by name, or the selected ones.
pub(crate) fn config_for(name: Option<&str>, selector: Option<&str>) -> watcher::Config {
    let mut c = watcher::Config::default();
    if let Some(n) = name {
        c = c.fields(&format!("metadata.name={n}"));
    }
    if let Some(s) = selector {
        c = c.labels(s);
    }
    c
}
