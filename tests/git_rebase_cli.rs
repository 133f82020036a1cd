//! `git.rebase` through the real binary on real repositories, in the situation of the
//! seeds: vendor commits upstream, operator changes locally, a line both changed, a file
//! deleted upstream and modified locally, and a private mirror.

use std::path::Path;
use std::process::Command;

use rok_plan_lab::gitops::{self, GitopsRepos};

/// git with the lab's fixed identity; a failure fails the test.
fn git(dir: &Path, args: &[&str]) -> String {
    gitops::git(dir, args).unwrap_or_else(|e| panic!("{e}"))
}

fn write(dir: &Path, file: &str, text: &str) {
    let path = dir.join(file);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn rok_plan(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_rok-plan"))
        .current_dir(dir)
        .args(args)
        .output()
        .expect("rok-plan runs")
}

#[test]
fn rebase_keeps_local_changes_removes_files_deleted_upstream_and_mirrors() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    // The lab's GitOps repositories: vendor commits upstream, operator commits locally,
    // a line both changed, a file deleted upstream and modified locally, an empty mirror.
    let repos = GitopsRepos::create(t).unwrap_or_else(|e| panic!("{e}"));
    let local = repos.local.clone();
    let old_head = repos.local_head.clone();
    let vendor_head = repos.upstream_head.clone();
    std::fs::write(
        t.join("plan.toml"),
        r#"
[plan]
name = "gitops"
[[step]]
id = "rebase"
type = "git.rebase"
repo = "local"
prefer = "local"
deleted_upstream = "remove"
mirror = "mirror"
"#,
    )
    .unwrap();
    let run = rok_plan(t, &["-q", "execute", "plan.toml"]);
    assert_eq!(
        run.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );

    // Upstream's commit is in the history, our changes are on top of it.
    git(
        &local,
        &["merge-base", "--is-ancestor", &vendor_head, "HEAD"],
    );
    // Both changed the `replicas` line: ours is kept (the seeds' -Xtheirs).
    let overlay = std::fs::read_to_string(local.join(gitops::CONFLICTING_FILE)).unwrap();
    // The hunk both changed is the operator's (-Xtheirs takes the replayed local side).
    assert_eq!(overlay, gitops::LOCAL_OVERLAY);
    // Deleted upstream, modified locally: removed, as the seeds' `git rm` does.
    assert!(!local.join(gitops::DELETED_UPSTREAM_FILE).exists());
    assert!(local.join(gitops::ADDED_UPSTREAM_FILE).exists());
    assert!(local.join(gitops::ADDED_LOCALLY_FILE).exists());
    // The old history is kept under a backup ref.
    let backups = git(
        &local,
        &[
            "for-each-ref",
            "--format=%(objectname)",
            "refs/rok-plan/backup/",
        ],
    );
    assert_eq!(backups, old_head);
    // The mirror has the rebased branch.
    let head = git(&local, &["rev-parse", "HEAD"]);
    assert_eq!(git(&repos.mirror, &["rev-parse", &repos.branch]), head);
    assert_eq!(
        git(&local, &["status", "--porcelain"]),
        "",
        "a clean tree, no rebase left open"
    );

    // Run again: already rebased and mirrored, nothing to do.
    let again = rok_plan(t, &["-q", "execute", "plan.toml", "--new"]);
    assert_eq!(again.status.code(), Some(0));
    let status = rok_plan(t, &["--output", "json", "status"]);
    let doc: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(doc["steps"][0]["state"], "satisfied", "{doc}");
    assert_eq!(git(&local, &["rev-parse", "HEAD"]), head);
}

#[test]
fn a_dirty_repository_is_refused_and_left_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    git(t, &["init", "-q", "--bare", "-b", "main", "up.git"]);
    git(t, &["clone", "-q", "up.git", "local"]);
    let local = t.join("local");
    write(&local, "a.yaml", "a: 1\n");
    git(&local, &["add", "."]);
    git(&local, &["commit", "-q", "-m", "a"]);
    git(&local, &["push", "-q", "origin", "main"]);
    write(&local, "a.yaml", "a: 2\n");
    std::fs::write(
        t.join("plan.toml"),
        "[plan]\nname = \"g\"\n[[step]]\nid = \"r\"\ntype = \"git.rebase\"\nrepo = \"local\"\n",
    )
    .unwrap();
    let run = rok_plan(t, &["-q", "execute", "plan.toml"]);
    assert_eq!(run.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&run.stderr).contains("uncommitted changes"),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(local.join("a.yaml")).unwrap(),
        "a: 2\n"
    );
}
