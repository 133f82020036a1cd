//! A small harness: write plan files into a temporary directory, run the real `rok-plan`
//! binary there, and look at its exit status, stdout and stderr.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use tempfile::TempDir;

/// The binary under test.
pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_rok-plan");

/// The root of the repository (for `plans/`, `tests/corpus/`).
pub(crate) fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Environment variables that could change what the binary prints.
const SCRUBBED_ENV: &[&str] = &[
    "NO_COLOR",
    "CLICOLOR",
    "CLICOLOR_FORCE",
    "FORCE_COLOR",
    "COLUMNS",
    "RUST_BACKTRACE",
    "ROK_PLAN_STATE",
];

/// One invocation of `rok-plan`, run in a fresh temporary directory.
pub(crate) struct Test {
    dir: TempDir,
    cwd: Option<PathBuf>,
    args: Vec<OsString>,
    env: Vec<(String, String)>,
}

impl Test {
    /// A test with an empty temporary directory as working directory.
    pub(crate) fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("create a temporary directory"),
            cwd: None,
            args: Vec::new(),
            env: Vec::new(),
        }
    }

    /// The temporary directory.
    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `contents` to `name` in the temporary directory.
    pub(crate) fn file(self, name: &str, contents: &str) -> Self {
        std::fs::write(self.dir.path().join(name), contents).expect("write a test file");
        self
    }

    /// Runs in `dir` instead of the temporary directory (paths in output stay relative).
    pub(crate) fn cwd(mut self, dir: impl AsRef<Path>) -> Self {
        self.cwd = Some(dir.as_ref().to_path_buf());
        self
    }

    /// Adds command-line arguments.
    pub(crate) fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Sets an environment variable for the binary.
    pub(crate) fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    /// Runs the binary and collects what it did.
    pub(crate) fn run(&self) -> Run {
        let mut cmd = Command::new(BIN);
        cmd.args(&self.args)
            .current_dir(self.cwd.as_deref().unwrap_or(self.dir.path()));
        for key in SCRUBBED_ENV {
            cmd.env_remove(key);
        }
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let out = cmd.output().expect("run rok-plan");
        let redact = |bytes: &[u8]| {
            let text = String::from_utf8(bytes.to_vec()).expect("rok-plan writes UTF-8");
            redact_path(&text, self.dir.path())
        };
        Run {
            code: out.status.code(),
            stdout: redact(&out.stdout),
            stderr: redact(&out.stderr),
            command: format!(
                "rok-plan {}",
                self.args
                    .iter()
                    .map(|a| a.to_string_lossy())
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
        }
    }
}

/// Replaces the temporary directory's path by `[TMP]`.
fn redact_path(text: &str, dir: &Path) -> String {
    let mut out = text.to_string();
    for path in [dir.canonicalize().ok(), Some(dir.to_path_buf())]
        .into_iter()
        .flatten()
    {
        out = out.replace(&*path.to_string_lossy(), "[TMP]");
    }
    out
}

/// What one run of the binary did.
#[derive(Debug)]
pub(crate) struct Run {
    /// The exit status (`None` when killed by a signal).
    pub(crate) code: Option<i32>,
    /// Standard output, temporary paths redacted.
    pub(crate) stdout: String,
    /// Standard error, temporary paths redacted.
    pub(crate) stderr: String,
    command: String,
}

impl Run {
    /// Asserts the exit status, showing everything the binary printed when it differs.
    #[track_caller]
    pub(crate) fn code(&self, expected: i32) -> &Self {
        assert_eq!(
            self.code,
            Some(expected),
            "`{}` exited with {:?}, not {expected}\n--- stdout\n{}\n--- stderr\n{}",
            self.command,
            self.code,
            self.stdout,
            self.stderr
        );
        self
    }

    /// Standard output parsed as one JSON document.
    #[track_caller]
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "`{}` did not print JSON ({e}):\n{}\n--- stderr\n{}",
                self.command, self.stdout, self.stderr
            )
        })
    }

    /// Everything the binary printed.
    pub(crate) fn all_output(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

/// The `(code, line, column)` of every diagnostic in a JSON document's `diagnostics` array.
pub(crate) fn codes_at(diagnostics: &Value) -> Vec<(String, u64, u64)> {
    diagnostics
        .as_array()
        .expect("`diagnostics` is an array")
        .iter()
        .map(|d| {
            (
                d["code"]
                    .as_str()
                    .expect("a diagnostic has a code")
                    .to_string(),
                d["line"].as_u64().unwrap_or(0),
                d["column"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

/// The codes of every diagnostic in a JSON document's `diagnostics` array.
pub(crate) fn codes(diagnostics: &Value) -> Vec<String> {
    codes_at(diagnostics)
        .into_iter()
        .map(|(c, _, _)| c)
        .collect()
}
