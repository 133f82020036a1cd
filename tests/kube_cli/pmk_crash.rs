//! The crash test of `plans/pmk-cluster-upgrade.toml`: rok-plan is killed with SIGKILL in
//! the middle of the rolling upgrade (the fault hook right after its Nth durable commit,
//! and the test's own `kill -9` at random times), then resumed until the run is done. A
//! step left in doubt is decided the way an operator would, from the cluster: a node
//! already at the new version and Ready was upgraded; a ReplicationController whose pods
//! are all new was bounced; a stand-alone pod the kill left deleted is re-created from the
//! spec rok-plan logged before deleting it. Every node ends upgraded and schedulable, the
//! hand-cordoned node stays cordoned, and no budget was broken on the way.

use std::collections::BTreeSet;
use std::process::Output;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use super::pmk_lab::{Availability, NEW_VERSION, PmkLab, pmk_plan, text};

/// How the first `execute` dies.
#[derive(Debug, Clone, Copy)]
enum Kill {
    /// The fault hook: SIGKILL right after the Nth durable commit.
    AfterCommit(u64),
    /// The test's SIGKILL after this long.
    After(Duration),
    /// The test's SIGKILL while the first drain of a node running a `web` pod is asking
    /// again and again for an eviction its budget refuses (the budget is relaxed after).
    WhileBlockedByBudget,
}

fn uids(lab: &PmkLab, app: &str) -> BTreeSet<String> {
    lab.pods()
        .iter()
        .filter(|p| p["metadata"]["labels"]["app"] == app)
        .filter_map(|p| p["metadata"]["uid"].as_str().map(str::to_string))
        .collect()
}

/// What the cluster looked like before the run, for deciding in-doubt steps.
struct Before {
    batch_worker: BTreeSet<String>,
    debug_shell: String,
}

/// The latest run's in-doubt instances (left `running` by the kill).
async fn in_doubt(lab: &PmkLab) -> (String, Vec<String>) {
    let out = lab.run(&["status", "--output", "json"]).await;
    let status: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("status is not JSON ({e}): {}", text(&out)));
    let run = status["run"]["id"]
        .as_str()
        .or_else(|| status["id"].as_str())
        .unwrap_or_default()
        .to_string();
    let doubt = status["steps"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| s["state"] == "running")
        .filter_map(|s| s["instance"].as_str().map(str::to_string))
        .collect();
    (run, doubt)
}

/// The operator's decision on one in-doubt instance: `--assume-done` or `--rerun`, after
/// repairing what the kill left half-done.
async fn decide(lab: &PmkLab, run: &str, instance: &str, before: &Before) -> &'static str {
    if let Some(node) = instance
        .strip_prefix("nodes/")
        .and_then(|s| s.strip_suffix("/upgrade"))
    {
        // The upgrade command may still be finishing (the kill does not reach it): an
        // operator looks at the node; the command is safe to run again.
        let n = lab.node(node);
        let ready = n["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["type"] == "Ready" && c["status"] == "True");
        return if n["status"]["nodeInfo"]["kubeletVersion"] == NEW_VERSION && ready {
            "--assume-done"
        } else {
            "--rerun"
        };
    }
    match instance {
        "refresh-tokens-rc-bounce/batch-worker" => {
            let now = uids(lab, "batch-worker");
            let rc = lab
                .cluster
                .get("", "replicationcontrollers", "default", "batch-worker")
                .expect("batch-worker");
            let bouncing = !rc["metadata"]["annotations"]["rok-plan/bounce-replicas"].is_null();
            if !bouncing && now.len() == 2 && now.is_disjoint(&before.batch_worker) {
                "--assume-done"
            } else {
                "--rerun"
            }
        }
        // Resuming a copy-and-roll continues it (or finds it done).
        "refresh-tokens-rc-rolling/frontend" => "--rerun",
        "refresh-tokens-pods/debug-shell" => {
            match lab.cluster.get("", "pods", "default", "debug-shell") {
                Some(p) if p["metadata"]["uid"] != before.debug_shell.as_str() => "--assume-done",
                Some(_) => "--rerun",
                None => {
                    // Deleted, not yet re-created: re-create it from the logged spec.
                    let logs = lab.run(&["logs", run, instance]).await;
                    let said = String::from_utf8_lossy(&logs.stdout);
                    let spec = said
                        .lines()
                        .find_map(|l| l.split_once("will be re-created from: ").map(|(_, s)| s))
                        .unwrap_or_else(|| panic!("no logged spec: {}", text(&logs)));
                    let pod: Value = serde_json::from_str(spec.trim()).expect("logged spec");
                    lab.cluster.create("default", pod).expect("re-created");
                    "--assume-done"
                }
            }
        }
        other => panic!("unexpected step in doubt: {other}"),
    }
}

