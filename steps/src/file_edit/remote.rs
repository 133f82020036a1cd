//! `file.edit` over ssh: read the file with `cat`, edit it here, and write it back on the
//! host with the same guarantees as a local edit (temporary file beside it, synced, mode
//! and owner kept, renamed over the original only if the original is still what was read).

use base64::Engine as _;
use rok_plan_engine::step::{OutputSink, StepContext, StepError, StepOutcome};

use crate::ssh::{RemoteCommand, RemoteEnd, Ssh, attempt_tag};

use super::edits::{Edit, apply};

/// Exit status of the write script when the file changed after it was read.
const CHANGED: i32 = 75;
/// Exit status of the read script when the file cannot be read.
const UNREADABLE: i32 = 66;

fn quote(s: &str) -> String {
    shlex::try_quote(s).map_or_else(
        |_| format!("'{}'", s.replace('\'', "'\\''")),
        |q| q.into_owned(),
    )
}

fn b64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text.as_bytes())
}

fn read_script(path: &str) -> String {
    format!(
        "cat -- {p} 2>/dev/null || exit {UNREADABLE}\n",
        p = quote(path)
    )
}

/// The script that replaces the file on the host.
fn write_script(path: &str, old: &str, new: &str, backup: Option<&str>, tag: &str) -> String {
    let mut s = format!(
        "f={p}\nd=$(dirname -- \"$f\")\nt=\"$d/.$(basename -- \"$f\").rok-plan-{tag}.tmp\"\nsame() {{ printf %s {old} | base64 -d | cmp -s - \"$f\"; }}\nfail() {{ rm -f -- \"$t\"; echo \"rok-plan: $1\" >&2; exit ${{2:-74}}; }}\nsame || fail 'the file changed since it was read' {CHANGED}\nprintf %s {new} | base64 -d > \"$t\" || fail 'cannot write the temporary file'\nchown --reference=\"$f\" -- \"$t\" 2>/dev/null\nchmod --reference=\"$f\" -- \"$t\" || fail 'cannot set the mode'\nsync -- \"$t\" 2>/dev/null || sync\n",
        p = quote(path),
        old = quote(&b64(old)),
        new = quote(&b64(new)),
        tag = tag.replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', "_"),
    );
    if let Some(b) = backup {
        s.push_str(&format!(
            "cp -p -- \"$f\" {b} || fail 'cannot write the backup'\n",
            b = quote(b)
        ));
    }
    s.push_str(&format!(
        "same || fail 'the file changed while it was being edited' {CHANGED}\nmv -f -- \"$t\" \"$f\" || fail 'cannot replace the file'\nsync -- \"$d\" 2>/dev/null || true\n"
    ));
    s
}

/// Edits `path` on `host`.
pub(crate) async fn edit_remote(
    ssh: &Ssh,
    ctx: &StepContext,
    host: &str,
    path: &str,
    edits: &[Edit],
    backup: bool,
) -> Result<StepOutcome, StepError> {
    // The run's host key policy (a `file.edit` step has no field to loosen it).
    let checking = ssh.run_checking();
    let read = RemoteCommand {
        line: read_script(path),
        cwd: None,
        env: Vec::new(),
        sudo: false,
    };
    let content = OutputSink::buffer();
    match ssh.exec(ctx, host, checking, &read, &content).await? {
        RemoteEnd::Exited(0) => {}
        RemoteEnd::Exited(UNREADABLE) => {
            return Ok(StepOutcome::failed(format!(
                "cannot read {host}:{path} (missing or not readable)"
            )));
        }
        other => return Ok(ended(host, "reading", other)),
    }
    let old = content.stdout_text();
    if old.contains('\u{FFFD}') {
        return Ok(StepOutcome::failed(format!(
            "{host}:{path} is not UTF-8 text; file.edit edits text files only"
        )));
    }
    let new = apply(&old, edits);
    if new == old {
        return Ok(StepOutcome::Satisfied);
    }
    let backup_path = backup.then(|| format!("{path}.{}.bak", ctx.run_id));
    let write = RemoteCommand {
        line: write_script(
            path,
            &old,
            &new,
            backup_path.as_deref(),
            &attempt_tag(ctx, "w"),
        ),
        cwd: None,
        env: Vec::new(),
        sudo: false,
    };
    match ssh.exec(ctx, host, checking, &write, ctx.output()).await? {
        RemoteEnd::Exited(0) => {
            let mut outputs = std::collections::BTreeMap::new();
            if let Some(b) = backup_path {
                outputs.insert("backup".to_string(), b);
            }
            Ok(StepOutcome::Succeeded {
                outputs,
                exit_status: None,
            })
        }
        RemoteEnd::Exited(CHANGED) => Ok(StepOutcome::failed(format!(
            "{host}:{path} changed while it was being edited; nothing was written (run the step again to edit the new content)"
        ))),
        other => Ok(ended(host, "writing", other)),
    }
}

fn ended(host: &str, doing: &str, end: RemoteEnd) -> StepOutcome {
    match end {
        RemoteEnd::Exited(code) => {
            StepOutcome::failed(format!("{doing} the file on {host} failed (status {code})"))
        }
        RemoteEnd::Cancelled => {
            StepOutcome::failed(format!("cancelled while {doing} the file on {host}"))
        }
        RemoteEnd::NotStarted(why) => StepOutcome::failed(format!(
            "ssh {host}: could not start {doing} the file ({why}); nothing changed"
        )),
        RemoteEnd::Dropped(why) => StepOutcome::failed(format!(
            "ssh {host}: the connection dropped while {doing} the file ({why})"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The write script is plain sh: run it here against a real file.
    #[test]
    fn the_write_script_replaces_keeps_mode_backs_up_and_refuses_a_changed_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("it's a file.conf");
        std::fs::write(&f, "a = 1\n").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o640)).unwrap();
        let path = f.to_str().unwrap();
        let backup = format!("{path}.r1.bak");
        let run = |script: String| {
            std::process::Command::new("sh")
                .arg("-c")
                .arg(script)
                .status()
                .unwrap()
                .code()
        };
        assert_eq!(
            run(write_script(
                path,
                "a = 1\n",
                "a = 2\nno newline",
                Some(&backup),
                "r1.s.1"
            )),
            Some(0)
        );
        assert_eq!(std::fs::read_to_string(&f).unwrap(), "a = 2\nno newline");
        assert_eq!(std::fs::read_to_string(&backup).unwrap(), "a = 1\n");
        assert_eq!(
            std::fs::metadata(&f).unwrap().permissions().mode() & 0o777,
            0o640
        );
        // What was read is no longer there: nothing is written.
        assert_eq!(
            run(write_script(path, "a = 1\n", "a = 3\n", None, "r1.s.2")),
            Some(CHANGED)
        );
        assert_eq!(std::fs::read_to_string(&f).unwrap(), "a = 2\nno newline");
        let leftovers = std::fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .ends_with(".tmp")
            })
            .count();
        assert_eq!(leftovers, 0);
    }
}
