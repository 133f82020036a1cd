//! `rok-plan plan`: the dry-run preview, human and JSON.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::support::{Test, repo};

const PLAN: &str = r#"[plan]
name = "preview-test"

[params.master]
default = "rok-1"

[params.target]
description = "A hostile value"
default = "x; rm -rf /"

[params.flag]
type = "boolean"
default = false

[params.nodes]
type = "list"
default = ["node-1", "node-2", "node 3"]

[[step]]
id = "probe"
type = "ssh"
host = "{{ params.master }}"
run = "rok version"
capture = { v = '(\S+)' }

[[step]]
id = "quoted"
type = "shell"
run = "echo {{ params.target }}"
check = "grep -q {{ params.target }} /etc/motd"

[[step]]
id = "raw"
type = "shell"
run = "echo {{ params.target | raw }}"

[[step]]
id = "skipped"
type = "shell"
when = "params.flag"
run = "touch never"

[[step]]
id = "each"
type = "ssh"
for_each = "params.nodes"
host = "{{ item }}"
run = "uptime"

[[group]]
id = "rolling"
for_each = "params.nodes"
max_parallel = 1
needs = ["probe"]

[[step]]
id = "drain"
group = "rolling"
type = "ssh"
host = "{{ item }}"
run = "upgrade --to {{ steps.probe.outputs.v }} --index {{ index }}"

[[step]]
id = "uncordon"
group = "rolling"
type = "kube.uncordon"
needs = ["drain"]
node = "{{ item }}"

[[group]]
id = "wide"
for_each = "params.nodes"

[[step]]
id = "s"
group = "wide"
type = "noop"
"#;

fn preview(args: &[&str]) -> Value {
    let run = Test::new()
        .file("plan.toml", PLAN)
        .args(["plan", "plan.toml", "--output", "json"])
        .args(args)
        .run();
    run.code(0);
    run.json()
}

/// Every instance id and the number of its wave.
fn waves(doc: &Value) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for wave in doc["waves"].as_array().expect("waves") {
        for i in wave["instances"].as_array().expect("instances") {
            out.insert(
                i["id"].as_str().expect("id").to_string(),
                wave["number"].as_u64().expect("wave number"),
            );
        }
    }
    out
}

fn instance<'a>(doc: &'a Value, id: &str) -> &'a Value {
    doc["waves"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|w| w["instances"].as_array().into_iter().flatten())
        .find(|i| i["id"] == id)
        .unwrap_or_else(|| panic!("no instance {id}"))
}

#[test]
fn instance_ids_follow_the_spec() {
    let doc = preview(&[]);
    let ids: Vec<String> = waves(&doc).into_keys().collect();
    let expected = [
        "each/2",
        "each/node-1",
        "each/node-2",
        "probe",
        "quoted",
        "raw",
        "rolling/2/drain",
        "rolling/2/uncordon",
        "rolling/node-1/drain",
        "rolling/node-1/uncordon",
        "rolling/node-2/drain",
        "rolling/node-2/uncordon",
        "skipped",
        "wide/2/s",
        "wide/node-1/s",
        "wide/node-2/s",
    ];
    assert_eq!(ids, expected);
    assert_eq!(doc["instances"], 16);
    // The element that is not a plain word is still the value the step gets.
    assert_eq!(instance(&doc, "each/2")["fields"]["host"], "node 3");
}

#[test]
fn a_rolling_group_runs_one_element_after_the_other() {
    let doc = preview(&[]);
    let w = waves(&doc);
    let order = ["node-1", "node-2", "2"];
    for pair in order.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        assert!(
            w[&format!("rolling/{a}/uncordon")] < w[&format!("rolling/{b}/drain")],
            "element {a} has not finished when {b} starts: {w:?}"
        );
    }
    // Inside an element, needs order the steps; the group as a whole waits for `probe`.
    assert!(w["rolling/node-1/drain"] < w["rolling/node-1/uncordon"]);
    assert!(w["probe"] < w["rolling/node-1/drain"]);
    // Without max_parallel every element of a group starts together.
    assert_eq!(w["wide/node-1/s"], w["wide/node-2/s"]);
    assert_eq!(w["wide/node-1/s"], w["wide/2/s"]);
}

#[test]
fn a_list_set_on_the_command_line_expands_the_groups() {
    let doc = preview(&["--set", "nodes=a,b"]);
    let w = waves(&doc);
    assert_eq!(
        w.keys().filter(|k| k.starts_with("rolling/")).count(),
        4,
        "{w:?}"
    );
    assert!(w["rolling/a/uncordon"] < w["rolling/b/drain"]);
}

