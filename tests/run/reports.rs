//! What `status`, `runs` and `logs` print, for people and as JSON, and the JSON event
//! stream of `execute`.

use std::collections::HashMap;

use crate::support::Lab;

const PLAN: &str = r#"
[plan]
name = "report"

[[step]]
id = "hello"
type = "shell"
run = "echo hello out; echo hello err >&2"

[[step]]
id = "flaky"
type = "shell"
needs = ["hello"]
retry = { attempts = 3, delay = "10ms" }
run = "echo try >> tries; echo attempt-$(wc -l < tries); test $(wc -l < tries) -ge 3"

[[step]]
id = "broken"
type = "shell"
on_failure = "continue"
run = "echo broken output; exit 9"

[[step]]
id = "nap"
type = "sleep"
duration = "10ms"
"#;

#[test]
fn status_runs_and_logs_for_people() {
    let lab = Lab::with_plan(PLAN);
    lab.run(&["execute", "plan.toml"]).code(1);
    let id = lab.run_id();

    let status = lab.run(&["status"]);
    status.code(0);
    let text = status.all();
    assert!(text.contains(&format!("Run {id} of plan report")), "{text}");
    assert!(text.contains("failed"), "{text}");
    for header in ["INSTANCE", "STATE", "ATTEMPTS", "DURATION", "LAST ERROR"] {
        assert!(text.contains(header), "{text}");
    }
    let row = |inst: &str| {
        text.lines()
            .find(|l| l.split_whitespace().next() == Some(inst))
            .unwrap_or_else(|| panic!("no row for {inst}:\n{text}"))
            .split_whitespace()
            .collect::<Vec<_>>()
    };
    assert_eq!(row("flaky")[1..3], ["succeeded", "3"]);
    assert_eq!(row("broken")[1..3], ["failed", "1"]);
    assert!(row("broken").join(" ").contains("exited with status 9"));
    assert_eq!(row("nap")[1], "succeeded");
    // The same for an explicit run id.
    assert_eq!(lab.run(&["status", &id]).code(0).all(), text);

    let runs = lab.run(&["runs"]).code(0).all();
    let line = runs
        .lines()
        .find(|l| l.starts_with(&id))
        .unwrap_or_else(|| panic!("{runs}"));
    assert!(line.contains("report") && line.contains("failed"), "{line}");

    let logs = lab.run(&["logs", &id, "flaky"]).code(0).all();
    let pos = |s: &str| logs.find(s).unwrap_or_else(|| panic!("no `{s}`:\n{logs}"));
    assert!(pos("attempt 1") < pos("attempt-1"));
    assert!(pos("attempt-1") < pos("attempt 2"));
    assert!(pos("attempt 2") < pos("attempt-2"));
    assert!(pos("attempt-2") < pos("attempt 3"));
    assert!(pos("attempt 3") < pos("attempt-3"));
    let logs = lab.run(&["logs", &id, "hello"]).code(0).all();
    assert!(
        logs.contains("hello out") && logs.contains("hello err"),
        "{logs}"
    );
    let logs = lab.run(&["logs", &id, "nap"]).code(0).all();
    assert!(logs.contains("no output"), "{logs}");

    let out = lab.run(&["logs", &id, "flakey"]);
    out.code(2);
    assert!(out.stderr.contains("flakey"), "{}", out.stderr);
    assert!(
        out.stderr.contains("`flaky`"),
        "the closest id is suggested: {}",
        out.stderr
    );
    lab.run(&["logs", "no-such-run", "flaky"]).code(2);
    lab.run(&["status", "no-such-run"]).code(2);
}

