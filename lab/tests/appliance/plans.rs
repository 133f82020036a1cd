//! plans/rok-v0.11.toml and plans/rok-v0.12.toml as written, against the lab: every `ssh`
//! step's `run` (after its `check`) through ssh in plan order, `file.edit` replace steps
//! applied to the host's file, `manual` steps approved at once (the BOOT image is already
//! the new one). A stand-in for the executor that only renders the few templates these
//! plans use and sends each script as the product does (on stdin to `sh -s`), so that
//! the simulation is checked against the plan text itself. The same runs through the
//! real `rok-plan execute --ssh-config LAB/ssh_config --yes` gave the same results.

use std::collections::BTreeMap;
use std::path::PathBuf;

use rok_plan_lab::appliance::{ApplianceLab, V0_11, V0_12};
use toml::Value;

use crate::support::{lab_with, ssh};

/// Runs `line` on `host` the way the product does: the script reaches `sh -s` on stdin
/// (so it shows on no command line) as one `{ ... }` block, without `set -e`.
fn run_on(lab: &ApplianceLab, host: &str, line: &str) -> std::process::Output {
    use std::io::Write;
    let mut child = lab
        .ssh(host)
        .arg("sh -s")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let script = format!("{{\n{}\n}} </dev/null\n", line.trim_end_matches('\n'));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn plan_text(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../plans")
        .join(name);
    std::fs::read_to_string(&path).unwrap()
}

fn plan(name: &str) -> Value {
    toml::from_str(&plan_text(name)).unwrap()
}

/// The parameters of a run: strings, lists and booleans.
struct Params(BTreeMap<&'static str, Value>);

impl Params {
    fn text(&self, name: &str) -> String {
        match &self.0[name] {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        }
    }

    fn truth(&self, expr: &str) -> bool {
        expr.split(" and ").all(|term| {
            let (negate, name) = match term.trim().strip_prefix("not ") {
                Some(rest) => (true, rest),
                None => (false, term.trim()),
            };
            let name = name.strip_prefix("params.").unwrap();
            let value = self.0.get(name).and_then(Value::as_bool).unwrap_or(false);
            value != negate
        })
    }

    fn list(&self, expr: &str) -> Vec<String> {
        let name = expr.strip_prefix("params.").unwrap();
        self.0[name]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    }
}

fn shell_quote(s: &str) -> String {
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// Renders `{{ params.X }}`, `{{ params.X | raw }}` and `{{ item }}`; values are
/// shell-quoted in shell fields, as the product does.
fn render(text: &str, params: &Params, item: Option<&str>, shell: bool) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find("}}").unwrap() + start;
        let expr = rest[start + 2..end].trim();
        let (expr, raw) = match expr.strip_suffix("| raw") {
            Some(e) => (e.trim(), true),
            None => (expr, false),
        };
        let value = if expr == "item" {
            item.unwrap().to_string()
        } else {
            params.text(expr.strip_prefix("params.").unwrap())
        };
        out.push_str(&if shell && !raw {
            shell_quote(&value)
        } else {
            value
        });
        rest = &rest[end + 2..];
    }
    out.push_str(rest);
    out
}

/// How a rehearsal ended.
#[derive(Debug)]
enum Outcome {
    Done,
    /// This step (and item) failed; its stderr.
    Failed(String, String),
}

fn run_step(
    lab: &ApplianceLab,
    step: &Value,
    params: &Params,
    item: Option<&str>,
) -> Result<(), String> {
    let get = |k: &str| step.get(k).and_then(Value::as_str);
    if let Some(when) = get("when")
        && !params.truth(when)
    {
        return Ok(());
    }
    match get("type").unwrap() {
        "manual" => Ok(()),
        "ssh" => {
            let host = render(get("host").unwrap(), params, item, false);
            if let Some(check) = get("check") {
                let check = render(check, params, item, true);
                if run_on(lab, &host, &check).status.success() {
                    return Ok(());
                }
            }
            let run = render(get("run").unwrap(), params, item, true);
            let out = run_on(lab, &host, &run);
            if out.status.success() {
                Ok(())
            } else {
                Err(format!(
                    "exit {:?}; stdout: {}; stderr: {}",
                    out.status.code(),
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                ))
            }
        }
        "file.edit" => {
            let host = render(get("host").unwrap(), params, item, false);
            let path = get("path").unwrap();
            let file = lab.etc_rok(&host).join(
                path.strip_prefix("/etc/rok/")
                    .expect("a file under /etc/rok"),
            );
            let mut text = std::fs::read_to_string(&file).unwrap();
            for r in step.get("replace").and_then(Value::as_array).unwrap() {
                text = text.replace(r["pattern"].as_str().unwrap(), r["with"].as_str().unwrap());
            }
            std::fs::write(&file, text).unwrap();
            Ok(())
        }
        other => panic!("a step type this rehearsal does not run: {other}"),
    }
}

/// Runs every step of `plan` in file order; a group's steps run item by item where the
/// group's first step is.
fn rehearse(lab: &ApplianceLab, plan: &Value, params: &Params) -> Outcome {
    let steps = plan["step"].as_array().unwrap();
    let groups: BTreeMap<&str, &Value> = plan
        .get("group")
        .and_then(Value::as_array)
        .map(|gs| gs.iter().map(|g| (g["id"].as_str().unwrap(), g)).collect())
        .unwrap_or_default();
    let mut groups_done = Vec::new();
    for step in steps {
        let id = step["id"].as_str().unwrap();
        match step.get("group").and_then(Value::as_str) {
            None => {
                let items = match step.get("for_each").and_then(Value::as_str) {
                    Some(list) => params.list(list).into_iter().map(Some).collect(),
                    None => vec![None],
                };
                for item in items {
                    if let Err(e) = run_step(lab, step, params, item.as_deref()) {
                        return Outcome::Failed(id.to_string(), e);
                    }
                }
            }
            Some(g) if groups_done.contains(&g) => {}
            Some(g) => {
                groups_done.push(g);
                let group = groups[g];
                if let Some(when) = group.get("when").and_then(Value::as_str)
                    && !params.truth(when)
                {
                    continue;
                }
                for item in params.list(group["for_each"].as_str().unwrap()) {
                    for s in steps
                        .iter()
                        .filter(|s| s.get("group").and_then(Value::as_str) == Some(g))
                    {
                        if let Err(e) = run_step(lab, s, params, Some(&item)) {
                            return Outcome::Failed(
                                format!("{}[{item}]", s["id"].as_str().unwrap()),
                                e,
                            );
                        }
                    }
                }
            }
        }
    }
    Outcome::Done
}

fn strings(items: &[&str]) -> Value {
    Value::Array(items.iter().map(|s| Value::String(s.to_string())).collect())
}

fn v0_12_params() -> Params {
    Params(BTreeMap::from([
        ("master", Value::String("rok-node-1".into())),
        ("slaves", strings(&["rok-node-2", "rok-node-3"])),
        ("upgrade_maps", Value::Boolean(true)),
        ("delete_map_backups", Value::Boolean(true)),
        ("s3_assume_no_versioning", Value::Boolean(false)),
        ("s3d_hosts", strings(&[])),
        ("thick_volumes", Value::Boolean(false)),
    ]))
}

fn v0_11_params() -> Params {
    Params(BTreeMap::from([
        ("master", Value::String("rok-node-1".into())),
        ("slaves", strings(&["rok-node-2", "rok-node-3"])),
        ("rok_clustername", Value::String("rok-prod".into())),
        ("review_openstore_roles", Value::Boolean(true)),
        ("gateway", Value::Boolean(true)),
        (
            "gateway_stop_command",
            Value::String("rok-gw-service stop".into()),
        ),
        (
            "gateway_start_command",
            Value::String("rok-gw-service start".into()),
        ),
        ("ganeti", Value::Boolean(false)),
    ]))
}

fn assert_upgraded(lab: &ApplianceLab, to: rok_plan_lab::appliance::Version) {
    let state = lab.state().unwrap();
    assert_eq!(state.cluster.version, to);
    for h in lab.hosts() {
        assert_eq!(state.node(&h).unwrap().version, to, "{h}");
        let up_node = format!("{} upgrade-node", to.upgrade_tool());
        assert_eq!(lab.invocations(&h, &up_node).unwrap().len(), 1, "{h}");
    }
}

#[test]
fn v0_12_plan_as_written_runs_to_the_end() {
    let lab = lab_with(3, |_| {});
    match rehearse(&lab, &plan("rok-v0.12.toml"), &v0_12_params()) {
        Outcome::Done => {}
        Outcome::Failed(step, why) => panic!("{step}: {why}"),
    }
    assert_upgraded(&lab, V0_12);
    let state = lab.state().unwrap();
    assert!(state.cluster.maps.iter().all(|m| m.format == 4));
    assert!(state.cluster.map_backups.is_empty());
}

fn params_with(mut p: Params, master: &str, slaves: &[&str]) -> Params {
    p.0.insert("master", Value::String(master.into()));
    p.0.insert("slaves", strings(slaves));
    p
}

#[test]
fn v0_12_plan_find_master_refuses_a_master_that_is_not_one() {
    let lab = lab_with(3, |_| {});
    let params = params_with(v0_12_params(), "rok-node-2", &["rok-node-1", "rok-node-3"]);
    match rehearse(&lab, &plan("rok-v0.12.toml"), &params) {
        Outcome::Failed(step, _) => assert_eq!(step, "find_master"),
        Outcome::Done => panic!("the plan ran with the wrong master"),
    }
}

/// verify-master-pinned (`set -e`, counting only `cluster.members.*.master_capable=True`)
/// stops the run when a node was left out of `slaves`: it stays master capable. Before
/// the plan had `set -e`, only the last line of that check counted and upgrade-cluster
/// was the first to refuse (found by this lab).
#[test]
fn v0_12_plan_verify_master_pinned_stops_a_forgotten_slave() {
    let lab = lab_with(4, |_| {});
    match rehearse(&lab, &plan("rok-v0.12.toml"), &v0_12_params()) {
        Outcome::Failed(step, _) => assert_eq!(step, "verify-master-pinned"),
        Outcome::Done => panic!("upgraded with rok-node-4 still master capable"),
    }
    assert!(
        lab.invocations("rok-node-1", "rok-cluster-upgrade-v0.12.0")
            .unwrap()
            .is_empty()
    );
    // seed 002's `host.master_capable=True` line is not counted: with rok-node-4 unpinned
    // too, the plan's count is 1 although a plain `grep -c True` says 2.
    crate::support::ok(
        &lab,
        "rok-node-1",
        "rok-config set cluster.members.rok-node-4.master_capable=False",
    );
    let count = ssh(
        &lab,
        "rok-node-1",
        "rok-config get | grep master_capable | grep -c True",
    );
    assert_eq!(String::from_utf8_lossy(&count.stdout).trim(), "2");
    let plan_count = ssh(
        &lab,
        "rok-node-1",
        r"rok-config get | grep -c '^cluster\.members\..*\.master_capable=True$'",
    );
    assert_eq!(String::from_utf8_lossy(&plan_count.stdout).trim(), "1");
}

/// v0.11's find_master (`set -e`) fails when params.master is not the master, before
/// anything changes. Without `set -e` its last line (`echo master-ip`) hid the failed
/// `grep -w master` and the run pinned the wrong node (found by this lab).
#[test]
fn v0_11_plan_find_master_refuses_a_master_that_is_not_one() {
    let lab = lab_with(3, |o| o.boot_image = V0_11);
    let params = params_with(v0_11_params(), "rok-node-2", &["rok-node-1", "rok-node-3"]);
    match rehearse(&lab, &plan("rok-v0.11.toml"), &params) {
        Outcome::Failed(step, _) => assert_eq!(step, "find_master"),
        Outcome::Done => panic!("the plan ran with the wrong master"),
    }
    for h in lab.hosts() {
        assert!(
            lab.invocations(&h, "rok-config set").unwrap().is_empty(),
            "{h}"
        );
    }
}

#[test]
fn v0_11_plan_then_v0_12_plan_run_to_the_end() {
    let lab = lab_with(3, |o| o.boot_image = V0_11);
    match rehearse(&lab, &plan("rok-v0.11.toml"), &v0_11_params()) {
        Outcome::Done => {}
        Outcome::Failed(step, why) => panic!("{step}: {why}"),
    }
    assert_upgraded(&lab, V0_11);
    let state = lab.state().unwrap();
    assert!(state.cluster.etcd_auth);
    assert!(
        state
            .cluster
            .gateway_migrations
            .iter()
            .any(|m| m == "0005_etcd_credentials")
    );
    for h in lab.hosts() {
        assert!(!lab.daemons_conf(&h).unwrap().contains("tcp://"), "{h}");
    }
    // The Gateway was stopped for the migration and started again.
    assert_eq!(
        lab.invocations("rok-node-1", "rok-gw-service stop")
            .unwrap()
            .len(),
        1
    );
    crate::support::ok(&lab, "rok-node-1", "pgrep -x gunicorn");
    // Then v0.12 on the same cluster (new BOOT images everywhere).
    for h in lab.hosts() {
        lab.set_boot_image(&h, V0_12).unwrap();
    }
    match rehearse(&lab, &plan("rok-v0.12.toml"), &v0_12_params()) {
        Outcome::Done => {}
        Outcome::Failed(step, why) => panic!("{step}: {why}"),
    }
    assert_upgraded(&lab, V0_12);
}

/// pin-master's check matches the whole candidate list (`grep -qFx`): a list that merely
/// starts with the master does not skip the pin. (With `grep -qF` it did, and
/// upgrade-cluster refused; found by this lab.)
#[test]
fn v0_11_plan_pins_the_master_when_the_candidate_list_only_starts_with_it() {
    let lab = lab_with(3, |o| {
        o.boot_image = V0_11;
        o.initial_master_candidates = Some(vec!["rok-node-1".into(), "rok-node-2".into()]);
    });
    match rehearse(&lab, &plan("rok-v0.11.toml"), &v0_11_params()) {
        Outcome::Done => {}
        Outcome::Failed(step, why) => panic!("{step}: {why}"),
    }
    assert_eq!(
        lab.invocations("rok-node-1", "rok-config set")
            .unwrap()
            .len(),
        1
    );
    assert_upgraded(&lab, V0_11);
}
