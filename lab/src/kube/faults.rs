//! Faults tests inject: a status code for the next N matching requests, a delay before matching
//! requests are answered (latency), dropped watches. They live beside the world, behind their own
//! lock, since every request consults them.

use std::time::Duration;

use tokio::sync::watch;

/// A rule answering matching requests with an error.
#[derive(Debug, Clone)]
pub struct FailRule {
    /// HTTP method to match (`None`: any).
    pub method: Option<String>,
    /// Substring of the path to match.
    pub path_contains: String,
    /// Status code to answer with.
    pub code: u16,
    /// How many more requests to fail.
    pub remaining: u32,
}

/// A rule delaying matching requests before they are handled.
#[derive(Debug, Clone)]
pub struct DelayRule {
    /// HTTP method to match (`None`: any).
    pub method: Option<String>,
    /// Substring of the path to match.
    pub path_contains: String,
    /// How long to wait before handling the request.
    pub delay: Duration,
    /// How many more requests to delay (`None`: all of them).
    pub remaining: Option<u32>,
}

fn matches(method: Option<&str>, path_contains: &str, req_method: &str, path: &str) -> bool {
    method.is_none_or(|m| m.eq_ignore_ascii_case(req_method)) && path.contains(path_contains)
}

/// The faults in force.
#[derive(Debug)]
pub struct Faults {
    /// Error rules, first match wins.
    pub rules: Vec<FailRule>,
    /// Added before every answer.
    pub latency: Duration,
    /// Delay rules, first match wins (added to `latency`).
    pub delays: Vec<DelayRule>,
    /// Bumped to end every open watch.
    pub drop_watches: watch::Sender<u64>,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            rules: Vec::new(),
            latency: Duration::ZERO,
            delays: Vec::new(),
            drop_watches: watch::channel(0).0,
        }
    }
}

impl Faults {
    /// The code to fail a request with, consuming one use of the first matching rule.
    pub fn take(&mut self, method: &str, path: &str) -> Option<u16> {
        let rule = self.rules.iter_mut().find(|r| {
            r.remaining > 0 && matches(r.method.as_deref(), &r.path_contains, method, path)
        })?;
        rule.remaining -= 1;
        let code = rule.code;
        self.rules.retain(|r| r.remaining > 0);
        Some(code)
    }

    /// How long to hold a request before handling it: the latency for every request plus the
    /// first matching delay rule (consuming one of its uses).
    pub fn delay_for(&mut self, method: &str, path: &str) -> Duration {
        let mut total = self.latency;
        if let Some(rule) = self.delays.iter_mut().find(|r| {
            r.remaining != Some(0) && matches(r.method.as_deref(), &r.path_contains, method, path)
        }) {
            total += rule.delay;
            if let Some(n) = &mut rule.remaining {
                *n -= 1;
            }
            self.delays.retain(|r| r.remaining != Some(0));
        }
        total
    }

    /// Forgets every injected error, delay and latency.
    pub fn clear(&mut self) {
        self.rules.clear();
        self.delays.clear();
        self.latency = Duration::ZERO;
    }

    /// Ends every open watch stream.
    pub fn drop_all_watches(&self) {
        self.drop_watches.send_modify(|n| *n += 1);
    }
}

/// The reason kube-apiserver gives with a status code.
pub fn reason_for(code: u16) -> &'static str {
    match code {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        409 => "Conflict",
        410 => "Expired",
        422 => "Invalid",
        429 => "TooManyRequests",
        503 => "ServiceUnavailable",
        504 => "Timeout",
        _ => "InternalError",
    }
}
