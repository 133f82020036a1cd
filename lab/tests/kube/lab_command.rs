//! The `lab kube` commands as a user runs them: the real `lab` binary serves a double with
//! `--workloads`, the control verbs script it, and `kubectl` shows their effects.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const LAB: &str = env!("CARGO_BIN_EXE_lab");

const SHOP: &str = "apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: nginx, image: nginx}]
";

const HELLO: &str = "# a comment-only document first, as generated manifests have
---
apiVersion: v1
kind: Pod
metadata: {name: hello}
spec:
  containers: [{name: app, image: busybox}]
---
apiVersion: v1
kind: Pod
metadata: {name: stuck-1}
spec:
  containers: [{name: app, image: busybox}]
";

/// A child process killed (and reaped) when the test ends, failed or not.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A `lab kube serve` running in a temporary directory.
struct Served {
    dir: tempfile::TempDir,
    kubeconfig: PathBuf,
    _server: KillOnDrop,
}

impl Served {
    /// Starts `lab kube serve` with the workload files (name, text) and extra arguments, and
    /// waits for its kubeconfig.
    fn start(workloads: &[(&str, &str)], extra: &[&str]) -> Served {
        let dir = tempfile::tempdir().expect("tempdir");
        let kubeconfig = dir.path().join("kubeconfig");
        let stderr = std::fs::File::create(dir.path().join("stderr")).expect("stderr file");
        let mut cmd = Command::new(LAB);
        cmd.args(["kube", "serve", "--nodes", "2", "--kubeconfig"])
            .arg(&kubeconfig);
        for (name, text) in workloads {
            let p = dir.path().join(name);
            std::fs::write(&p, text).expect("write workloads");
            cmd.arg("--workloads").arg(p);
        }
        cmd.args(extra).stdout(Stdio::null()).stderr(stderr);
        let mut server = KillOnDrop(cmd.spawn().expect("lab starts"));
        let deadline = Instant::now() + Duration::from_secs(20);
        while !kubeconfig.exists() {
            if let Ok(Some(status)) = server.0.try_wait() {
                panic!(
                    "lab kube serve exited ({status}): {}",
                    std::fs::read_to_string(dir.path().join("stderr")).unwrap_or_default()
                );
            }
            assert!(Instant::now() < deadline, "no kubeconfig within 20 s");
            std::thread::sleep(Duration::from_millis(20));
        }
        Served {
            dir,
            kubeconfig,
            _server: server,
        }
    }

    fn lab(&self, args: &[&str]) -> Output {
        Command::new(LAB)
            .arg("kube")
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .output()
            .expect("lab runs")
    }

    fn kubectl(&self, args: &[&str]) -> Output {
        kubectl_cmd(&self.kubeconfig)
            .args(args)
            .output()
            .expect("kubectl runs")
    }
}

