//! The invalid corpus: `tests/corpus/invalid/*.toml`, one problem kind per file (and a few
//! files with many). Each file states what `rok-plan validate` must report in its leading
//! comments, one `# expect: CODE LINE:COLUMN` line per diagnostic.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::support::{Test, repo};

fn corpus_dir() -> PathBuf {
    repo().join("tests/corpus/invalid")
}

fn corpus_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus_dir())
        .expect("read tests/corpus/invalid")
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .expect("a file name")
        .to_string_lossy()
        .into_owned()
}

/// The `# expect:` lines at the top of a corpus file.
fn expectations(text: &str) -> Vec<(String, u64, u64)> {
    let mut out = Vec::new();
    for line in text.lines().take_while(|l| l.starts_with('#')) {
        let Some(rest) = line.strip_prefix("# expect:") else {
            continue;
        };
        let mut words = rest.split_whitespace();
        let (Some(code), Some(at), None) = (words.next(), words.next(), words.next()) else {
            panic!("malformed expectation `{line}`: want `# expect: CODE LINE:COLUMN`");
        };
        let (l, c) = at
            .split_once(':')
            .unwrap_or_else(|| panic!("malformed position in `{line}`"));
        out.push((
            code.to_string(),
            l.parse().expect("a line number"),
            c.parse().expect("a column number"),
        ));
    }
    out.sort();
    out
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
fn line_column(text: &str, offset: usize) -> (u64, u64) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    (line as u64, column as u64)
}

/// Problems with one diagnostic of the JSON report (empty when it is well formed).
fn malformed(d: &Value, name: &str, text: &str) -> Vec<String> {
    let mut problems = Vec::new();
    if d["message"].as_str().is_none_or(|m| m.trim().is_empty()) {
        problems.push("empty message".to_string());
    }
    if d["file"].as_str() != Some(name) {
        problems.push(format!("file is {}, not {name}", d["file"]));
    }
    match (d["span"]["offset"].as_u64(), d["span"]["length"].as_u64()) {
        (Some(offset), Some(length)) => {
            if offset + length > text.len() as u64 {
                problems.push(format!(
                    "span {offset}+{length} is past the end of the file"
                ));
            }
            let at = line_column(text, offset as usize);
            let said = (
                d["line"].as_u64().unwrap_or(0),
                d["column"].as_u64().unwrap_or(0),
            );
            if at != said {
                problems.push(format!(
                    "line:column {}:{} does not match the span's start {}:{}",
                    said.0, said.1, at.0, at.1
                ));
            }
        }
        _ => problems.push("no span".to_string()),
    }
    problems
}

