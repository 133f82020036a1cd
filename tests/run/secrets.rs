//! Secret parameters (`secret = true`), given by `--set` and by `env`: their values appear
//! nowhere rok-plan writes or prints (the raw bytes of every store file, `status`, `logs`,
//! JSON events, human output); and `resume` needs them again.

use crate::support::{Lab, contains_bytes, files_under, state_of, step};

const TOKEN: &str = "tok-s3cr3t-91f2";
const PASSWORD: &str = "pw-hunter2-c7d4";

const PLAN: &str = r#"
[plan]
name = "secrets"

[params.token]
secret = true
env = "ROK_TEST_TOKEN"

[params.password]
secret = true

[[step]]
id = "use"
type = "shell"
run = "echo token={{ params.token }}; echo pw={{ params.password }} >&2; echo seen:{{ params.token }}; echo use >> journal"
capture = { seen = 'seen:(\S+)' }

[[step]]
id = "env-echo"
type = "shell"
env = { PW = "{{ params.password }}" }
run = 'echo "from env: $PW"; echo "also $PW" >&2'

# Fails with the secret in its error.
[[step]]
id = "bad-program"
type = "shell"
on_failure = "continue"
argv = ["/no/such/dir/{{ params.password }}"]

[[step]]
id = "bad-duration"
type = "sleep"
on_failure = "continue"
duration = "{{ params.token }}"

# Fails until `fixed` exists, so that the run can be resumed.
[[step]]
id = "gate"
type = "shell"
needs = ["use"]
run = "echo gate {{ params.token }} >&2; test -f fixed"
"#;

/// Asserts that neither secret occurs in `what`.
#[track_caller]
fn clean(what: &str, text: &str) {
    for s in [TOKEN, PASSWORD] {
        assert!(!text.contains(s), "{what} shows the secret `{s}`:\n{text}");
    }
}

/// Asserts that neither secret occurs in any file under the state directory.
#[track_caller]
fn store_clean(lab: &Lab) {
    let files = files_under(&lab.state());
    assert!(files.len() >= 2, "the store has files: {files:?}");
    for (path, bytes) in files {
        for s in [TOKEN, PASSWORD] {
            assert!(
                !contains_bytes(&bytes, s.as_bytes()),
                "{} contains the secret `{s}`",
                path.display()
            );
        }
    }
}

#[test]
fn secrets_never_reach_the_store_status_logs_or_events_and_must_be_given_again() {
    let lab = Lab::with_plan(PLAN);
    let set = format!("password={PASSWORD}");
    let args = ["execute", "plan.toml", "--set", &set];
    let mut cmd = lab.cmd(&args);
    cmd.env("ROK_TEST_TOKEN", TOKEN);
    let human = lab.run_cmd(cmd, &args);
    human.code(1);
    clean("human output of execute", &human.all());
    store_clean(&lab);

    let s = lab.status();
    clean("status --output json", &s.to_string());
    assert_eq!(state_of(&s, "use"), "succeeded");
    assert_eq!(step(&s, "use")["outputs"]["seen"], "***");
    assert_eq!(
        s["run"]["secret_params"],
        serde_json::json!(["token", "password"])
    );
    for id in ["bad-program", "bad-duration"] {
        let err = step(&s, id)["last_error"].as_str().unwrap_or_default();
        assert!(err.contains("***"), "{id}'s error masks the secret: {err}");
    }
    clean("status", &lab.run(&["status"]).code(0).all());
    clean("runs", &lab.run(&["runs"]).code(0).all());
    clean(
        "runs --output json",
        &lab.run(&["--output", "json", "runs"]).code(0).all(),
    );
    let id = lab.run_id();
    for instance in ["use", "env-echo", "bad-program", "bad-duration", "gate"] {
        for json in [false, true] {
            let mut args = vec!["logs", id.as_str(), instance];
            if json {
                args.splice(0..0, ["--output", "json"]);
            }
            let out = lab.run(&args);
            out.code(0);
            clean(&format!("logs {instance}"), &out.all());
        }
    }
    let logs = lab.run(&["logs", &id, "use"]).code(0).all();
    for line in ["token=***", "pw=***", "seen:***"] {
        assert!(logs.contains(line), "logs show `{line}`:\n{logs}");
    }
    let logs = lab.run(&["logs", &id, "env-echo"]).code(0).all();
    assert!(
        logs.contains("from env: ***") && logs.contains("also ***"),
        "{logs}"
    );

    // Without the secrets, resume refuses before anything runs.
    lab.write("fixed", "");
    let out = lab.run(&["resume"]);
    out.code(2);
    assert!(out.stderr.contains("missing_param"), "{}", out.stderr);
    assert!(out.stderr.contains("token") && out.stderr.contains("password"));
    let out = lab.run(&["--output", "json", "resume"]);
    out.code(2);
    let doc = out.json();
    let codes: Vec<&str> = doc["diagnostics"]
        .as_array()
        .expect("diagnostics")
        .iter()
        .filter_map(|d| d["code"].as_str())
        .collect();
    assert_eq!(
        codes,
        ["rok_plan::missing_param", "rok_plan::missing_param"]
    );
    // Only one of the two: still refused.
    lab.run(&["resume", "--set", &set]).code(2);
    assert_eq!(lab.count("journal", "use"), 1);

    // Given again (by --set and by env): the run goes on, and the secrets stay out.
    let args = ["--output", "json", "resume", "--set", &set];
    let mut cmd = lab.cmd(&args);
    cmd.env("ROK_TEST_TOKEN", TOKEN);
    let out = lab.run_cmd(cmd, &args);
    // The two steps failing on purpose fail again.
    out.code(1);
    clean("JSON events of resume", &out.stdout);
    clean("stderr of resume", &out.stderr);
    let s = lab.status();
    assert_eq!(state_of(&s, "gate"), "succeeded");
    assert_eq!(lab.count("journal", "use"), 1, "a finished step ran again");
    store_clean(&lab);

    // The JSON event stream of the first run, too.
    let lab2 = Lab::with_plan(PLAN);
    let json = {
        let args = ["--output", "json", "execute", "plan.toml", "--set", &set];
        let mut cmd = lab2.cmd(&args);
        cmd.env("ROK_TEST_TOKEN", TOKEN);
        lab2.run_cmd(cmd, &args)
    };
    json.code(1);
    clean("JSON events of execute", &json.all());
    assert!(json.events().iter().any(|e| e["event"] == "step_output"
        && e["text"].as_str().is_some_and(|t| t.contains("token=***"))));
    store_clean(&lab2);
}

#[test]
fn resume_takes_only_secrets_again_not_other_parameters() {
    let lab = Lab::with_plan(
        r#"
[plan]
name = "fixed-params"

[params.version]
default = "1.0"

[params.token]
secret = true

[[step]]
id = "use"
type = "shell"
run = "echo {{ params.version }} >> journal; test -f ok"
"#,
    );
    lab.run(&[
        "execute",
        "plan.toml",
        "--set",
        "version=2.0",
        "--set",
        "token=t0k-x",
    ])
    .code(1);
    lab.write("ok", "");
    let out = lab.run(&["resume", "--set", "version=3.0", "--set", "token=t0k-x"]);
    out.code(2);
    assert!(out.stderr.contains("version"), "{}", out.stderr);
    lab.run(&["resume", "--set", "token=t0k-x"]).code(0);
    // The run keeps the value it started with.
    assert_eq!(lab.lines("journal"), ["2.0", "2.0"]);
    assert_eq!(lab.status()["run"]["params"]["version"], "2.0");
}
