//! One command on a remote host, sent as a script on the channel's stdin to `sh -s`, so
//! that neither the command nor its environment shows in a process list. sshd starts
//! every session's shell as a process group leader; the script first reports its pid on
//! stderr, so that a cancel can kill that whole group on the host (openssh alone only
//! ends the local side when a command is dropped).

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

/// The first line the script writes on stderr: the pid of the host's shell.
const PID_LINE: &str = "rok-plan-pid ";

/// The script the remote `sh -s` reads. The shell reads the whole `{ ... }` before it
/// runs it, with stdin from /dev/null (the rest of stdin is the script).
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
    s.push_str(&format!(
        "echo \"{PID_LINE}$$\" >&2\n{{\n{}\n}} </dev/null\n",
        cmd.line.trim_end_matches('\n')
    ));
    s
}

/// The script that kills the process group of the shell `pid`: SIGTERM, then SIGKILL
/// after `grace` if anything is left.
fn kill_script(pid: u32, grace: Duration) -> String {
    let tenths = (grace.as_millis() / 100).max(1);
    format!(
        "g=$(ps -o pgid= -p {pid} | tr -d ' ')\n[ -n \"$g\" ] || exit 0\nkill -TERM -\"$g\" 2>/dev/null\ni=0\nwhile kill -0 -\"$g\" 2>/dev/null && [ $i -lt {tenths} ]; do sleep 0.1; i=$((i+1)); done\nkill -KILL -\"$g\" 2>/dev/null\nexit 0\n"
    )
}

/// Streams stderr to `out`, except the first line when it reports the shell's pid, which
/// goes to `pid`.
/// Returns whether the stream ended without a single byte (the shell never ran the script).
async fn stderr_with_pid(
    reader: impl tokio::io::AsyncRead + Unpin,
    out: OutputSink,
    pid: tokio::sync::watch::Sender<Option<u32>>,
) -> bool {
    use tokio::io::AsyncBufReadExt;
    let mut reader = tokio::io::BufReader::new(reader);
    let mut first = Vec::new();
    if reader.read_until(b'\n', &mut first).await.is_err() {
        return false;
    }
    if first.is_empty() {
        return true;
    }
    let line = String::from_utf8_lossy(&first);
    match line
        .trim_end()
        .strip_prefix(PID_LINE)
        .and_then(|p| p.parse().ok())
    {
        Some(p) => {
            let _ = pid.send(Some(p));
        }
        None => out.write(Stream::Stderr, &line),
    }
    stream_lines(reader, out, Stream::Stderr).await;
    false
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
    let mut unread = 0u32;
    loop {
        match run_once(ctx, session, cmd, out, kill_grace).await {
            // Seen on a loaded machine: a session whose shell ended at once, with no output
            // at all, before reading the script (its first line reports the shell's pid on
            // stderr, so nothing of the command ran). Send the script again.
            Once::Unread(code) if unread < 3 => {
                unread += 1;
                out.write(
                    Stream::Stderr,
                    &format!(
                        "rok-plan: the host's shell ended (exit {code}) before reading the command; sending it again\n"
                    ),
                );
            }
            Once::Unread(code) => {
                return RemoteEnd::NotStarted(format!(
                    "the host's shell ended (exit {code}) before reading the command, 4 times"
                ));
            }
            Once::Ended(end) => return end,
        }
    }
}

/// One session's account of a command.
enum Once {
    Ended(RemoteEnd),
    /// The shell exited with this status without a byte on stderr, so before the script's
    /// first line.
    Unread(i32),
}

/// One session running `cmd` (sessions the host refuses are asked for again).
async fn run_once(
    ctx: &StepContext,
    session: &Session,
    cmd: &RemoteCommand,
    out: &OutputSink,
    kill_grace: Duration,
) -> Once {
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
                    () = ctx.cancellation().cancelled() => return Once::Ended(RemoteEnd::Cancelled),
                }
                if refused == 20 {
                    return Once::Ended(RemoteEnd::NotStarted(format!(
                        "the host refused a session 20 times: {e}"
                    )));
                }
            }
            Err(e) => return Once::Ended(RemoteEnd::NotStarted(e.to_string())),
        }
    };
    let (pid_tx, mut pid) = tokio::sync::watch::channel(None);
    let stdout = child
        .stdout()
        .take()
        .map(|o| tokio::spawn(stream_lines(o, out.clone(), Stream::Stdout)));
    let stderr = child
        .stderr()
        .take()
        .map(|e| tokio::spawn(stderr_with_pid(e, out.clone(), pid_tx)));
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
            // The pid comes first thing; a cancel right after the start waits for it.
            let known = tokio::time::timeout(Duration::from_secs(5), pid.wait_for(Option::is_some))
                .await
                .ok()
                .and_then(|r| r.ok().and_then(|p| *p));
            if let Some(p) = known {
                kill(session, cmd.sudo, p, kill_grace).await;
            }
            RemoteEnd::Cancelled
        }
    };
    // After a cancel the channel may linger: do not wait for it long.
    if let Some(p) = stdout {
        let _ = tokio::time::timeout(Duration::from_secs(2), p).await;
    }
    let silent = match stderr {
        Some(p) => matches!(
            tokio::time::timeout(Duration::from_secs(2), p).await,
            Ok(Ok(true))
        ),
        None => false,
    };
    match end {
        RemoteEnd::Exited(code) if silent => Once::Unread(code),
        end => Once::Ended(end),
    }
}

/// Kills the process group of the shell `pid` on the host.
async fn kill(session: &Session, sudo: bool, pid: u32, grace: Duration) {
    let script = kill_script(pid, grace);
    let wait = grace + Duration::from_secs(10);
    if let Ok(child) = start(session, sudo, &script).await {
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
