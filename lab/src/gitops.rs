//! GitOps repositories in the situation of the seeds' manifests upgrade, made with the
//! real `git`: a vendor's upstream (bare) with new commits, the operator's local clone
//! with its own commits on top of an older upstream commit, and an empty private mirror.
//!
//! The shape (see [`GitopsRepos`]): a file both sides changed on the same line (the
//! local side must win under `git rebase -Xtheirs`), a file deleted upstream and
//! modified locally (a modify/delete conflict that no `-X` option resolves), a file only
//! upstream adds, and a file only the operator adds.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The file both sides changed on the same line.
pub const CONFLICTING_FILE: &str = "rok/deploy/overlay.yaml";
/// The file upstream deleted and the operator modified.
pub const DELETED_UPSTREAM_FILE: &str = "kubeflow/kfctl_config.yaml";
/// The file only upstream adds.
pub const ADDED_UPSTREAM_FILE: &str = "rok/new.yaml";
/// The file only the operator adds.
pub const ADDED_LOCALLY_FILE: &str = "rok/deploy/site-patch.yaml";

/// The conflicting file's text at the common base.
pub const BASE_OVERLAY: &str = "replicas: 1\nimage: v1\n";
/// Its text upstream (the vendor's new release).
pub const UPSTREAM_OVERLAY: &str = "replicas: 2\nimage: v2\n";
/// Its text locally (the operator's change).
pub const LOCAL_OVERLAY: &str = "replicas: 3\nimage: v1\n";