#[test]
fn status_runs_and_logs_as_json() {
    let lab = Lab::with_plan(PLAN);
    lab.run(&["execute", "plan.toml"]).code(1);
    let id = lab.run_id();
    let s = lab.status();
    assert_eq!(s["version"], 1);
    assert_eq!(s["run"]["plan"], "report");
    assert_eq!(s["run"]["plan_path"], "plan.toml");
    assert_eq!(s["run"]["outcome"], "failed");
    assert!(s["run"]["started_at_ms"].as_u64().is_some());
    assert!(s["run"]["ended_at_ms"].as_u64().is_some());
    let steps = s["steps"].as_array().expect("steps");
    assert_eq!(steps.len(), 4);
    for st in steps {
        for key in ["instance", "state", "attempts", "duration_ms", "last_error"] {
            assert!(st.get(key).is_some(), "{key} in {st}");
        }
    }

    let runs = lab.run(&["--output", "json", "runs"]).code(0).json();
    assert_eq!(runs["version"], 1);
    assert_eq!(runs["runs"][0]["id"], id.as_str());
    assert_eq!(runs["runs"][0]["outcome"], "failed");

    let logs = lab
        .run(&["--output", "json", "logs", &id, "flaky"])
        .code(0)
        .json();
    assert_eq!(logs["version"], 1);
    let attempts: Vec<u64> = logs["output"]
        .as_array()
        .expect("output chunks")
        .iter()
        .map(|c| c["attempt"].as_u64().expect("attempt"))
        .collect();
    assert!(attempts.windows(2).all(|w| w[0] <= w[1]), "{attempts:?}");
    assert_eq!(attempts.first(), Some(&1));
    assert_eq!(attempts.last(), Some(&3));

    let out = lab.run(&["--output", "json", "logs", &id, "flakey"]);
    out.code(2);
    let doc = out.json();
    assert_eq!(doc["version"], 1);
    assert!(
        doc.to_string().contains("`flaky`"),
        "the closest id is suggested: {doc}"
    );
}

#[test]
fn the_json_event_stream_is_versioned_and_ordered() {
    let lab = Lab::with_plan(PLAN);
    let out = lab.run(&["--output", "json", "execute", "plan.toml"]);
    out.code(1);
    assert!(!out.stdout.is_empty());
    let events = out.events();
    let id = lab.run_id();
    for e in &events {
        assert_eq!(e["version"], 1, "{e}");
        assert_eq!(e["run_id"], id.as_str(), "{e}");
        assert!(e["event"].is_string(), "{e}");
    }
    assert_eq!(events.first().expect("events")["event"], "run_started");
    let last = events.last().expect("events");
    assert_eq!(last["event"], "run_finished");
    assert_eq!(last["outcome"], "failed");

    let mut started: HashMap<String, usize> = HashMap::new();
    let mut finished: HashMap<String, usize> = HashMap::new();
    for (i, e) in events.iter().enumerate() {
        let inst = e["instance"].as_str().unwrap_or_default().to_string();
        match e["event"].as_str() {
            Some("step_started") => {
                started.entry(inst).or_insert(i);
            }
            Some("step_finished") => {
                assert!(
                    finished.insert(inst.clone(), i).is_none(),
                    "{inst} finished twice"
                );
                let s = started
                    .get(&inst)
                    .unwrap_or_else(|| panic!("{inst} finished before it started"));
                assert!(*s < i);
            }
            Some("step_output") => {
                assert!(
                    started.contains_key(&inst),
                    "output of {inst} before its start"
                );
                assert!(
                    !finished.contains_key(&inst),
                    "output of {inst} after its end"
                );
            }
            _ => {}
        }
    }
    let mut ids: Vec<&String> = finished.keys().collect();
    ids.sort();
    assert_eq!(ids, ["broken", "flaky", "hello", "nap"]);
    let flaky_starts = events
        .iter()
        .filter(|e| e["event"] == "step_started" && e["instance"] == "flaky")
        .count();
    assert_eq!(flaky_starts, 3);
    // Human progress stays off stdout: every line was an event.
    assert!(out.stdout.lines().all(|l| l.starts_with('{')));
}

#[test]
fn logs_of_a_step_with_instances_names_them() {
    let lab = Lab::with_plan(
        r#"
[plan]
name = "instances"

[params.nodes]
type = "list"
default = ["n1", "n2"]

[[group]]
id = "nodes"
for_each = "params.nodes"

[[step]]
id = "upgrade"
group = "nodes"
type = "shell"
run = "echo upgrading {{ item }}"

[[step]]
id = "ping"
type = "shell"
for_each = "params.nodes"
run = "echo ping {{ item }}"
"#,
    );
    lab.run(&["execute", "plan.toml"]).code(0);
    let id = lab.run_id();
    let logs = lab.run(&["logs", &id, "nodes/n2/upgrade"]).code(0).all();
    assert!(logs.contains("upgrading n2"), "{logs}");
    // The operator names the step as the plan does: its instances are listed.
    let out = lab.run(&["logs", &id, "upgrade"]);
    out.code(2);
    assert!(
        out.stderr.contains("nodes/n1/upgrade") && out.stderr.contains("nodes/n2/upgrade"),
        "the step's instances are named:\n{}",
        out.stderr
    );
    let out = lab.run(&["logs", &id, "ping"]);
    out.code(2);
    assert!(
        out.stderr.contains("ping/n1") && out.stderr.contains("ping/n2"),
        "{}",
        out.stderr
    );
}
