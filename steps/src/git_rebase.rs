//! `git.rebase`: the GitOps workflow of the seeds (fetch, rebase favouring local changes,
//! remove files deleted upstream, mirror), with a backup ref first.

use rok_plan_engine::step::{
    FieldKind, FieldSpec, Fields, StepContext, StepError, StepOutcome, StepSchema, StepType, Stream,
};
use serde_json::{Map, Value};

use crate::{shown, text};

/// `git.rebase`.
#[derive(Debug, Clone, Copy)]
pub struct GitRebase;

const GIT_REBASE: StepSchema = StepSchema {
    name: "git.rebase",
    doc: "Fetches and rebases a local repository on its upstream, keeping a backup ref.",
    fields: &[
        FieldSpec::required("repo", FieldKind::Text, "Path of the local repository."),
        FieldSpec::optional(
            "upstream",
            FieldKind::Text,
            "What to rebase on (default: the branch's upstream, e.g. origin/main).",
        ),
        FieldSpec::optional(
            "prefer",
            FieldKind::Choice(&["local", "upstream"]),
            "On conflicting hunks keep \"local\" changes (git rebase -Xtheirs) or \"upstream\" ones.",
        ),
        FieldSpec::optional(
            "deleted_upstream",
            FieldKind::Choice(&["remove", "keep"]),
            "Files deleted upstream but modified locally: \"remove\" them (as the seeds do) or \"keep\" them.",
        ),
        FieldSpec::optional(
            "mirror",
            FieldKind::Text,
            "A remote to push the rebased branch to afterwards (a private mirror).",
        ),
        FieldSpec::optional(
            "fetch",
            FieldKind::Bool,
            "Run `git fetch --all -p` first (default true).",
        ),
    ],
    exactly_one_of: &[],
    idempotent: true,
};

#[async_trait::async_trait]
impl StepType for GitRebase {
    async fn run(&self, ctx: &StepContext, f: &Fields) -> Result<StepOutcome, StepError> {
        rebase(ctx, f).await
    }
    fn schema(&self) -> &StepSchema {
        &GIT_REBASE
    }
    fn describe(&self, f: &Map<String, Value>) -> String {
        let upstream = shown(f, "upstream").unwrap_or_else(|| "its upstream".into());
        let mut line = format!(
            "in {}: git fetch --all -p; back up HEAD; rebase on {upstream}",
            text(f, "repo")
        );
        if text(f, "prefer") == "local" {
            line.push_str(" keeping local changes (-Xtheirs)");
        }
        if text(f, "deleted_upstream") == "remove" {
            line.push_str("; remove files deleted upstream");
        }
        if let Some(m) = shown(f, "mirror") {
            line.push_str(&format!("; push to {m}"));
        }
        line
    }
}

/// What `git` said.
struct GitOutput {
    ok: bool,
    stdout: String,
    stderr: String,
}

/// Runs `git -C repo ARGS`, its output recorded in the step's output; cancellation kills it.
async fn git(ctx: &StepContext, repo: &str, args: &[&str]) -> Result<GitOutput, StepError> {
    let mut cmd = tokio::process::Command::new("git");
    cmd.arg("-C")
        .arg(repo)
        .args(args)
        .env("GIT_EDITOR", "true")
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    let out = tokio::select! {
        out = cmd.output() => out.map_err(|source| StepError::Io { context: "cannot run `git`".into(), source })?,
        () = ctx.cancellation().cancelled() => return Err(StepError::Other("cancelled".into())),
    };
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    ctx.output().write(
        Stream::Stdout,
        &format!("$ git {}\n{stdout}", args.join(" ")),
    );
    if !stderr.is_empty() {
        ctx.output().write(Stream::Stderr, &stderr);
    }
    Ok(GitOutput {
        ok: out.status.success(),
        stdout,
        stderr,
    })
}

async fn git_ok(ctx: &StepContext, repo: &str, args: &[&str]) -> Result<String, String> {
    let out = git(ctx, repo, args).await.map_err(|e| e.to_string())?;
    if out.ok {
        Ok(out.stdout.trim().to_string())
    } else {
        Err(format!(
            "`git {}` failed: {}",
            args.join(" "),
            out.stderr.trim()
        ))
    }
}

/// Paths in conflict, by their two-letter porcelain status.
fn conflicts(porcelain: &str) -> Vec<(String, String)> {
    porcelain
        .lines()
        .filter_map(|l| {
            let (xy, path) = (l.get(..2)?, l.get(3..)?);
            matches!(xy, "DD" | "AU" | "UD" | "UA" | "DU" | "AA" | "UU")
                .then(|| (xy.to_string(), path.to_string()))
        })
        .collect()
}

async fn rebase(ctx: &StepContext, f: &Fields) -> Result<StepOutcome, StepError> {
    match rebase_steps(ctx, f).await {
        Ok(outcome) => Ok(outcome),
        Err(reason) => Ok(StepOutcome::failed(reason)),
    }
}