#[test]
fn when_false_is_reported_as_skipped() {
    let doc = preview(&[]);
    let skipped = instance(&doc, "skipped");
    assert_eq!(skipped["decision"], "skip");
    assert_eq!(doc["skipped"], 1);
    assert_eq!(instance(&doc, "quoted")["decision"], "run");

    let doc = preview(&["--set", "flag=true"]);
    assert_eq!(instance(&doc, "skipped")["decision"], "run");
    assert_eq!(doc["skipped"], 0);

    let run = Test::new()
        .file("plan.toml", PLAN)
        .args(["plan", "plan.toml"])
        .run();
    run.code(0);
    let line = run
        .stdout
        .lines()
        .find(|l| l.contains("- skipped "))
        .expect("the skipped step is listed");
    assert!(line.contains("skipped"), "{line}");
    assert!(run.stdout.contains("1 skipped"), "{}", run.stdout);
}

#[test]
fn values_only_a_run_knows_are_placeholders() {
    let doc = preview(&[]);
    assert_eq!(
        instance(&doc, "rolling/node-2/drain")["fields"]["run"],
        "upgrade --to <steps.probe.outputs.v> --index 1"
    );
    assert_eq!(
        instance(&doc, "probe")["captures"],
        serde_json::json!(["v"])
    );
}

/// How many arguments `sh` sees in `words`, and the first one (runs `set --`, executes nothing else).
fn shell_words(words: &str, dir: &std::path::Path) -> (usize, String) {
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("set -- {words}; printf '%s\\037%s' \"$#\" \"$1\""))
        .current_dir(dir)
        .output()
        .expect("run sh");
    let text = String::from_utf8(out.stdout).expect("UTF-8");
    let (count, first) = text.split_once('\u{1f}').unwrap_or(("0", ""));
    (count.parse().unwrap_or(0), first.to_string())
}

#[test]
fn interpolated_values_are_shell_quoted_unless_raw() {
    let doc = preview(&[]);
    assert_eq!(
        instance(&doc, "quoted")["fields"]["run"],
        "echo 'x; rm -rf /'"
    );
    assert_eq!(
        instance(&doc, "quoted")["check"],
        "grep -q 'x; rm -rf /' /etc/motd"
    );
    assert_eq!(instance(&doc, "raw")["fields"]["run"], "echo x; rm -rf /");
    let doc = preview(&["--set", "target=plain"]);
    assert_eq!(
        instance(&doc, "quoted")["fields"]["run"],
        "echo plain",
        "plain words need no quotes"
    );

    // Whatever the value, the shell sees it as one argument, unchanged (checked with a
    // harmless payload: nothing may be created).
    let dir = tempfile::tempdir().expect("a temporary directory");
    for hostile in [
        "x; touch pwned",
        "it's $(touch pwned) `touch pwned` \"q\"",
        "a\nb",
        "*",
        "--help",
    ] {
        let doc = preview(&["--set", &format!("target={hostile}")]);
        let rendered = instance(&doc, "quoted")["fields"]["run"]
            .as_str()
            .expect("run")
            .to_string();
        let words = rendered.strip_prefix("echo ").expect("echo ...");
        assert_eq!(
            shell_words(words, dir.path()),
            (1, hostile.to_string()),
            "{rendered}"
        );
    }
    assert!(!dir.path().join("pwned").exists());
}

#[test]
fn plan_runs_nothing() {
    let t = Test::new()
        .file(
            "plan.toml",
            &PLAN
                .replace("touch never", "touch ran")
                .replace("default = false", "default = true"),
        )
        .args(["plan", "plan.toml"]);
    let run = t.run();
    run.code(0);
    assert!(run.stdout.contains("$ touch ran"), "{}", run.stdout);
    assert!(
        run.stdout.contains("Nothing was executed"),
        "{}",
        run.stdout
    );
    let json = t.args(["--output", "json"]);
    json.run().code(0);
    assert!(!json.path().join("ran").exists(), "`plan` ran a step");
    let entries: Vec<_> = std::fs::read_dir(json.path())
        .expect("list")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(
        entries,
        ["plan.toml"],
        "`plan` wrote files (a state store?)"
    );
}

