//! One command on a remote host: sent as a script on stdin (so neither the command nor
//! its environment shows in a process list), run in its own session and process group
//! there, its pid kept in a file so that a cancel can kill the whole group on the host.
//! openssh alone only ends the local side when a command is dropped.

use std::time::Duration;

use openssh::{Session, Stdio};
use rok_plan_engine::process::stream_lines;
use rok_plan_engine::step::{OutputSink, StepContext, Stream};
use tokio::io::AsyncWriteExt;

/// What to run on the host.
#[derive(Clone, Debug)]
pub(crate) struct RemoteCommand {
    /// A shell command line.
    pub(crate) line: String,
    /// Working directory on the host.
    pub(crate) cwd: Option<String>,
    /// Environment variables.
    pub(crate) env: Vec<(String, String)>,
    /// Run as root with `sudo -n`.
    pub(crate) sudo: bool,
    /// Names the pid file on the host; unique per attempt.
    pub(crate) tag: String,
}

/// How a remote command ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum RemoteEnd {
    /// It exited with this status (128+N when killed by signal N on the host).
    Exited(i32),
    /// The attempt was cancelled and the command's process group on the host was killed.
    Cancelled,
    /// The connection went away while the command ran: whether it finished is unknown.
    Dropped(String),
    /// The command could not be started (nothing ran).
    NotStarted(String),
}

fn quote(s: &str) -> String {
    shlex::try_quote(s).map_or_else(
        |_| format!("'{}'", s.replace('\'', "'\\''")),
        |q| q.into_owned(),
    )
}

/// `$TMPDIR/rok-plan.TAG.pid` as the remote shell spells it.
fn pid_file(tag: &str) -> String {
    format!(
        "\"${{TMPDIR:-/tmp}}\"/{}",
        quote(&format!("rok-plan.{tag}.pid"))
    )
}

/// The script the remote `sh -s` reads.
pub(crate) fn script(cmd: &RemoteCommand) -> String {
    let mut s = String::new();
    for (k, v) in &cmd.env {
        s.push_str(&format!("export {k}={}\n", quote(v)));
    }
    if let Some(cwd) = &cmd.cwd {
        s.push_str(&format!(
            "cd -- {} || {{ echo \"rok-plan: cannot enter the working directory\" >&2; exit 125; }}\n",
            quote(cwd)
        ));
    }
    let p = pid_file(&cmd.tag);
    // setsid: a session and process group of its own, so that a kill of the group reaches
    // every process the command started, and only those. `-w` waits in case setsid forks.
    // The command reaches the inner shell as a here-document, not as an argument, so that
    // it (and any secret interpolated into it) never shows in the host's process list; the
    // shell reads the whole `{ ... }` before running it with stdin from /dev/null.
    let delim = heredoc_delimiter(&cmd.line);
    s.push_str(&format!(
        "p={p}\nrok_plan_run() {{\n  if command -v setsid >/dev/null 2>&1; then\n    setsid -w sh -c 'echo $$ >\"$0\"; exec sh -s' \"$p\"\n  else\n    sh -s\n  fi\n}}\nrok_plan_run <<'{delim}'\n{{\n{line}\n}} </dev/null\n{delim}\nrc=$?\nrm -f \"$p\"\nexit $rc\n",
        line = cmd.line.trim_end_matches('\n')
    ));
    s
}

/// A here-document delimiter that is no line of `text`.
fn heredoc_delimiter(text: &str) -> String {
    let mut delim = String::from("ROK_PLAN_END_OF_COMMAND");
    let mut n = 0u32;
    while text.lines().any(|l| l == delim) {
        n += 1;
        delim = format!("ROK_PLAN_END_OF_COMMAND_{n}");
    }
    delim
}

/// The script that kills the command's process group: SIGTERM, then SIGKILL after
/// `grace` if anything is left.
fn kill_script(tag: &str, grace: Duration) -> String {
    let p = pid_file(tag);
    let tenths = (grace.as_millis() / 100).max(1);
    format!(
        "p={p}\ni=0\nwhile [ ! -s \"$p\" ] && [ $i -lt 20 ]; do sleep 0.1; i=$((i+1)); done\n[ -s \"$p\" ] || exit 0\ng=$(cat \"$p\")\nkill -TERM -\"$g\" 2>/dev/null\ni=0\nwhile kill -0 -\"$g\" 2>/dev/null && [ $i -lt {tenths} ]; do sleep 0.1; i=$((i+1)); done\nkill -KILL -\"$g\" 2>/dev/null\nrm -f \"$p\"\nexit 0\n"
    )
}

