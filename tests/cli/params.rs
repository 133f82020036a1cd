//! Parameter values through the command line: `--set`, `--params FILE`, environment
//! variables and defaults, their errors, and secrets that never show.

use serde_json::Value;

use crate::support::{Test, codes};

const PLAN: &str = r#"[plan]
name = "params-test"

[params.master]
description = "Host of the current master node"

[params.count]
type = "integer"
default = 1

[params.channel]
choices = ["stable", "beta"]
default = "stable"

[params.region]
env = "ROKTEST_REGION"
default = "from-default"

[params.token]
secret = true
env = "ROKTEST_TOKEN"
choices = ["alpha-token-6f1c", "beta-token-93ab"]
default = "alpha-token-6f1c"

[params.pin]
secret = true
type = "integer"
default = 4711

[[step]]
id = "show"
type = "shell"
run = "echo {{ params.master }} {{ params.count }} {{ params.channel }} {{ params.region }}"

[[step]]
id = "login"
type = "shell"
needs = ["show"]
run = "login --token {{ params.token }} --pin {{ params.pin }}"
"#;

fn test() -> Test {
    Test::new().file("plan.toml", PLAN)
}

/// `rok-plan plan plan.toml --output json ARGS...`
fn plan_json(args: &[&str]) -> Test {
    test()
        .args(["plan", "plan.toml", "--output", "json"])
        .args(args)
}

fn param<'a>(doc: &'a Value, name: &str) -> &'a Value {
    doc["params"]
        .as_array()
        .expect("params")
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no parameter {name} in {doc}"))
}

fn diagnostic<'a>(doc: &'a Value, code: &str) -> &'a Value {
    doc["diagnostics"]
        .as_array()
        .expect("diagnostics")
        .iter()
        .find(|d| d["code"] == code)
        .unwrap_or_else(|| panic!("no {code} in {doc}"))
}

#[test]
fn set_of_an_unknown_parameter_suggests_the_closest_one() {
    let run = plan_json(&["--set", "mastr=rok-1"]).run();
    run.code(2);
    let doc = run.json();
    assert_eq!(doc["error"], "invalid");
    let mut found = codes(&doc["diagnostics"]);
    found.sort();
    // `master` got no value: the misspelt --set does not count for it.
    assert_eq!(found, ["rok_plan::missing_param", "rok_plan::unknown_set"]);
    let d = diagnostic(&doc, "rok_plan::unknown_set");
    assert!(d["message"].as_str().unwrap().contains("`mastr`"), "{d}");
    assert_eq!(d["help"], "did you mean `master`?");
    assert_eq!(
        (d["span"]["offset"].as_u64(), d["span"]["length"].as_u64()),
        (Some(0), Some(5))
    );
}

#[test]
fn validate_checks_set_values_too() {
    let run = test()
        .args([
            "validate",
            "plan.toml",
            "--output",
            "json",
            "--set",
            "mastr=rok-1",
        ])
        .run();
    run.code(2);
    let doc = run.json();
    assert!(
        codes(&doc["files"][0]["diagnostics"]).contains(&"rok_plan::unknown_set".to_string()),
        "{doc}"
    );

    test()
        .args([
            "validate",
            "plan.toml",
            "--set",
            "master=rok-1",
            "--set",
            "count=3",
        ])
        .run()
        .code(0);
}

#[test]
fn set_without_equals_sign_is_invalid() {
    let run = plan_json(&["--set", "master=rok-1", "--set", "count"]).run();
    run.code(2);
    let doc = run.json();
    assert_eq!(codes(&doc["diagnostics"]), ["rok_plan::invalid_set"]);
    assert!(
        diagnostic(&doc, "rok_plan::invalid_set")["message"]
            .as_str()
            .unwrap()
            .contains("count")
    );
}

