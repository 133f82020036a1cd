//! The harness: a temporary directory holding plan files, the files their steps write, and
//! a state store (`--state state`); commands are run there with stdin not a terminal.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

/// The binary under test.
pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_rok-plan");

/// Environment variables that could change what the binary does or prints.
const SCRUBBED_ENV: &[&str] = &[
    "ROK_PLAN_STATE",
    "ROK_PLAN_TEST_KILL_AFTER_COMMITS",
    "NO_COLOR",
    "CLICOLOR_FORCE",
    "FORCE_COLOR",
    "COLUMNS",
    "RUST_BACKTRACE",
];

/// A working directory for one test.
pub(crate) struct Lab {
    dir: TempDir,
}

/// What one command did.
#[derive(Debug)]
pub(crate) struct Out {
    /// The exit status (`None` when killed by a signal).
    pub(crate) code: Option<i32>,
    /// Standard output.
    pub(crate) stdout: String,
    /// Standard error.
    pub(crate) stderr: String,
    /// The command line, for messages.
    pub(crate) command: String,
}

impl Out {
    /// Asserts the exit status, showing the output when it differs.
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

    /// Standard output as one JSON document.
    #[track_caller]
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "`{}` did not print one JSON document ({e}):\n{}\n--- stderr\n{}",
                self.command, self.stdout, self.stderr
            )
        })
    }

    /// Standard output as JSON lines (events).
    #[track_caller]
    pub(crate) fn events(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .map(|l| {
                serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("`{}`: a line is not JSON ({e}): {l}", self.command))
            })
            .collect()
    }

    /// Everything printed.
    pub(crate) fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

