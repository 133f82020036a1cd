//! The shipped plans in `plans/` validate, together and one by one.

use crate::support::{Test, repo};

fn shipped_plans() -> Vec<String> {
    let mut plans: Vec<String> = std::fs::read_dir(repo().join("plans"))
        .expect("read plans/")
        .map(|e| {
            e.expect("an entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|n| n.ends_with(".toml") && !n.ends_with(".params.toml"))
        .map(|n| format!("plans/{n}"))
        .collect();
    plans.sort();
    plans
}

#[test]
fn every_shipped_plan_validates() {
    let plans = shipped_plans();
    assert_eq!(plans.len(), 4, "{plans:?}");
    let run = Test::new()
        .cwd(repo())
        .args(["validate"])
        .args(&plans)
        .run();
    run.code(0);
    let json = Test::new()
        .cwd(repo())
        .args(["validate", "--output", "json"])
        .args(&plans)
        .run();
    json.code(0);
    let doc = json.json();
    assert_eq!(doc["valid"], true);
    assert_eq!(doc["files"].as_array().map(Vec::len), Some(4));
    for f in doc["files"].as_array().into_iter().flatten() {
        assert_eq!(f["valid"], true, "{f}");
        assert_eq!(f["diagnostics"], serde_json::json!([]), "{f}");
    }
}

#[test]
fn every_shipped_plan_validates_with_its_example_parameters() {
    for plan in shipped_plans() {
        let params = plan.replace("plans/", "plans/params/");
        assert!(
            repo().join(&params).exists(),
            "{plan} has no example parameters file {params}"
        );
        Test::new()
            .cwd(repo())
            .args(["validate", &plan, "--params", &params])
            .run()
            .code(0);
    }
}
