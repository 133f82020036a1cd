//! `rok-plan schema`: the JSON Schema editors use, checked with a JSON Schema validator
//! against the shipped plans and against plans with mistakes.

use serde_json::Value;

use crate::support::{Test, repo};

fn schema() -> jsonschema::Validator {
    let run = Test::new().args(["schema"]).run();
    run.code(0);
    let schema = run.json();
    assert!(
        schema["$schema"]
            .as_str()
            .is_some_and(|s| s.contains("json-schema.org")),
        "{}",
        schema["$schema"]
    );
    jsonschema::validator_for(&schema).expect("`rok-plan schema` prints a valid JSON Schema")
}

/// A TOML plan as the JSON value editors validate.
fn as_json(toml_text: &str) -> Value {
    let value: toml::Value = toml::from_str(toml_text).expect("valid TOML");
    serde_json::to_value(value).expect("TOML converts to JSON")
}

fn errors(validator: &jsonschema::Validator, text: &str) -> Vec<String> {
    let instance = as_json(text);
    validator
        .iter_errors(&instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

const VALID: &str = r#"[plan]
name = "schema-test"

[params.nodes]
type = "list"
default = ["a"]

[[group]]
id = "g"
for_each = "params.nodes"

[[step]]
id = "a"
type = "shell"
group = "g"
run = "echo {{ item }}"
retry = { attempts = 3, delay = "5s" }

[[step]]
id = "b"
type = "file.edit"
needs = ["g"]
path = "/etc/x.conf"
replace = [{ pattern = "a", with = "b" }]
"#;

fn shipped_plans() -> Vec<std::path::PathBuf> {
    let mut plans: Vec<_> = std::fs::read_dir(repo().join("plans"))
        .expect("read plans/")
        .map(|e| e.expect("an entry").path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.ends_with(".toml") && !name.ends_with(".params.toml")
        })
        .collect();
    plans.sort();
    plans
}

#[test]
fn every_shipped_plan_conforms_to_the_schema() {
    let validator = schema();
    let plans = shipped_plans();
    assert_eq!(plans.len(), 4, "{plans:?}");
    for plan in plans {
        let problems = errors(
            &validator,
            &std::fs::read_to_string(&plan).expect("read a plan"),
        );
        assert!(
            problems.is_empty(),
            "{} does not conform:\n{}",
            plan.display(),
            problems.join("\n")
        );
    }
}

#[test]
fn a_small_valid_plan_conforms() {
    let problems = errors(&schema(), VALID);
    assert!(problems.is_empty(), "{problems:?}");
}

#[test]
fn unknown_keys_fail_the_schema() {
    let validator = schema();
    let cases = [
        (
            "at top level",
            VALID.replace("[plan]\n", "stepz = 1\n\n[plan]\n"),
        ),
        (
            "in [plan]",
            VALID.replace(
                "name = \"schema-test\"\n",
                "name = \"schema-test\"\ndescripton = \"x\"\n",
            ),
        ),
        (
            "in a step",
            VALID.replace(
                "run = \"echo {{ item }}\"\n",
                "run = \"echo {{ item }}\"\nneed = [\"b\"]\n",
            ),
        ),
        (
            "in a step's type fields",
            VALID.replace(
                "path = \"/etc/x.conf\"\n",
                "path = \"/etc/x.conf\"\nhots = \"n\"\n",
            ),
        ),
        (
            "in a group",
            VALID.replace(
                "for_each = \"params.nodes\"\n",
                "for_each = \"params.nodes\"\nmax_paralel = 1\n",
            ),
        ),
        (
            "in a parameter",
            VALID.replace("default = [\"a\"]\n", "default = [\"a\"]\nsecrt = true\n"),
        ),
        (
            "in retry",
            VALID.replace("delay = \"5s\"", "delai = \"5s\""),
        ),
        (
            "in a replace entry",
            VALID.replace("with = \"b\"", "with = \"b\", wiht = \"c\""),
        ),
    ];
    for (what, text) in cases {
        assert_ne!(text, VALID, "the case {what} changed nothing");
        assert!(
            !errors(&validator, &text).is_empty(),
            "an unknown key {what} passes the schema"
        );
    }
}

#[test]
fn other_mistakes_fail_the_schema() {
    let validator = schema();
    let cases = [
        (
            "an unknown step type",
            VALID.replace("type = \"file.edit\"", "type = \"file.edti\""),
        ),
        (
            "a step without type",
            VALID.replace("type = \"file.edit\"\n", ""),
        ),
        (
            "a plan without name",
            VALID.replace("name = \"schema-test\"\n", ""),
        ),
        (
            "a wrong type",
            VALID.replace("attempts = 3", "attempts = \"3\""),
        ),
        (
            "a missing type field",
            VALID.replace("path = \"/etc/x.conf\"\n", ""),
        ),
        (
            "a bad on_failure",
            VALID.replace("run = \"echo", "on_failure = \"explode\"\nrun = \"echo"),
        ),
    ];
    for (what, text) in cases {
        assert_ne!(text, VALID, "the case {what} changed nothing");
        assert!(
            !errors(&validator, &text).is_empty(),
            "{what} passes the schema"
        );
    }
}

#[test]
fn structural_mistakes_of_the_invalid_corpus_fail_the_schema() {
    // What a JSON Schema can see: unknown keys and types, missing keys, one-of conflicts,
    // ids and groups (not cross-references, templates or durations).
    let structural = [
        "rok_plan::unknown_key",
        "rok_plan::unknown_step_type",
        "rok_plan::missing_key",
        "rok_plan::conflicting_keys",
        "rok_plan::invalid_id",
        "rok_plan::nested_group",
    ];
    let validator = schema();
    let dir = repo().join("tests/corpus/invalid");
    let mut checked = 0;
    let mut passing = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("read the corpus") {
        let path = entry.expect("an entry").path();
        let text = std::fs::read_to_string(&path).expect("read a corpus file");
        let expects_structural = text
            .lines()
            .filter_map(|l| l.strip_prefix("# expect: "))
            .any(|l| structural.iter().any(|c| l.starts_with(&format!("{c} "))));
        let Ok(value) = toml::from_str::<toml::Value>(&text) else {
            continue;
        };
        if !expects_structural {
            continue;
        }
        checked += 1;
        let instance = serde_json::to_value(value).expect("JSON");
        if validator.is_valid(&instance) {
            passing.push(path.file_name().unwrap().to_string_lossy().into_owned());
        }
    }
    assert!(checked >= 25, "only {checked} corpus files checked");
    assert!(passing.is_empty(), "the schema accepts {passing:?}");
}

#[test]
fn boolean_and_integer_fields_take_a_string_only_as_a_template() {
    let v = schema();
    let plan = |field: &str| {
        format!(
            "[plan]\nname = \"p\"\n[params.allow]\ntype = \"boolean\"\ndefault = false\n\
             [[step]]\nid = \"d\"\ntype = \"kube.drain\"\nnode = \"n1\"\n{field}\n"
        )
    };
    assert!(errors(&v, &plan("allow_unmanaged = true")).is_empty());
    assert!(errors(&v, &plan("allow_unmanaged = \"{{ params.allow }}\"")).is_empty());
    assert!(
        !errors(&v, &plan("allow_unmanaged = \"yes\"")).is_empty(),
        "a plain string is not a boolean"
    );
    // The CLI agrees on both sides.
    let dir = tempfile::tempdir().unwrap();
    for (field, code) in [
        ("allow_unmanaged = \"{{ params.allow }}\"", 0),
        ("allow_unmanaged = \"yes\"", 2),
    ] {
        std::fs::write(dir.path().join("p.toml"), plan(field)).unwrap();
        let status = std::process::Command::new(env!("CARGO_BIN_EXE_rok-plan"))
            .current_dir(dir.path())
            .args(["validate", "p.toml"])
            .output()
            .unwrap()
            .status;
        assert_eq!(status.code(), Some(code), "{field}");
    }
}