/// Starts the run, kills it, resumes (deciding in-doubt steps) until it succeeds.
async fn crash_and_resume(kill: Kill) {
    let lab = PmkLab::start(5).await;
    let params = lab.params("allow_unmanaged = true\nallow_emptydir_loss = true");
    let params = params.to_str().expect("utf-8").to_string();
    let plan = pmk_plan();
    let plan = plan.to_str().expect("utf-8").to_string();
    let before = Before {
        batch_worker: uids(&lab, "batch-worker"),
        debug_shell: lab
            .cluster
            .get("", "pods", "default", "debug-shell")
            .and_then(|p| p["metadata"]["uid"].as_str().map(str::to_string))
            .expect("debug-shell"),
    };
    let availability = Availability::watch(lab.cluster.clone());
    let mut cmd = lab.command(&["execute", &plan, "--params", &params]);
    let first: Output = match kill {
        Kill::AfterCommit(n) => {
            cmd.env("ROK_PLAN_TEST_KILL_AFTER_COMMITS", n.to_string());
            tokio::task::spawn_blocking(move || cmd.output().expect("rok-plan runs"))
                .await
                .expect("joined")
        }
        Kill::WhileBlockedByBudget => {
            lab.set_web_min_available(3);
            let blocked = lab
                .nodes
                .iter()
                .find(|n| {
                    lab.pods().iter().any(|p| {
                        p["metadata"]["labels"]["app"] == "web" && p["spec"]["nodeName"] == **n
                    })
                })
                .expect("a node runs a web pod")
                .clone();
            cmd.stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
            let mut child = cmd.spawn().expect("rok-plan starts");
            // The drain cordons with rok-plan's mark (or finds the hand-cordoned node),
            // evicts what it may, then asks for the web pod every 100 ms.
            let waited = lab
                .cluster
                .wait_for(Duration::from_secs(60), |w| {
                    let evicting = w.list("", "pods", Some("default")).iter().any(|p| {
                        p["spec"]["nodeName"] == blocked.as_str()
                            && p["metadata"]["deletionTimestamp"].is_string()
                    });
                    let cordoned = w
                        .get("", "nodes", "", &blocked)
                        .is_some_and(|n| n["spec"]["unschedulable"] == true);
                    cordoned && evicting
                })
                .await;
            assert!(waited, "the drain of {blocked} never started evicting");
            tokio::time::sleep(Duration::from_millis(500)).await;
            assert!(
                lab.pods()
                    .iter()
                    .any(|p| p["metadata"]["labels"]["app"] == "web"
                        && p["spec"]["nodeName"] == blocked.as_str()
                        && p["metadata"]["deletionTimestamp"].is_null()),
                "the budget holds the web pod on {blocked}"
            );
            let _ = child.kill();
            let out =
                tokio::task::spawn_blocking(move || child.wait_with_output().expect("waited"))
                    .await
                    .expect("joined");
            lab.set_web_min_available(2);
            out
        }
        Kill::After(delay) => {
            cmd.stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
            let mut child = cmd.spawn().expect("rok-plan starts");
            tokio::time::sleep(delay).await;
            let _ = child.kill();
            tokio::task::spawn_blocking(move || child.wait_with_output().expect("waited"))
                .await
                .expect("joined")
        }
    };
    if first.status.code() == Some(0) {
        eprintln!("{kill:?}: the run ended before the kill");
    } else {
        assert_eq!(
            first.status.code(),
            None,
            "{kill:?}: killed, not failed\n{}",
            text(&first)
        );
        let mut decisions: Vec<String> = Vec::new();
        let mut done = false;
        for _ in 0..10 {
            let mut args: Vec<&str> = vec!["resume"];
            args.extend(decisions.iter().map(String::as_str));
            let out = lab.run(&args).await;
            match out.status.code() {
                Some(0) => {
                    eprintln!("{kill:?}: resumed to the end");
                    done = true;
                    break;
                }
                Some(3) => {
                    decisions.clear();
                    let (run, doubt) = in_doubt(&lab).await;
                    assert!(
                        !doubt.is_empty(),
                        "exit 3 without a step in doubt\n{}",
                        text(&out)
                    );
                    for instance in doubt {
                        decisions.push(decide(&lab, &run, &instance, &before).await.to_string());
                        decisions.push(instance);
                    }
                    eprintln!("{kill:?}: in doubt, decided {decisions:?}");
                }
                _ => panic!("{kill:?}: resume failed\n{}", text(&out)),
            }
        }
        assert!(done, "{kill:?}: the run did not finish after 10 resumes");
    }
    availability.assert_within_budgets().await;
    lab.assert_every_node_upgraded();
    let frontends: Vec<Value> = lab
        .cluster
        .list("", "replicationcontrollers", Some("default"))
        .into_iter()
        .filter(|rc| {
            rc["metadata"]["name"]
                .as_str()
                .is_some_and(|n| n.starts_with("frontend"))
        })
        .collect();
    assert_eq!(frontends.len(), 1, "{kill:?}: {frontends:#?}");
    assert!(
        lab.cluster
            .get("", "pods", "default", "debug-shell")
            .is_some()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pmk_sigkill_after_many_commits_then_resume_upgrades_every_node() {
    // Commit points spread over the rolling upgrade (cordon, drain, upgrade, wait, uncordon
    // of each node: a few commits per step) and the token refresh at the end.
    // The whole run makes 31 commits: every odd one (a kill after a step's start commit is
    // a kill mid-step: mid-drain, mid-upgrade), and every one of the token refresh at the
    // end, where three non-idempotent steps run at once.
    let points: Vec<u64> = (1..=25).step_by(2).chain(26..=31).collect();
    for n in points {
        crash_and_resume(Kill::AfterCommit(n)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pmk_kill_9_while_a_drain_waits_on_a_budget_then_resume_upgrades_every_node() {
    crash_and_resume(Kill::WhileBlockedByBudget).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pmk_kill_9_at_random_times_then_resume_upgrades_every_node() {
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(7)
        | 1;
    let mut x = seed;
    for _ in 0..4 {
        // xorshift: a kill anywhere in the first ~4 s of a ~5 s run.
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let delay = Duration::from_millis(300 + x % 3700);
        eprintln!("seed {seed}: kill -9 after {delay:?}");
        crash_and_resume(Kill::After(delay)).await;
    }
}
