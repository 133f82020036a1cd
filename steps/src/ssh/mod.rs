//! `ssh`: a command on a remote host, through the system's ssh (so `~/.ssh/config`,
//! ProxyJump and known_hosts apply), over one multiplexed master connection per host.

mod error;
mod options;
mod pool;
mod remote;

use std::sync::Arc;

use rok_plan_engine::step::{
    FieldKind, FieldSpec, Fields, StepContext, StepError, StepOutcome, StepSchema, StepType,
};
use serde_json::{Map, Value};

use crate::local::{EXPECT_EXIT, expected_exits};
use crate::{command_line, text};

pub use options::{HostKeyChecking, SshOptions};
pub(crate) use remote::{RemoteCommand, RemoteEnd};

use pool::SessionPool;

/// `ssh`: runs a command on `host` (as ssh knows it: ~/.ssh/config, known_hosts).
/// Clones share the run's master connections.
#[derive(Clone)]
pub struct Ssh {
    pool: Arc<SessionPool>,
}

impl std::fmt::Debug for Ssh {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ssh")
            .field("options", self.pool.options())
            .finish()
    }
}

impl Default for Ssh {
    fn default() -> Self {
        Self::new(SshOptions::default())
    }
}

impl Ssh {
    /// The `ssh` step type with these settings.
    pub fn new(options: SshOptions) -> Self {
        Self {
            pool: Arc::new(SessionPool::new(options)),
        }
    }

    /// The host key policy for a step: the run's, loosened to `accept-new` only where the
    /// step says so.
    fn checking(&self, f: &Fields) -> HostKeyChecking {
        match f
            .get("host_key_checking")
            .and_then(Value::as_str)
            .and_then(HostKeyChecking::parse)
        {
            Some(HostKeyChecking::AcceptNew) => HostKeyChecking::AcceptNew,
            _ => self.pool.options().host_key_checking,
        }
    }

    /// Runs `cmd` on `host`, with its output going to `out`. Connection failures are
    /// `Err` (naming the host).
    pub(crate) async fn exec(
        &self,
        ctx: &StepContext,
        host: &str,
        checking: HostKeyChecking,
        cmd: &RemoteCommand,
        out: &rok_plan_engine::step::OutputSink,
    ) -> Result<RemoteEnd, StepError> {
        if host.is_empty() {
            return Err(StepError::InvalidField {
                field: "host".into(),
                message: "is empty".into(),
            });
        }
        if checking == HostKeyChecking::AcceptNew {
            out.write(
                rok_plan_engine::step::Stream::Stderr,
                &format!("rok-plan: ssh {host}: host key checking is accept-new: an unknown host key is recorded in known_hosts\n"),
            );
        }
        let lease = tokio::select! {
            lease = self.pool.lease(host, checking) => lease.map_err(StepError::Other)?,
            () = ctx.cancellation().cancelled() => return Ok(RemoteEnd::Cancelled),
        };
        let end = remote::run_remote(
            ctx,
            &lease.session,
            cmd,
            out,
            self.pool.options().kill_grace,
        )
        .await;
        Ok(end)
    }

    /// The run's host key policy.
    pub(crate) fn run_checking(&self) -> HostKeyChecking {
        self.pool.options().host_key_checking
    }

    /// Opens connections to these hosts ahead of their steps (strict host keys unless the
    /// run says otherwise).
    pub(crate) async fn warm(&self, hosts: impl Iterator<Item = &str>) {
        let checking = self.run_checking();
        warm_hosts(&self.pool, hosts.map(|h| (h, checking))).await;
    }

    /// Runs `line` on `host` without recording output: `Ok(true)` when it exits 0.
    pub(crate) async fn probe(
        &self,
        ctx: &StepContext,
        host: &str,
        checking: HostKeyChecking,
        cmd: &RemoteCommand,
    ) -> Result<bool, StepError> {
        let lease = self
            .pool
            .lease(host, checking)
            .await
            .map_err(StepError::Other)?;
        remote::run_quiet(ctx, &lease.session, cmd, self.pool.options().kill_grace)
            .await
            .map_err(|why| StepError::Other(format!("ssh {host}: {why}")))
    }
}

/// Opens master connections to these hosts, each once, all at the same time.
pub(crate) async fn warm_hosts<'a>(
    pool: &SessionPool,
    hosts: impl Iterator<Item = (&'a str, HostKeyChecking)>,
) {
    let distinct: std::collections::BTreeSet<(&str, HostKeyChecking)> =
        hosts.filter(|(h, _)| !h.is_empty()).collect();
    futures::future::join_all(distinct.into_iter().map(|(h, c)| pool.warm(h, c))).await;
}