#[test]
fn set_of_a_wrong_type_names_the_value_and_the_type() {
    let run = plan_json(&["--set", "master=rok-1", "--set", "count=abc"]).run();
    run.code(2);
    let doc = run.json();
    assert_eq!(
        codes(&doc["diagnostics"]),
        ["rok_plan::invalid_param_value"]
    );
    let d = diagnostic(&doc, "rok_plan::invalid_param_value");
    assert!(d["message"].as_str().unwrap().contains("`abc`"), "{d}");
    assert!(d["message"].as_str().unwrap().contains("`count`"), "{d}");
    assert_eq!(d["label"], "expected an integer");
    // The span underlines the value, not the name.
    assert_eq!(
        (d["span"]["offset"].as_u64(), d["span"]["length"].as_u64()),
        (Some(6), Some(3))
    );
}

#[test]
fn set_outside_choices_lists_the_choices() {
    let run = plan_json(&["--set", "master=rok-1", "--set", "channel=nightly"]).run();
    run.code(2);
    let doc = run.json();
    assert_eq!(codes(&doc["diagnostics"]), ["rok_plan::not_in_choices"]);
    let d = diagnostic(&doc, "rok_plan::not_in_choices");
    let text = format!("{} {} {}", d["message"], d["label"], d["help"]);
    assert!(
        text.contains("nightly") && text.contains("stable") && text.contains("beta"),
        "{d}"
    );
}

#[test]
fn a_missing_required_parameter_is_named_with_its_description() {
    let run = plan_json(&[]).run();
    run.code(2);
    let doc = run.json();
    assert_eq!(codes(&doc["diagnostics"]), ["rok_plan::missing_param"]);
    let d = diagnostic(&doc, "rok_plan::missing_param");
    let message = d["message"].as_str().unwrap();
    assert!(
        message.contains("`master`") && message.contains("Host of the current master node"),
        "{d}"
    );
    // Located at the parameter's declaration in the plan.
    assert_eq!(
        (d["file"].as_str(), d["line"].as_u64(), d["column"].as_u64()),
        (Some("plan.toml"), Some(4), Some(9))
    );
}

#[test]
fn human_rendering_of_command_line_parameter_problems() {
    let run = test()
        .args([
            "plan",
            "plan.toml",
            "--set",
            "mastr=rok-1",
            "--set",
            "count=abc",
        ])
        .run();
    run.code(2);
    insta::assert_snapshot!(run.stderr);
}

#[test]
fn a_params_file_with_an_unknown_key_and_a_wrong_type() {
    let run = test()
        .file(
            "params.toml",
            "master = \"rok-1\"\ncuont = 3\ncount = \"three\"\n",
        )
        .args([
            "plan",
            "plan.toml",
            "--params",
            "params.toml",
            "--output",
            "json",
        ])
        .run();
    run.code(2);
    let doc = run.json();
    let mut found = crate::support::codes_at(&doc["diagnostics"]);
    found.sort();
    assert_eq!(
        found,
        [
            ("rok_plan::invalid_param_value".to_string(), 3, 9),
            ("rok_plan::unknown_set".to_string(), 2, 1)
        ]
    );
    assert!(
        doc["diagnostics"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["file"] == "params.toml"),
        "{doc}"
    );
    assert_eq!(
        diagnostic(&doc, "rok_plan::unknown_set")["help"],
        "did you mean `count`?"
    );

    let human = test()
        .file(
            "params.toml",
            "master = \"rok-1\"\ncuont = 3\ncount = \"three\"\n",
        )
        .args(["plan", "plan.toml", "--params", "params.toml"])
        .run();
    human.code(2);
    insta::assert_snapshot!(human.stderr);
}

#[test]
fn a_params_file_that_is_not_toml() {
    let run = test()
        .file("params.toml", "master = \"rok-1\ncount = 3\n")
        .args([
            "plan",
            "plan.toml",
            "--params",
            "params.toml",
            "--output",
            "json",
        ])
        .run();
    run.code(2);
    let doc = run.json();
    assert_eq!(codes(&doc["diagnostics"]), ["rok_plan::toml_syntax"]);
    assert_eq!(doc["diagnostics"][0]["file"], "params.toml");
}