/// A failing git command.
#[derive(Debug, thiserror::Error)]
pub enum GitopsError {
    /// git could not be started.
    #[error("cannot run git: {0}")]
    Spawn(std::io::Error),
    /// git exited non-zero.
    #[error("git {args} (in {dir}): {stderr}")]
    Failed {
        /// The arguments.
        args: String,
        /// The working directory.
        dir: PathBuf,
        /// What git said.
        stderr: String,
    },
    /// A file could not be written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// Runs `git ARGS` in `dir` with a fixed identity and no user or system configuration
/// that could change the outcome (signing, hooks, default branch); returns its trimmed
/// stdout.
pub fn git(dir: &Path, args: &[&str]) -> Result<String, GitopsError> {
    let out = Command::new("git")
        .current_dir(dir)
        .args([
            "-c",
            "commit.gpgsign=false",
            "-c",
            "core.hooksPath=/dev/null",
        ])
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "rok-lab")
        .env("GIT_AUTHOR_EMAIL", "rok-lab@example.invalid")
        .env("GIT_COMMITTER_NAME", "rok-lab")
        .env("GIT_COMMITTER_EMAIL", "rok-lab@example.invalid")
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .output()
        .map_err(GitopsError::Spawn)?;
    if !out.status.success() {
        return Err(GitopsError::Failed {
            args: args.join(" "),
            dir: dir.to_path_buf(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn write(dir: &Path, file: &str, text: &str) -> Result<(), GitopsError> {
    let path = dir.join(file);
    let io = |source| GitopsError::Io {
        path: path.clone(),
        source,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    std::fs::write(&path, text).map_err(io)
}

/// Options of [`GitopsRepos::create_with`].
#[derive(Clone, Debug)]
pub struct GitopsOptions {
    /// The branch of every repository. Default `main`.
    pub branch: String,
}

impl Default for GitopsOptions {
    fn default() -> Self {
        Self {
            branch: "main".into(),
        }
    }
}

/// The repositories, under one parent directory.
#[derive(Clone, Debug)]
pub struct GitopsRepos {
    /// The vendor's upstream, bare (`PARENT/upstream.git`): base commit, then the
    /// vendor's new commits.
    pub upstream: PathBuf,
    /// The vendor's working clone that pushes to `upstream` (`PARENT/vendor`).
    pub vendor: PathBuf,
    /// The operator's clone (`PARENT/local`): the base commit plus the operator's commits;
    /// its remotes are `origin` (upstream, fetched before the vendor's new commits) and
    /// `mirror`. Has a committer identity configured.
    pub local: PathBuf,
    /// The private mirror, bare and empty (`PARENT/mirror.git`).
    pub mirror: PathBuf,
    /// The branch of every repository.
    pub branch: String,
    /// The remote of `local` that is `upstream`.
    pub upstream_remote: String,
    /// The remote of `local` that is `mirror`.
    pub mirror_remote: String,
    /// The upstream commit the operator's commits are based on.
    pub base_commit: String,
    /// Upstream's head: the vendor's newest commit.
    pub upstream_head: String,
    /// The local head before any rebase.
    pub local_head: String,
}

impl GitopsRepos {
    /// Makes the repositories under `parent` (which must exist) on branch `main`.
    pub fn create(parent: &Path) -> Result<Self, GitopsError> {
        Self::create_with(parent, &GitopsOptions::default())
    }

    /// Makes the repositories under `parent` with `options`.
    pub fn create_with(parent: &Path, options: &GitopsOptions) -> Result<Self, GitopsError> {
        let branch = options.branch.as_str();
        let upstream = parent.join("upstream.git");
        let mirror = parent.join("mirror.git");
        let vendor = parent.join("vendor");
        let local = parent.join("local");
        git(
            parent,
            &["init", "-q", "--bare", "-b", branch, "upstream.git"],
        )?;
        git(
            parent,
            &["init", "-q", "--bare", "-b", branch, "mirror.git"],
        )?;
        git(parent, &["clone", "-q", "upstream.git", "vendor"])?;
        // `clone` of an empty repository does not know the branch yet.
        git(&vendor, &["checkout", "-q", "-b", branch])?;

        // The release the operator deployed.
        write(&vendor, CONFLICTING_FILE, BASE_OVERLAY)?;
        write(&vendor, DELETED_UPSTREAM_FILE, "a: 1\n")?;
        write(&vendor, "README.md", "Vendor manifests.\n")?;
        git(&vendor, &["add", "."])?;
        git(&vendor, &["commit", "-q", "-m", "v1 manifests"])?;
        git(&vendor, &["push", "-q", "origin", branch])?;
        let base_commit = git(&vendor, &["rev-parse", "HEAD"])?;

        // The operator's clone and changes.
        git(
            parent,
            &["clone", "-q", "-b", branch, "upstream.git", "local"],
        )?;
        for (k, v) in [
            ("user.name", "operator"),
            ("user.email", "operator@example.invalid"),
        ] {
            git(&local, &["config", k, v])?;
        }
        let mirror_str = mirror.to_string_lossy().into_owned();
        git(&local, &["remote", "add", "mirror", &mirror_str])?;
        write(&local, CONFLICTING_FILE, LOCAL_OVERLAY)?;
        git(&local, &["commit", "-q", "-am", "our replicas"])?;
        write(&local, DELETED_UPSTREAM_FILE, "a: 1\nlocal: tweak\n")?;
        git(&local, &["commit", "-q", "-am", "our kfctl tweak"])?;
        write(&local, ADDED_LOCALLY_FILE, "site: lab\n")?;
        git(&local, &["add", "."])?;
        git(&local, &["commit", "-q", "-m", "our site patch"])?;
        let local_head = git(&local, &["rev-parse", "HEAD"])?;

        // The vendor's new release, in two commits.
        write(&vendor, CONFLICTING_FILE, UPSTREAM_OVERLAY)?;
        write(&vendor, ADDED_UPSTREAM_FILE, "kind: New\n")?;
        git(&vendor, &["add", "."])?;
        git(&vendor, &["commit", "-q", "-m", "v2 manifests"])?;
        git(&vendor, &["rm", "-q", DELETED_UPSTREAM_FILE])?;
        git(&vendor, &["commit", "-q", "-m", "v2: kfctl is gone"])?;
        git(&vendor, &["push", "-q", "origin", branch])?;
        let upstream_head = git(&vendor, &["rev-parse", "HEAD"])?;

        Ok(Self {
            upstream,
            vendor,
            local,
            mirror,
            branch: branch.to_string(),
            upstream_remote: "origin".into(),
            mirror_remote: "mirror".into(),
            base_commit,
            upstream_head,
            local_head,
        })
    }

    /// Adds a vendor commit upstream that writes `files` (path, text); returns the new
    /// upstream head.
    pub fn push_vendor_commit(
        &mut self,
        message: &str,
        files: &[(&str, &str)],
    ) -> Result<String, GitopsError> {
        for (path, text) in files {
            write(&self.vendor, path, text)?;
        }
        git(&self.vendor, &["add", "."])?;
        git(&self.vendor, &["commit", "-q", "-m", message])?;
        git(&self.vendor, &["push", "-q", "origin", &self.branch])?;
        self.upstream_head = git(&self.vendor, &["rev-parse", "HEAD"])?;
        Ok(self.upstream_head.clone())
    }
}