fn kubectl_cmd(kubeconfig: &Path) -> Command {
    let mut c = Command::new("kubectl");
    c.env("KUBECONFIG", kubeconfig);
    c
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn ok(out: Output) -> String {
    assert!(out.status.success(), "failed: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn fails(out: Output) -> String {
    assert!(!out.status.success(), "should fail: {}", text(&out));
    text(&out)
}

#[test]
fn workloads_exist_when_the_kubeconfig_appears_and_state_shows_them() {
    let s = Served::start(&[("shop.yaml", SHOP), ("hello.yaml", HELLO)], &[]);
    // No waiting: the kubeconfig is written after the workloads were created.
    assert_eq!(
        ok(s.kubectl(&["get", "deployment", "-n", "shop", "-o", "name"])),
        "deployment.apps/web\n"
    );
    let state: serde_json::Value = serde_json::from_str(&ok(s.lab(&[
        "state",
        "--resource",
        "deployments.apps",
        "--namespace",
        "shop",
    ])))
    .expect("state is JSON");
    assert_eq!(state["kind"], "List");
    let items = state["items"].as_array().expect("items");
    assert_eq!(items.len(), 1, "{state}");
    assert_eq!(items[0]["kind"], "Deployment");
    assert_eq!(items[0]["metadata"]["name"], "web");
    assert_eq!(items[0]["spec"]["replicas"], 2);
    let names = ok(s.lab(&["state", "--resource", "po", "-o", "names"]));
    assert!(names.contains("pod/default/hello\n"), "{names}");
    assert!(names.contains("pod/default/stuck-1\n"), "{names}");
    let everything = ok(s.lab(&["state", "-o", "names"]));
    for want in ["namespace/shop\n", "node/node-2\n", "deployment/shop/web\n"] {
        assert!(everything.contains(want), "{want} missing: {everything}");
    }
    let err = fails(s.lab(&["state", "--resource", "widgets"]));
    assert!(
        err.contains("doesn't have a resource type \"widgets\""),
        "{err}"
    );
}

#[test]
fn appended_log_lines_show_in_kubectl_logs() {
    let s = Served::start(&[("hello.yaml", HELLO)], &[]);
    ok(s.kubectl(&[
        "wait",
        "--for=condition=Ready",
        "pod/hello",
        "--timeout=20s",
    ]));
    let said = ok(s.lab(&["log", "hello", "first line", "second line"]));
    assert!(said.contains("appended 2 line(s) to default/hello container app"));
    ok(s.lab(&["log", "hello", "--container", "app", "third"]));
    assert_eq!(
        ok(s.kubectl(&["logs", "hello"])),
        "first line\nsecond line\nthird\n"
    );
    let err = fails(s.lab(&["log", "nope", "x"]));
    assert!(err.contains("pods \"nope\" not found"), "{err}");
    let err = fails(s.lab(&["log", "hello", "-c", "sidecar", "x"]));
    assert!(err.contains("container sidecar is not valid"), "{err}");
}

fn ready_status(s: &Served, pod: &str) -> String {
    ok(s.kubectl(&[
        "get",
        "pod",
        pod,
        "-o",
        "jsonpath={.status.phase}/{.status.conditions[?(@.type==\"Ready\")].status}",
    ]))
}

#[test]
fn never_ready_pods_stay_unready() {
    // `stuck-1` comes with the workloads, made never-ready from the start by `--behaviour`;
    // `late-1` is made so by the `pod-behaviour` command before it is created.
    let s = Served::start(
        &[("hello.yaml", HELLO)],
        &["--behaviour", "stuck=never-ready"],
    );
    ok(s.lab(&["pod-behaviour", "late", "never-ready"]));
    let late = s.dir.path().join("late.yaml");
    std::fs::write(
        &late,
        "apiVersion: v1\nkind: Pod\nmetadata: {name: late-1}\nspec:\n  containers: [{name: app, image: busybox}]\n",
    )
    .expect("write");
    ok(s.kubectl(&["apply", "-f", &late.display().to_string()]));
    ok(s.kubectl(&[
        "wait",
        "--for=condition=Ready",
        "pod/hello",
        "--timeout=20s",
    ]));
    for pod in ["stuck-1", "late-1"] {
        ok(s.kubectl(&[
            "wait",
            "--for=jsonpath={.status.phase}=Running",
            &format!("pod/{pod}"),
            "--timeout=20s",
        ]));
    }
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(ready_status(&s, "stuck-1"), "Running/False");
    assert_eq!(ready_status(&s, "late-1"), "Running/False");
    assert_eq!(ready_status(&s, "hello"), "Running/True");
    let err = fails(s.lab(&["pod-behaviour", "late", "slow-ready"]));
    assert!(err.contains("needs a delay in milliseconds"), "{err}");
    let err = fails(s.lab(&["pod-behaviour", "late", "sleepy"]));
    assert!(err.contains("invalid value 'sleepy'"), "{err}");
}

#[test]
fn an_injected_status_is_seen_by_kubectl_then_it_works_again() {
    let s = Served::start(&[("hello.yaml", HELLO)], &[]);
    ok(s.lab(&[
        "fail",
        "--status",
        "500",
        "--count",
        "1",
        "--verb",
        "get",
        "--path-contains",
        "/pods",
    ]));
    // Discovery and node requests do not match the rule.
    ok(s.kubectl(&["get", "nodes"]));
    let err = fails(s.kubectl(&["get", "pods"]));
    assert!(err.contains("injected fault: 500"), "{err}");
    assert!(ok(s.kubectl(&["get", "pods", "-o", "name"])).contains("pod/hello"));
    let err = fails(s.lab(&["fail", "--status", "200"]));
    assert!(err.contains("not an error status"), "{err}");
    let err = fails(s.lab(&["fail", "--status", "500", "--verb", "FETCH"]));
    assert!(err.contains("unknown HTTP method"), "{err}");
    // A fault on every request leaves the control API reachable, so it can be cleared.
    ok(s.lab(&["fail", "--status", "503", "--count", "1000"]));
    fails(s.kubectl(&["get", "nodes"]));
    ok(s.lab(&["clear-faults"]));
    ok(s.kubectl(&["get", "nodes"]));
}

#[test]
fn latency_slows_every_request_or_the_matching_ones() {
    let s = Served::start(&[], &[]);
    let timed = |args: &[&str]| {
        let t = Instant::now();
        ok(s.kubectl(args));
        t.elapsed()
    };
    ok(s.kubectl(&["get", "nodes"])); // warms kubectl's discovery cache
    ok(s.lab(&["latency", "--ms", "400"]));
    assert!(timed(&["get", "nodes"]) >= Duration::from_millis(400));
    ok(s.lab(&["latency", "--ms", "0"]));
    // Long enough that a slow machine running kubectl cannot blur the two cases.
    ok(s.lab(&[
        "latency",
        "--ms",
        "2000",
        "--count",
        "1",
        "--path-contains",
        "/nodes",
    ]));
    assert!(timed(&["get", "nodes"]) >= Duration::from_millis(2000));
    assert!(timed(&["get", "nodes"]) < Duration::from_millis(2000));
}

#[test]
fn an_added_node_shows_in_kubectl_get_nodes() {
    let s = Served::start(&[], &[]);
    assert!(ok(s.lab(&["add-node", "node-9"])).contains("node/node-9 added"));
    assert_eq!(
        ok(s.kubectl(&["get", "nodes", "-o", "name"])),
        "node/node-1\nnode/node-2\nnode/node-9\n"
    );
    assert_eq!(
        ok(s.kubectl(&[
            "get",
            "node",
            "node-9",
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}"
        ])),
        "True"
    );
    let err = fails(s.lab(&["add-node", "node-9"]));
    assert!(err.contains("already exists"), "{err}");
}

#[test]
fn drop_watches_ends_a_kubectl_watch() {
    let s = Served::start(&[("hello.yaml", HELLO)], &[]);
    let mut watch = KillOnDrop(
        kubectl_cmd(&s.kubeconfig)
            .args(["get", "pods", "--watch", "--request-timeout=0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("kubectl watch starts"),
    );
    // The first rows come from the LIST before the watch; the watch is open soon after.
    let stdout = watch.0.stdout.take().expect("stdout");
    let mut first = String::new();
    // The reader lives to the end of the test: dropping it would close the pipe and end
    // kubectl with SIGPIPE at its next row.
    let mut rows = std::io::BufReader::new(stdout);
    std::io::BufRead::read_line(&mut rows, &mut first).expect("read");
    assert!(first.contains("NAME"), "{first}");
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        watch.0.try_wait().expect("try_wait").is_none(),
        "kubectl's watch ended by itself"
    );
    // Dropped repeatedly: a drop landing before the watch request arrived ends nothing.
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        ok(s.lab(&["drop-watches"]));
        if let Some(status) = watch.0.try_wait().expect("try_wait") {
            break status;
        }
        assert!(Instant::now() < deadline, "the watch was not dropped");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(status.success(), "kubectl exited {status}");
    drop(rows);
}

#[test]
fn errors_are_clear() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lab = |args: &[&str]| {
        Command::new(LAB)
            .arg("kube")
            .args(args)
            .env_remove("KUBECONFIG")
            .output()
            .expect("lab runs")
    };
    // Nothing listens on port 1.
    let closed = dir.path().join("closed");
    std::fs::write(
        &closed,
        "apiVersion: v1\nkind: Config\nclusters:\n- name: x\n  cluster: {server: 'http://127.0.0.1:1'}\ncontexts:\n- name: x\n  context: {cluster: x}\ncurrent-context: x\n",
    )
    .expect("write");
    let closed = closed.display().to_string();
    let err = fails(lab(&["drop-watches", "--kubeconfig", &closed]));
    assert!(
        err.contains("cannot reach the lab's Kubernetes API double at http://127.0.0.1:1"),
        "{err}"
    );
    let missing = dir.path().join("missing").display().to_string();
    let err = fails(lab(&["state", "--kubeconfig", &missing]));
    assert!(err.contains("cannot read it"), "{err}");
    let err = fails(lab(&["state"]));
    assert!(err.contains("--kubeconfig"), "{err}");
    let tls = dir.path().join("tls");
    std::fs::write(
        &tls,
        "clusters:\n- name: x\n  cluster: {server: 'https://10.0.0.1:6443'}\n",
    )
    .expect("write");
    let err = fails(lab(&[
        "add-node",
        "n",
        "--kubeconfig",
        &tls.display().to_string(),
    ]));
    assert!(err.contains("not a lab double"), "{err}");
    // Bad workloads stop `serve` before it writes a kubeconfig.
    let kc = dir.path().join("kc");
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "apiVersion: v1\nkind: Widget\nmetadata: {name: w}\n").expect("write");
    let serve = |workloads: &Path| {
        Command::new(LAB)
            .args(["kube", "serve", "--kubeconfig"])
            .arg(&kc)
            .arg("--workloads")
            .arg(workloads)
            .output()
            .expect("lab runs")
    };
    let err = fails(serve(&bad));
    assert!(err.contains("bad.yaml: Widget w: "), "{err}");
    assert!(err.contains("no kind Widget in v1"), "{err}");
    let err = fails(serve(&dir.path().join("absent.yaml")));
    assert!(err.contains("cannot read the workloads"), "{err}");
    std::fs::write(&bad, "kind: [unclosed\n").expect("write");
    let err = fails(serve(&bad));
    assert!(err.contains("bad.yaml:"), "{err}");
    assert!(!kc.exists());
    let help = ok(Command::new(LAB)
        .args(["kube", "--help"])
        .output()
        .expect("lab runs"));
    for verb in [
        "serve",
        "log",
        "pod-behaviour",
        "fail",
        "latency",
        "drop-watches",
        "add-node",
        "state",
    ] {
        assert!(help.contains(&format!("  {verb} ")), "{verb}: {help}");
    }
}