#[test]
fn every_corpus_file_reports_exactly_its_expected_diagnostics() {
    let files = corpus_files();
    assert!(
        files.len() >= 45,
        "the corpus has only {} files",
        files.len()
    );
    let mut failures = Vec::new();
    for path in &files {
        let name = file_name(path);
        let text = std::fs::read_to_string(path).expect("read a corpus file");
        let expected = expectations(&text);
        if expected.is_empty() {
            failures.push(format!("{name}: no `# expect:` line"));
            continue;
        }
        let run = Test::new()
            .cwd(corpus_dir())
            .args(["validate", "--output", "json", &name])
            .run();
        if run.code != Some(2) {
            failures.push(format!("{name}: exit status {:?}, not 2", run.code));
        }
        let doc = run.json();
        if doc["version"] != 1 || doc["valid"] != false || doc["files"][0]["valid"] != false {
            failures.push(format!("{name}: the report does not say invalid: {doc}"));
        }
        let diagnostics = &doc["files"][0]["diagnostics"];
        let mut actual = crate::support::codes_at(diagnostics);
        actual.sort();
        if actual != expected {
            let show = |v: &[(String, u64, u64)]| {
                v.iter()
                    .map(|(c, l, col)| format!("{c} {l}:{col}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            failures.push(format!(
                "{name}:\n    expected {}\n    actual   {}",
                show(&expected),
                show(&actual)
            ));
        }
        for d in diagnostics.as_array().into_iter().flatten() {
            for problem in malformed(d, &name, &text) {
                failures.push(format!(
                    "{name}: {} at {}:{}: {problem}",
                    d["code"], d["line"], d["column"]
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} corpus problems:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn the_corpus_covers_every_code_a_plan_file_can_trigger() {
    // Only `--set`, `--params` and missing values trigger these; tests/cli/params.rs covers them.
    let cli_only = [
        "rok_plan::unknown_set",
        "rok_plan::invalid_set",
        "rok_plan::missing_param",
    ];
    let all = [
        "toml_syntax",
        "unknown_key",
        "wrong_type",
        "missing_key",
        "conflicting_keys",
        "invalid_value",
        "invalid_id",
        "duplicate_id",
        "unknown_step_type",
        "unknown_need",
        "unknown_group",
        "nested_group",
        "cycle",
        "needs_finally",
        "invalid_duration",
        "invalid_capture",
        "template_syntax",
        "unknown_param",
        "unknown_step",
        "unknown_output",
        "not_a_need",
        "unknown_name",
        "for_each_not_list",
        "not_in_choices",
        "missing_param",
        "invalid_param_value",
        "unknown_set",
        "invalid_set",
    ];
    let mut seen = BTreeSet::new();
    let mut many = 0;
    for path in corpus_files() {
        let expected = expectations(&std::fs::read_to_string(&path).expect("read a corpus file"));
        if expected.len() >= 4 {
            many += 1;
        }
        seen.extend(expected.iter().map(|(c, _, _)| c.clone()));
    }
    let missing: Vec<String> = all
        .iter()
        .map(|c| format!("rok_plan::{c}"))
        .filter(|c| !cli_only.contains(&c.as_str()) && !seen.contains(c))
        .collect();
    assert!(missing.is_empty(), "no corpus file expects {missing:?}");
    assert!(
        many >= 4,
        "only {many} corpus files have many problems at once"
    );
}

#[test]
fn validate_reports_every_file_of_a_batch() {
    let files = corpus_files();
    let names: Vec<String> = files.iter().map(|p| file_name(p)).collect();
    let run = Test::new()
        .cwd(corpus_dir())
        .args(["validate", "--output", "json"])
        .args(&names)
        .run();
    run.code(2);
    let doc = run.json();
    let reported: Vec<&str> = doc["files"]
        .as_array()
        .expect("files")
        .iter()
        .filter_map(|f| f["file"].as_str())
        .collect();
    assert_eq!(
        reported,
        names.iter().map(String::as_str).collect::<Vec<_>>()
    );
    assert!(
        doc["files"]
            .as_array()
            .into_iter()
            .flatten()
            .all(|f| f["valid"] == false)
    );
}

#[test]
fn one_invalid_file_among_valid_ones_fails_the_batch() {
    let run = Test::new()
        .file(
            "ok.toml",
            "[plan]\nname = \"ok\"\n\n[[step]]\nid = \"a\"\ntype = \"noop\"\n",
        )
        .file(
            "bad.toml",
            "[plan]\nname = \"bad\"\n\n[[step]]\nid = \"a\"\ntype = \"nop\"\n",
        )
        .args(["validate", "--output", "json", "ok.toml", "bad.toml"])
        .run();
    run.code(2);
    let doc = run.json();
    assert_eq!(doc["valid"], false);
    assert_eq!(doc["files"][0]["file"], "ok.toml");
    assert_eq!(doc["files"][0]["valid"], true);
    assert_eq!(doc["files"][0]["diagnostics"], serde_json::json!([]));
    assert_eq!(doc["files"][1]["valid"], false);
    assert_eq!(
        crate::support::codes(&doc["files"][1]["diagnostics"]),
        ["rok_plan::unknown_step_type"]
    );
    assert_eq!(
        doc["files"][1]["diagnostics"][0]["help"],
        "did you mean `noop`?"
    );
}

#[test]
fn rendered_diagnostics_of_the_corpus() {
    insta::glob!("../corpus/invalid", "*.toml", |path| {
        let name = file_name(path);
        let run = Test::new()
            .cwd(corpus_dir())
            .args(["validate", &name])
            .run();
        // No assertion before the snapshot: one file must not stop the review of the others.
        // The exit status and stdout are part of what is reviewed (human diagnostics go to stderr).
        let rendered = format!(
            "exit: {:?}\nstdout: {:?}\n{}",
            run.code, run.stdout, run.stderr
        );
        insta::assert_snapshot!(rendered);
    });
}

/// The one diagnostic of the corpus file whose name ends with `suffix`.
fn only_diagnostic(suffix: &str) -> Value {
    let path = corpus_files()
        .into_iter()
        .find(|p| file_name(p).ends_with(suffix))
        .unwrap_or_else(|| panic!("no corpus file *{suffix}"));
    let name = file_name(&path);
    let run = Test::new()
        .cwd(corpus_dir())
        .args(["validate", "--output", "json", &name])
        .run();
    run.code(2);
    let doc = run.json();
    let diagnostics = doc["files"][0]["diagnostics"]
        .as_array()
        .expect("diagnostics")
        .clone();
    assert_eq!(diagnostics.len(), 1, "{name}: {diagnostics:?}");
    diagnostics[0].clone()
}

#[test]
fn hints_name_the_closest_known_name() {
    let cases = [
        ("-unknown-key-top-level.toml", "`step`"),
        ("-unknown-key-plan.toml", "`description`"),
        ("-unknown-key-param.toml", "`secret`"),
        ("-unknown-key-defaults.toml", "`timeout`"),
        ("-unknown-key-retry.toml", "`delay`"),
        ("-unknown-key-group.toml", "`max_parallel`"),
        ("-unknown-key-step-common.toml", "`needs`"),
        ("-unknown-key-step-field.toml", "`host`"),
        ("-unknown-key-replace-entry.toml", "`with`"),
        ("-unknown-step-type.toml", "`kube.drain`"),
        ("-unknown-need.toml", "`cordon-node`"),
        ("-unknown-param.toml", "`master`"),
        ("-unknown-step-in-template.toml", "`probe`"),
        ("-unknown-output.toml", "outputs: v"),
        ("-not-in-choices.toml", "stable"),
    ];
    for (suffix, hint) in cases {
        let d = only_diagnostic(suffix);
        assert!(
            d["help"].as_str().is_some_and(|h| h.contains(hint)),
            "*{suffix}: the help does not name {hint}: {d}"
        );
    }
}

#[test]
fn messages_name_the_type_in_plain_english() {
    let d = only_diagnostic("-for-each-not-list-integer.toml");
    assert!(
        d["message"]
            .as_str()
            .is_some_and(|m| m.ends_with("is an integer")),
        "{d}"
    );
    let d = only_diagnostic("-for-each-not-list-step.toml");
    assert!(
        d["message"]
            .as_str()
            .is_some_and(|m| m.ends_with("is a boolean")),
        "{d}"
    );
}

#[test]
fn cycles_are_printed_as_their_path() {
    for (suffix, path) in [
        ("-cycle-self.toml", "a -> a"),
        ("-cycle-two.toml", "a -> b -> a"),
        ("-cycle-three.toml", "a -> b -> c -> a"),
    ] {
        let d = only_diagnostic(suffix);
        assert!(
            d["message"].as_str().is_some_and(|m| m.contains(path)),
            "*{suffix}: {d}"
        );
    }
}

#[test]
fn a_need_is_never_suggested_as_the_step_itself() {
    // `a` needs `b`, which does not exist: `a` is the closest id, but needing itself is a cycle.
    let run = Test::new()
        .file(
            "plan.toml",
            "[plan]\nname = \"x\"\n\n[[step]]\nid = \"a\"\ntype = \"noop\"\nneeds = [\"b\"]\n",
        )
        .args(["validate", "--output", "json", "plan.toml"])
        .run();
    run.code(2);
    let d = run.json()["files"][0]["diagnostics"][0].clone();
    assert_eq!(d["code"], "rok_plan::unknown_need");
    assert!(!d["help"].as_str().unwrap_or("").contains("`a`"), "{d}");
}

#[test]
fn human_and_json_diagnostics_give_the_same_positions() {
    let header = regex::Regex::new(r"╭─\[([^\]]+):(\d+):(\d+)\]").unwrap();
    let mut failures = Vec::new();
    for path in corpus_files() {
        let name = file_name(&path);
        let json = Test::new()
            .cwd(corpus_dir())
            .args(["validate", "--output", "json", &name])
            .run();
        let human = Test::new()
            .cwd(corpus_dir())
            .args(["validate", &name])
            .run();
        let from_json: Vec<(String, u64, u64)> = json.json()["files"][0]["diagnostics"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|d| {
                (
                    d["file"].as_str().unwrap_or("").to_string(),
                    d["line"].as_u64().unwrap_or(0),
                    d["column"].as_u64().unwrap_or(0),
                )
            })
            .collect();
        let from_human: Vec<(String, u64, u64)> = header
            .captures_iter(&human.stderr)
            .map(|c| {
                (
                    c[1].to_string(),
                    c[2].parse().unwrap(),
                    c[3].parse().unwrap(),
                )
            })
            .collect();
        if from_json != from_human {
            failures.push(format!(
                "{name}:\n    json  {from_json:?}\n    human {from_human:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn plan_and_graph_refuse_every_corpus_file_with_the_same_diagnostics() {
    let mut failures = Vec::new();
    for path in corpus_files() {
        let name = file_name(&path);
        let validate = Test::new()
            .cwd(corpus_dir())
            .args(["validate", "--output", "json", &name])
            .run();
        let mut expected = crate::support::codes_at(&validate.json()["files"][0]["diagnostics"]);
        expected.sort();
        let plan = Test::new()
            .cwd(corpus_dir())
            .args(["plan", &name, "--output", "json"])
            .run();
        let doc = plan.json();
        let mut actual = crate::support::codes_at(&doc["diagnostics"]);
        actual.sort();
        if plan.code != Some(2) || doc["error"] != "invalid" || actual != expected {
            failures.push(format!(
                "plan {name}: exit {:?}, {actual:?} instead of {expected:?}",
                plan.code
            ));
        }
        let graph = Test::new().cwd(corpus_dir()).args(["graph", &name]).run();
        if graph.code != Some(2) || !graph.stdout.is_empty() {
            failures.push(format!(
                "graph {name}: exit {:?}, stdout {:?}",
                graph.code, graph.stdout
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