impl Lab {
    /// An empty directory.
    pub(crate) fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("a temporary directory"),
        }
    }

    /// A directory with `plan.toml`.
    pub(crate) fn with_plan(plan: &str) -> Self {
        let lab = Self::new();
        lab.write("plan.toml", plan);
        lab
    }

    /// The directory.
    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The state store directory (`--state state`).
    pub(crate) fn state(&self) -> PathBuf {
        self.path().join("state")
    }

    /// Writes a file.
    pub(crate) fn write(&self, name: &str, text: &str) {
        std::fs::write(self.path().join(name), text).expect("write a test file");
    }

    /// The lines of a file the steps wrote (none when it does not exist).
    pub(crate) fn lines(&self, name: &str) -> Vec<String> {
        std::fs::read_to_string(self.path().join(name))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// How many times `line` occurs in file `name`.
    pub(crate) fn count(&self, name: &str, line: &str) -> usize {
        self.lines(name).iter().filter(|l| *l == line).count()
    }

    /// `rok-plan --state state ARGS`, in the directory, stdin not a terminal.
    pub(crate) fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.current_dir(self.path())
            .args(["--state", "state"])
            .args(args)
            .stdin(Stdio::null());
        for k in SCRUBBED_ENV {
            c.env_remove(k);
        }
        c
    }

    /// Runs a command to its end.
    pub(crate) fn run(&self, args: &[&str]) -> Out {
        self.run_cmd(self.cmd(args), args)
    }

    /// Runs a prepared command (from [`Lab::cmd`]) to its end.
    /// A command that has not ended after [`LIMIT`] is killed and the test fails, so that a
    /// hanging run fails the suite instead of stalling it.
    pub(crate) fn run_cmd(&self, mut cmd: Command, args: &[&str]) -> Out {
        let child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("rok-plan starts");
        let command = format!("rok-plan --state state {}", args.join(" "));
        let (mut out, _) = wait_with_deadline_named(child, LIMIT, &command);
        out.command = command;
        out
    }

    /// Starts a command in the background, its output piped.
    pub(crate) fn spawn(&self, args: &[&str]) -> Child {
        self.cmd(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("rok-plan starts")
    }

    /// Starts a command in the background as the leader of a new process group, as a shell
    /// starts a foreground job: a terminal's Ctrl-C goes to that whole group.
    pub(crate) fn spawn_job(&self, args: &[&str]) -> Child {
        use std::os::unix::process::CommandExt;
        self.cmd(args)
            .process_group(0)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("rok-plan starts")
    }

    /// `status --output json` of the latest run (or `run`).
    #[track_caller]
    pub(crate) fn status(&self) -> Value {
        self.run(&["--output", "json", "status"]).code(0).json()
    }

    /// The latest run's id.
    #[track_caller]
    pub(crate) fn run_id(&self) -> String {
        self.status()["run"]["id"]
            .as_str()
            .expect("a run id")
            .to_string()
    }

    /// Waits until a file contains `line` (a step got that far).
    #[track_caller]
    pub(crate) fn wait_for_line(&self, name: &str, line: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.count(name, line) == 0 {
            assert!(
                Instant::now() < deadline,
                "`{line}` never appeared in {name}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A step instance of a `status --output json` document.
#[track_caller]
pub(crate) fn step<'a>(status: &'a Value, id: &str) -> &'a Value {
    status["steps"]
        .as_array()
        .expect("status has steps")
        .iter()
        .find(|s| s["instance"] == id)
        .unwrap_or_else(|| panic!("no instance `{id}` in {status:#}"))
}

/// The state of a step instance in a `status --output json` document.
#[track_caller]
pub(crate) fn state_of(status: &Value, id: &str) -> String {
    step(status, id)["state"]
        .as_str()
        .expect("a state")
        .to_string()
}

/// The attempts of a step instance in a `status --output json` document.
#[track_caller]
pub(crate) fn attempts_of(status: &Value, id: &str) -> u64 {
    step(status, id)["attempts"].as_u64().expect("attempts")
}

/// Sends a signal to a child.
pub(crate) fn signal(child: &Child, sig: i32) {
    // SAFETY: kill(2) on our own child's pid.
    unsafe {
        libc::kill(child.id() as i32, sig);
    }
}

/// How long one command may take before the test calls it hung.
pub(crate) const LIMIT: Duration = Duration::from_secs(30);

/// Sends a signal to a child's whole process group (see [`Lab::spawn_job`]), as a terminal
/// does on Ctrl-C.
pub(crate) fn signal_job(child: &Child, sig: i32) {
    // SAFETY: kill(2) on the process group our own child leads.
    unsafe {
        libc::kill(-(child.id() as i32), sig);
    }
}

/// Waits for a child with a deadline; returns its output and how long it took.
#[track_caller]
pub(crate) fn wait_with_deadline(child: Child, limit: Duration) -> (Out, Duration) {
    wait_with_deadline_named(child, limit, "rok-plan (background)")
}

#[track_caller]
fn wait_with_deadline_named(child: Child, limit: Duration, command: &str) -> (Out, Duration) {
    let start = Instant::now();
    let (tx, rx) = std::sync::mpsc::channel();
    let id = child.id();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = match rx.recv_timeout(limit) {
        Ok(out) => out.expect("the child is reaped"),
        Err(_) => {
            // SAFETY: kill(2) on our own child's pid, so that the test does not hang.
            unsafe {
                libc::kill(id as i32, libc::SIGKILL);
            }
            // What it printed up to the kill says where it hung.
            let said = match rx.recv_timeout(Duration::from_secs(5)) {
                Ok(Ok(out)) => format!(
                    "--- stdout\n{}\n--- stderr\n{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                ),
                _ => "(its output could not be read)".to_string(),
            };
            panic!("`{command}` did not exit within {limit:?}\n{said}");
        }
    };
    (
        Out {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            command: command.to_string(),
        },
        start.elapsed(),
    )
}

/// Every file under `dir`, with its bytes.
pub(crate) fn files_under(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).expect("read a directory") {
            let p = e.expect("a directory entry").path();
            if p.is_dir() {
                todo.push(p);
            } else {
                let bytes = std::fs::read(&p).expect("read a file");
                out.push((p, bytes));
            }
        }
    }
    out.sort();
    out
}

/// Whether `needle` occurs in `hay`.
pub(crate) fn contains_bytes(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}