async fn rebase_steps(ctx: &StepContext, f: &Fields) -> Result<StepOutcome, String> {
    let repo = text(f, "repo");
    let upstream = f
        .get("upstream")
        .and_then(Value::as_str)
        .unwrap_or("@{upstream}")
        .to_string();
    let mirror = f
        .get("mirror")
        .and_then(Value::as_str)
        .filter(|m| !m.is_empty());
    if f.get("fetch").and_then(Value::as_bool).unwrap_or(true) {
        git_ok(ctx, repo, &["fetch", "--all", "-p"]).await?;
    }
    let dirty = git_ok(
        ctx,
        repo,
        &["status", "--porcelain", "--untracked-files=no"],
    )
    .await?;
    if !dirty.is_empty() {
        return Err(format!(
            "`{repo}` has uncommitted changes; commit or stash them first:\n{dirty}"
        ));
    }
    let head = git_ok(ctx, repo, &["rev-parse", "HEAD"]).await?;
    let base = git_ok(
        ctx,
        repo,
        &["rev-parse", "--verify", &format!("{upstream}^{{commit}}")],
    )
    .await?;
    let mirror_current = match mirror {
        Some(m) => {
            git_ok(ctx, repo, &["ls-remote", m, "HEAD"])
                .await
                .map(|out| out.starts_with(&head))
                .unwrap_or(false)
                || git_ok(ctx, repo, &["ls-remote", m])
                    .await
                    .map(|out| out.lines().any(|l| l.starts_with(&head)))
                    .unwrap_or(false)
        }
        None => true,
    };
    let rebased = git(ctx, repo, &["merge-base", "--is-ancestor", &base, "HEAD"])
        .await
        .map_err(|e| e.to_string())?
        .ok;
    if rebased && mirror_current {
        return Ok(StepOutcome::Satisfied);
    }
    let mut outputs = std::collections::BTreeMap::new();
    if !rebased {
        // The backup comes first: whatever happens next, the old history stays reachable.
        let branch = git_ok(ctx, repo, &["rev-parse", "--abbrev-ref", "HEAD"]).await?;
        let backup = format!("refs/rok-plan/backup/{branch}/{}", ctx.run_id);
        git_ok(ctx, repo, &["update-ref", &backup, &head]).await?;
        outputs.insert("backup_ref".to_string(), backup.clone());
        let strategy = match text(f, "prefer") {
            // During a rebase "theirs" is the branch being replayed: the local changes.
            "local" => Some("-Xtheirs"),
            "upstream" => Some("-Xours"),
            _ => None,
        };
        let mut args = vec!["rebase"];
        args.extend(strategy);
        args.push(&base);
        let mut out = git(ctx, repo, &args).await.map_err(|e| e.to_string())?;
        let remove = text(f, "deleted_upstream") == "remove";
        for _ in 0..1000 {
            if out.ok {
                break;
            }
            let status = git_ok(ctx, repo, &["status", "--porcelain"]).await?;
            let open = conflicts(&status);
            // Modified locally, deleted upstream: remove (as the seeds do) or keep.
            let (deleted, other): (Vec<_>, Vec<_>) = open
                .into_iter()
                .partition(|(xy, _)| xy == "DU" || xy == "UD");
            if !other.is_empty()
                || (!deleted.is_empty() && !remove && text(f, "deleted_upstream") != "keep")
            {
                let _ = git(ctx, repo, &["rebase", "--abort"]).await;
                let files: Vec<String> = other
                    .iter()
                    .chain(&deleted)
                    .map(|(xy, p)| format!("{xy} {p}"))
                    .collect();
                return Err(format!(
                    "the rebase stopped on conflicts it cannot resolve; it was aborted and `{repo}` is as before (backup {backup}):\n{}",
                    files.join("\n")
                ));
            }
            for (_, path) in &deleted {
                let verb = if remove { "rm" } else { "add" };
                git_ok(ctx, repo, &[verb, "--", path]).await?;
            }
            if !git(ctx, repo, &["rev-parse", "--verify", "-q", "REBASE_HEAD"])
                .await
                .map_err(|e| e.to_string())?
                .ok
            {
                break;
            }
            out = git(ctx, repo, &["rebase", "--continue"])
                .await
                .map_err(|e| e.to_string())?;
            if !out.ok && out.stdout.contains("nothing to commit") {
                out = git(ctx, repo, &["rebase", "--skip"])
                    .await
                    .map_err(|e| e.to_string())?;
            }
        }
        if !out.ok {
            let _ = git(ctx, repo, &["rebase", "--abort"]).await;
            return Err(format!(
                "the rebase failed and was aborted (backup {backup}): {}",
                out.stderr.trim()
            ));
        }
    }
    if let Some(m) = mirror {
        git_ok(ctx, repo, &["push", "--mirror", m]).await?;
    }
    outputs.insert(
        "head".to_string(),
        git_ok(ctx, repo, &["rev-parse", "HEAD"]).await?,
    );
    Ok(StepOutcome::Succeeded {
        outputs,
        exit_status: None,
    })
}