#[test]
fn shipped_plans_preview() {
    insta::glob!("../../plans/params", "*.toml", |params| {
        let name = params.file_name().unwrap().to_string_lossy().into_owned();
        let plan = format!("plans/{name}");
        let params = format!("plans/params/{name}");
        let run = Test::new()
            .cwd(repo())
            .args(["plan", &plan, "--params", &params])
            .run();
        run.code(0);
        assert_eq!(run.stderr, "");
        insta::assert_snapshot!(run.stdout);

        let json = Test::new()
            .cwd(repo())
            .args(["plan", &plan, "--params", &params, "--output", "json"])
            .run();
        json.code(0);
        let doc = json.json();
        let waves = doc["waves"].as_array().expect("waves");
        assert!(!waves.is_empty());
        let total: usize = waves
            .iter()
            .map(|w| w["instances"].as_array().map_or(0, Vec::len))
            .sum();
        assert_eq!(doc["instances"].as_u64(), Some(total as u64));
        for (n, w) in waves.iter().enumerate() {
            assert_eq!(w["number"].as_u64(), Some(n as u64 + 1));
        }
    });
}

const MORE: &str = r#"[plan]
name = "more"

[params.token]
secret = true
default = "hunter2"

[params.nodes]
type = "list"
default = ["a", "b"]

[params.on]
type = "boolean"
default = false

[[step]]
id = "x"
type = "shell"
run = "echo {{ params.token | upper }} {{ params.token ~ 'z' }} {{ params.token[1:] }} {{ run.id }}"

[[step]]
id = "each"
type = "noop"
for_each = "params.nodes"

[[step]]
id = "after"
type = "noop"
needs = ["each"]

[[group]]
id = "g"
for_each = "params.nodes"
when = "params.on"

[[step]]
id = "in"
group = "g"
type = "noop"

[[step]]
id = "fin"
type = "shell"
finally = true
when = "run.failed"
run = "echo cleanup"
"#;

fn more() -> Value {
    let run = Test::new()
        .file("plan.toml", MORE)
        .args(["plan", "plan.toml", "--output", "json"])
        .run();
    run.code(0);
    run.json()
}

#[test]
fn a_secret_stays_hidden_through_template_filters() {
    for output in ["json", "human"] {
        let run = Test::new()
            .file("plan.toml", MORE)
            .args(["plan", "plan.toml", "--output", output])
            .run();
        run.code(0);
        for shown in ["hunter2", "HUNTER2", "unter2"] {
            assert!(
                !run.stdout.contains(shown),
                "`{shown}` is shown:\n{}",
                run.stdout
            );
        }
    }
}

#[test]
fn needing_a_for_each_step_or_a_group_waits_for_every_instance() {
    let doc = more();
    let w = waves(&doc);
    assert!(
        w["each/a"] < w["after"] && w["each/b"] < w["after"],
        "{w:?}"
    );
    assert_eq!(
        instance(&doc, "after")["needs"],
        serde_json::json!(["each/a", "each/b"])
    );
}

#[test]
fn a_group_skipped_by_when_skips_every_instance() {
    let doc = more();
    assert_eq!(instance(&doc, "g/a/in")["decision"], "skip");
    assert_eq!(instance(&doc, "g/b/in")["decision"], "skip");
    assert_eq!(doc["skipped"], 2);
}

#[test]
fn finally_steps_come_last_and_their_when_waits_for_the_run() {
    let doc = more();
    let w = waves(&doc);
    let last = *w.values().max().expect("waves");
    assert_eq!(w["fin"], last);
    assert!(
        w.iter()
            .filter(|(id, _)| id.as_str() != "fin")
            .all(|(_, n)| *n < last),
        "{w:?}"
    );
    assert_eq!(instance(&doc, "fin")["finally"], true);
    assert_ne!(
        instance(&doc, "fin")["decision"],
        "skip",
        "run.failed is only known at run time"
    );
}

#[test]
fn a_missing_file_is_an_error() {
    let run = Test::new()
        .args(["validate", "--output", "json", "nonexistent.toml"])
        .run();
    run.code(2);
    let doc = run.json();
    assert_eq!(doc["valid"], false);
    assert!(
        doc["files"][0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("nonexistent.toml")),
        "{doc}"
    );
    let run = Test::new()
        .file("plan.toml", MORE)
        .args(["plan", "plan.toml", "--params", "nope.toml"])
        .run();
    run.code(2);
    assert!(run.stderr.contains("nope.toml"), "{}", run.stderr);
}