#[test]
fn values_come_from_set_then_params_file_then_env_then_default() {
    let region = |t: Test| {
        let run = t.run();
        run.code(0);
        let doc = run.json();
        let p = param(&doc, "region");
        (
            p["value"].as_str().unwrap_or_default().to_string(),
            p["origin"].as_str().unwrap_or_default().to_string(),
        )
    };
    let with_file =
        || plan_json(&["--set", "master=rok-1"]).file("params.toml", "region = \"from-file\"\n");

    assert_eq!(
        region(plan_json(&["--set", "master=rok-1"])),
        ("from-default".into(), "default".into())
    );
    assert_eq!(
        region(plan_json(&["--set", "master=rok-1"]).env("ROKTEST_REGION", "from-env")),
        ("from-env".into(), "env".into())
    );
    assert_eq!(
        region(
            with_file()
                .args(["--params", "params.toml"])
                .env("ROKTEST_REGION", "from-env")
        ),
        ("from-file".into(), "file".into())
    );
    assert_eq!(
        region(
            with_file()
                .args(["--params", "params.toml", "--set", "region=from-set"])
                .env("ROKTEST_REGION", "from-env")
        ),
        ("from-set".into(), "set".into())
    );
    // The resolved value is what the steps get.
    let run = plan_json(&["--set", "master=rok-1"])
        .env("ROKTEST_REGION", "from-env")
        .run();
    run.code(0);
    assert_eq!(
        run.json()["waves"][0]["instances"][0]["fields"]["run"],
        "echo rok-1 1 stable from-env"
    );
}

#[test]
fn an_env_value_of_the_wrong_type_is_an_error() {
    let run = test()
        .file(
            "plan2.toml",
            &PLAN.replace(
                "env = \"ROKTEST_REGION\"\ndefault = \"from-default\"",
                "env = \"ROKTEST_REGION\"\ntype = \"integer\"\ndefault = 1",
            ),
        )
        .args([
            "plan",
            "plan2.toml",
            "--output",
            "json",
            "--set",
            "master=rok-1",
        ])
        .env("ROKTEST_REGION", "eu-west")
        .run();
    run.code(2);
    let doc = run.json();
    assert_eq!(
        codes(&doc["diagnostics"]),
        ["rok_plan::invalid_param_value"]
    );
    assert!(
        doc["diagnostics"][0]["message"]
            .as_str()
            .unwrap()
            .contains("ROKTEST_REGION"),
        "{doc}"
    );
}

const SECRETS: [&str; 4] = ["alpha-token-6f1c", "beta-token-93ab", "4711", "0815"];

#[track_caller]
fn assert_no_secret(output: &str) {
    for secret in SECRETS {
        assert!(
            !output.contains(secret),
            "a secret value ({secret}) is shown:\n{output}"
        );
    }
}

#[test]
fn secret_values_never_appear_in_a_plan() {
    for output in [&["--output", "json"][..], &["--output", "human"][..]] {
        for extra in [
            &[][..],
            &["--set", "token=beta-token-93ab", "--set", "pin=0815"][..],
        ] {
            let run = test()
                .args(["plan", "plan.toml", "--set", "master=rok-1"])
                .args(output)
                .args(extra)
                .run();
            run.code(0);
            assert_no_secret(&run.all_output());
            assert!(
                run.stdout.contains("login --token *** --pin ***"),
                "{}",
                run.stdout
            );
        }
    }
    let run = test()
        .args([
            "plan",
            "plan.toml",
            "--output",
            "json",
            "--set",
            "master=rok-1",
        ])
        .env("ROKTEST_TOKEN", "beta-token-93ab")
        .run();
    run.code(0);
    assert_no_secret(&run.stdout);
    let token = param(&run.json(), "token").clone();
    assert_eq!(
        (
            token["value"].as_str(),
            token["origin"].as_str(),
            token["secret"].as_bool()
        ),
        (Some("***"), Some("env"), Some(true))
    );
}