async fn start<'s>(
    session: &'s Session,
    sudo: bool,
    script: &str,
) -> Result<openssh::Child<&'s Session>, openssh::Error> {
    let mut c = if sudo {
        let mut c = session.command("sudo");
        c.args(["-n", "sh", "-s"]);
        c
    } else {
        let mut c = session.command("sh");
        c.arg("-s");
        c
    };
    let mut child = c
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .await?;
    if let Some(mut stdin) = child.stdin().take() {
        stdin
            .write_all(script.as_bytes())
            .await
            .map_err(openssh::Error::ChildIo)?;
        stdin.shutdown().await.map_err(openssh::Error::ChildIo)?;
    }
    Ok(child)
}

/// Runs `cmd` on `session`, streaming its output to `out`, until it ends or `ctx` is
/// cancelled (then the remote process group is killed before this returns).
pub(crate) async fn run_remote(
    ctx: &StepContext,
    session: &Session,
    cmd: &RemoteCommand,
    out: &OutputSink,
    kill_grace: Duration,
) -> RemoteEnd {
    let script = script(cmd);
    let mut refused = 0u32;
    let mut child = loop {
        match start(session, cmd.sudo, &script).await {
            Ok(c) => break c,
            // sshd counts a session until its close has gone through, so a session
            // opened just as another one ends may be refused (MaxSessions). Nothing ran:
            // try again while the connection is alive.
            Err(e) if refused < 20 && session.check().await.is_ok() => {
                refused += 1;
                let pause = Duration::from_millis(20 * u64::from(refused.min(10)));
                tokio::select! {
                    () = tokio::time::sleep(pause) => {}
                    () = ctx.cancellation().cancelled() => return RemoteEnd::Cancelled,
                }
                if refused == 20 {
                    return RemoteEnd::NotStarted(format!(
                        "the host refused a session 20 times: {e}"
                    ));
                }
            }
            Err(e) => return RemoteEnd::NotStarted(e.to_string()),
        }
    };
    let pumps: Vec<_> = [
        child
            .stdout()
            .take()
            .map(|o| tokio::spawn(stream_lines(o, out.clone(), Stream::Stdout))),
        child
            .stderr()
            .take()
            .map(|e| tokio::spawn(stream_lines(e, out.clone(), Stream::Stderr))),
    ]
    .into_iter()
    .flatten()
    .collect();
    let end = tokio::select! {
        status = child.wait() => match status {
            Ok(status) => match status.code() {
                Some(code) => RemoteEnd::Exited(code),
                None => RemoteEnd::Dropped("the command ended without an exit status".into()),
            },
            Err(openssh::Error::RemoteProcessTerminated) if session.check().await.is_ok() => {
                RemoteEnd::Dropped("the remote shell was killed".into())
            }
            Err(e) => RemoteEnd::Dropped(e.to_string()),
        },
        () = ctx.cancellation().cancelled() => {
            kill(session, cmd, kill_grace).await;
            RemoteEnd::Cancelled
        }
    };
    for p in pumps {
        // After a cancel the channel may linger: do not wait for it long.
        let _ = tokio::time::timeout(Duration::from_secs(2), p).await;
    }
    end
}

/// Kills the command's process group on the host.
async fn kill(session: &Session, cmd: &RemoteCommand, grace: Duration) {
    let script = kill_script(&cmd.tag, grace);
    let wait = grace + Duration::from_secs(10);
    if let Ok(child) = start(session, cmd.sudo, &script).await {
        let _ = tokio::time::timeout(wait, child.wait()).await;
    }
}

/// Runs `line` on the host without recording its output; `Ok(true)` when it exits 0.
pub(crate) async fn run_quiet(
    ctx: &StepContext,
    session: &Session,
    cmd: &RemoteCommand,
    kill_grace: Duration,
) -> Result<bool, String> {
    match run_remote(ctx, session, cmd, &OutputSink::buffer(), kill_grace).await {
        RemoteEnd::Exited(code) => Ok(code == 0),
        RemoteEnd::Cancelled => Err("cancelled".into()),
        RemoteEnd::Dropped(why) | RemoteEnd::NotStarted(why) => Err(why),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_quotes_everything_it_is_given() {
        let s = script(&RemoteCommand {
            line: "echo \"$X\"; echo \"it's\"; pwd\ncat <<'ROK_PLAN_END_OF_COMMAND'\nROK_PLAN_END_OF_COMMAND\ncat".into(),
            cwd: Some("/tmp/a b".into()),
            env: vec![("X".into(), "a'; rm -rf /".into())],
            sudo: false,
            tag: "r1.s.1".into(),
        });
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("mkdir -p '/tmp/a b'; {s}"))
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "a'; rm -rf /\nit's\n/tmp/a b\n"
        );
    }
}