/// A unique name for an attempt (names its temporary files on the host).
pub(crate) fn attempt_tag(ctx: &StepContext, what: &str) -> String {
    let safe: String = ctx
        .instance_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{}.{safe}.{}.{what}", ctx.run_id, ctx.attempt)
}

/// The command of `run` or `argv` as one shell line.
fn remote_line(f: &Fields) -> String {
    match f.get("run").and_then(Value::as_str) {
        Some(run) => run.to_string(),
        None => command_line(f),
    }
}

const SSH: StepSchema = StepSchema {
    name: "ssh",
    doc: "Runs a command on a remote host over ssh (ssh_config and known_hosts apply).",
    fields: &[
        FieldSpec::required(
            "host",
            FieldKind::Text,
            "The host as ssh knows it (an alias of ~/.ssh/config, user@host, host).",
        ),
        FieldSpec::optional(
            "run",
            FieldKind::Shell,
            "A shell command line run on the host; interpolated values are shell-quoted.",
        ),
        FieldSpec::optional(
            "argv",
            FieldKind::TextList,
            "The program and its arguments, each passed as one word.",
        ),
        FieldSpec::optional(
            "sudo",
            FieldKind::Bool,
            "Run the command with sudo on the host.",
        ),
        FieldSpec::optional("cwd", FieldKind::Text, "Working directory on the host."),
        FieldSpec::optional(
            "host_key_checking",
            FieldKind::Choice(&["yes", "accept-new"]),
            "\"yes\" (default): the host key must be known; \"accept-new\": record unknown keys (recorded in the run).",
        ),
        EXPECT_EXIT,
    ],
    exactly_one_of: &["run", "argv"],
    idempotent: false,
};

#[async_trait::async_trait]
impl StepType for Ssh {
    async fn run(&self, ctx: &StepContext, f: &Fields) -> Result<StepOutcome, StepError> {
        let host = text(f, "host");
        let cmd = RemoteCommand {
            line: remote_line(f),
            cwd: f.get("cwd").and_then(Value::as_str).map(str::to_string),
            env: ctx.env.clone(),
            sudo: f.get("sudo").and_then(Value::as_bool) == Some(true),
        };
        let expected = expected_exits(f);
        Ok(
            match self
                .exec(ctx, host, self.checking(f), &cmd, ctx.output())
                .await?
            {
                RemoteEnd::Exited(code) if expected.contains(&i64::from(code)) => {
                    StepOutcome::Succeeded {
                        outputs: Default::default(),
                        exit_status: Some(code),
                    }
                }
                RemoteEnd::Exited(code) => StepOutcome::Failed {
                    reason: format!(
                        "exited with status {code} on {host} (expected {})",
                        expected
                            .iter()
                            .map(i64::to_string)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    exit_status: Some(code),
                },
                RemoteEnd::Cancelled => StepOutcome::failed(format!(
                    "cancelled; its process group on {host} was killed"
                )),
                RemoteEnd::NotStarted(why) => StepOutcome::failed(format!(
                    "ssh {host}: the command could not be started ({why}); nothing ran"
                )),
                RemoteEnd::Dropped(why) => StepOutcome::failed(format!(
                    "ssh {host}: the connection dropped while the command ran ({why}); it may have finished, or still be running, on the host"
                )),
            },
        )
    }

    async fn check(&self, ctx: &StepContext, f: &Fields, command: &str) -> Result<bool, StepError> {
        let cmd = RemoteCommand {
            line: command.to_string(),
            cwd: f.get("cwd").and_then(Value::as_str).map(str::to_string),
            env: ctx.env.clone(),
            sudo: f.get("sudo").and_then(Value::as_bool) == Some(true),
        };
        self.probe(ctx, text(f, "host"), self.checking(f), &cmd)
            .await
    }

    fn prepares(&self) -> bool {
        true
    }

    /// Connects to every host the run will reach (in parallel, in the background), so that
    /// a rolling upgrade does not pay each host's connection setup in turn.
    async fn prepare(&self, instances: Vec<Fields>) {
        warm_hosts(
            &self.pool,
            instances
                .iter()
                .map(|f| (text(f, "host"), self.checking(f))),
        )
        .await;
    }

    async fn end_of_run(&self) {
        self.pool.close_all().await;
    }

    fn schema(&self) -> &StepSchema {
        &SSH
    }
    fn describe(&self, f: &Map<String, Value>) -> String {
        let sudo = if f.get("sudo").and_then(Value::as_bool) == Some(true) {
            "sudo "
        } else {
            ""
        };
        format!("ssh {}: {sudo}{}", text(f, "host"), command_line(f))
    }
}
