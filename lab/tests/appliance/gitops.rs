//! The GitOps repositories have the promised shape.

use rok_plan_lab::gitops::{
    ADDED_LOCALLY_FILE, ADDED_UPSTREAM_FILE, CONFLICTING_FILE, DELETED_UPSTREAM_FILE, GitopsRepos,
    git,
};

#[test]
fn local_is_behind_upstream_with_its_own_commits_and_the_mirror_is_empty() {
    let tmp = tempfile::tempdir().unwrap();
    let r = GitopsRepos::create(tmp.path()).unwrap();
    assert_eq!(git(&r.local, &["rev-parse", "HEAD"]).unwrap(), r.local_head);
    assert_eq!(
        git(&r.upstream, &["rev-parse", &r.branch]).unwrap(),
        r.upstream_head
    );
    assert!(
        git(&r.local, &["cat-file", "-e", &r.upstream_head]).is_err(),
        "local has not fetched the vendor's new commits yet"
    );
    git(&r.local, &["fetch", "-q", &r.upstream_remote]).unwrap();
    let upstream_ref = format!("{}/{}", r.upstream_remote, r.branch);
    assert_eq!(
        git(&r.local, &["merge-base", "HEAD", &upstream_ref]).unwrap(),
        r.base_commit
    );
    assert_eq!(
        git(
            &r.local,
            &["rev-list", "--count", &format!("{upstream_ref}..HEAD")]
        )
        .unwrap(),
        "3"
    );
    assert_eq!(
        git(
            &r.local,
            &["rev-list", "--count", &format!("HEAD..{upstream_ref}")]
        )
        .unwrap(),
        "2"
    );
    assert!(git(&r.mirror, &["rev-parse", "--verify", "-q", &r.branch]).is_err());
    let remotes = git(&r.local, &["remote"]).unwrap();
    assert!(
        remotes.contains("mirror") && remotes.contains("origin"),
        "{remotes}"
    );
    assert!(r.local.join(ADDED_LOCALLY_FILE).exists());
    assert!(!r.local.join(ADDED_UPSTREAM_FILE).exists());
}

#[test]
fn rebase_xtheirs_keeps_the_local_line_and_stops_at_the_modify_delete_conflict() {
    let tmp = tempfile::tempdir().unwrap();
    let r = GitopsRepos::create(tmp.path()).unwrap();
    git(&r.local, &["fetch", "-q", &r.upstream_remote]).unwrap();
    let upstream_ref = format!("{}/{}", r.upstream_remote, r.branch);
    let err = git(&r.local, &["rebase", "-Xtheirs", &upstream_ref])
        .unwrap_err()
        .to_string();
    let status = git(&r.local, &["status", "--porcelain"]).unwrap();
    assert!(
        status.contains(&format!("DU {DELETED_UPSTREAM_FILE}")),
        "{status}\n{err}"
    );
    let overlay = std::fs::read_to_string(r.local.join(CONFLICTING_FILE)).unwrap();
    assert!(
        overlay.contains("replicas: 3"),
        "local wins under -Xtheirs: {overlay}"
    );
    // Removing the file, as the seeds' `git rm` does, lets the rebase finish.
    git(&r.local, &["rm", "-q", DELETED_UPSTREAM_FILE]).unwrap();
    let done = std::process::Command::new("git")
        .current_dir(&r.local)
        .args(["-c", "core.editor=true", "rebase", "--continue"])
        .output()
        .unwrap();
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    git(
        &r.local,
        &["merge-base", "--is-ancestor", &r.upstream_head, "HEAD"],
    )
    .unwrap();
    assert!(r.local.join(ADDED_UPSTREAM_FILE).exists());
}

#[test]
fn another_vendor_commit_moves_upstream() {
    let tmp = tempfile::tempdir().unwrap();
    let mut r = GitopsRepos::create(tmp.path()).unwrap();
    let before = r.upstream_head.clone();
    let head = r
        .push_vendor_commit("v2.1", &[("rok/extra.yaml", "x: 1\n")])
        .unwrap();
    assert_ne!(head, before);
    assert_eq!(git(&r.upstream, &["rev-parse", &r.branch]).unwrap(), head);
}