#[test]
fn secret_values_never_appear_in_diagnostics() {
    // A secret outside its choices, and a secret of the wrong type, from --set and from env.
    // (Its choices are written in the plan and may be listed; the value given may not.)
    let set = [
        "--set",
        "master=rok-1",
        "--set",
        "token=hunter2-0815",
        "--set",
        "pin=0815x",
    ];
    for output in ["json", "human"] {
        let run = test()
            .args(["plan", "plan.toml", "--output", output])
            .args(set)
            .run();
        run.code(2);
        assert!(
            run.all_output().contains("rok_plan::not_in_choices"),
            "{}",
            run.all_output()
        );
        assert!(
            !run.all_output().contains("hunter2"),
            "the secret --set value is shown:\n{}",
            run.all_output()
        );
        assert!(
            !run.all_output().contains("0815"),
            "the secret --set value of `pin` is shown:\n{}",
            run.all_output()
        );

        let run = test()
            .args([
                "plan",
                "plan.toml",
                "--output",
                output,
                "--set",
                "master=rok-1",
            ])
            .env("ROKTEST_TOKEN", "hunter2-0815")
            .run();
        run.code(2);
        assert!(
            !run.all_output().contains("hunter2"),
            "the secret env value is shown:\n{}",
            run.all_output()
        );
    }
}

const REQUIRED: &str = r#"[plan]
name = "required-test"

[params.replicas]
type = "integer"
description = "How many replicas"
env = "ROKTEST_REPLICAS"

[[step]]
id = "a"
type = "noop"
"#;

#[test]
fn an_invalid_value_of_a_required_parameter_is_not_also_reported_missing() {
    let only_invalid = |t: Test| {
        let run = t.run();
        run.code(2);
        assert_eq!(
            codes(&run.json()["diagnostics"]),
            ["rok_plan::invalid_param_value"],
            "{}",
            run.stdout
        );
    };
    let base = || {
        Test::new()
            .file("plan.toml", REQUIRED)
            .args(["plan", "plan.toml", "--output", "json"])
    };
    only_invalid(base().args(["--set", "replicas=many"]));
    only_invalid(
        base()
            .file("p.toml", "replicas = \"many\"\n")
            .args(["--params", "p.toml"]),
    );
    only_invalid(base().env("ROKTEST_REPLICAS", "many"));
    // Without any value it is missing, named with its description.
    let run = base().run();
    run.code(2);
    let doc = run.json();
    assert_eq!(codes(&doc["diagnostics"]), ["rok_plan::missing_param"]);
    assert!(
        doc["diagnostics"][0]["message"]
            .as_str()
            .unwrap()
            .contains("How many replicas")
    );
    assert!(
        doc["diagnostics"][0]["help"]
            .as_str()
            .unwrap()
            .contains("ROKTEST_REPLICAS"),
        "{doc}"
    );
}

#[test]
fn secret_values_of_a_params_file_never_appear_in_diagnostics() {
    // A secret outside its choices, a secret of the wrong type, and an ordinary mistake on the
    // next line (whose snippet shows the lines around it).
    let file = "master = \"rok-1\"\ntoken = \"hunter2-0815\"\npin = \"0815x\"\ncount = \"many\"\n";
    for output in ["json", "human"] {
        let run = test()
            .file("params.toml", file)
            .args([
                "plan",
                "plan.toml",
                "--params",
                "params.toml",
                "--output",
                output,
            ])
            .run();
        run.code(2);
        let all = run.all_output();
        for code in ["not_in_choices", "invalid_param_value"] {
            assert!(all.contains(code), "{all}");
        }
        assert!(
            !all.contains("hunter2") && !all.contains("0815"),
            "a secret value is shown:\n{all}"
        );
    }
}
