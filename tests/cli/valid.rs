//! Valid plans: `tests/corpus/valid/*.toml` use every feature correctly, and nothing may be
//! reported about them (no false positives), by `validate`, `plan`, `graph` or the schema.

use std::path::PathBuf;

use crate::support::{Test, repo};

fn valid_files() -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(repo().join("tests/corpus/valid"))
        .expect("read tests/corpus/valid")
        .map(|e| {
            e.expect("an entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|n| n.ends_with(".toml"))
        .collect();
    files.sort();
    files
}

fn valid_dir() -> PathBuf {
    repo().join("tests/corpus/valid")
}

#[test]
fn valid_plans_have_no_diagnostics() {
    let files = valid_files();
    assert!(!files.is_empty());
    let run = Test::new()
        .cwd(valid_dir())
        .args(["validate", "--output", "json"])
        .args(&files)
        .run();
    run.code(0);
    let doc = run.json();
    assert_eq!(doc["valid"], true, "{doc}");
    for file in &files {
        for command in [
            &["plan", file.as_str()][..],
            &["graph", file.as_str()][..],
            &["graph", file.as_str(), "--format", "mermaid"][..],
        ] {
            let run = Test::new().cwd(valid_dir()).args(command).run();
            run.code(0);
            assert_eq!(run.stderr, "", "{command:?}");
        }
    }
}

#[test]
fn valid_plans_conform_to_the_schema() {
    let run = Test::new().args(["schema"]).run();
    run.code(0);
    let validator = jsonschema::validator_for(&run.json()).expect("a valid JSON Schema");
    for file in valid_files() {
        let text = std::fs::read_to_string(valid_dir().join(&file)).expect("read a plan");
        let value: toml::Value = toml::from_str(&text).expect("TOML");
        let instance = serde_json::to_value(value).expect("JSON");
        let errors: Vec<String> = validator
            .iter_errors(&instance)
            .map(|e| format!("{e} at {}", e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{file}:\n{}", errors.join("\n"));
    }
}

#[test]
fn steps_of_a_group_need_each_other_by_local_id_even_when_one_is_named_like_the_group() {
    // plan-format.md: "Steps of a group `need` each other by their local ids": here
    // `needs = ["upgrade"]` is the sibling step, not the group itself (no "cannot need its own
    // group").
    let plan = r#"[plan]
name = "local-ids"

[params.nodes]
type = "list"
default = ["a"]

[[group]]
id = "upgrade"
for_each = "params.nodes"

[[step]]
id = "upgrade"
group = "upgrade"
type = "shell"
run = "upgrade {{ item }}"

[[step]]
id = "verify"
group = "upgrade"
type = "noop"
needs = ["upgrade"]
"#;
    let run = Test::new()
        .file("plan.toml", plan)
        .args(["validate", "--output", "json", "plan.toml"])
        .run();
    let doc = run.json();
    assert_eq!(run.code, Some(0), "{}", doc["files"][0]["diagnostics"]);
}
