//! `kube.wait`: watches objects until a status condition is True, fields have the wanted
//! values, or the objects are gone. With a selector, every selected object must match
//! (and, unless waiting for `gone`, at least one must exist).

use kube::api::DynamicObject;
use rok_plan_engine::step::{Fields, StepContext, StepOutcome};
use serde_json::Value;

use super::client::{Kube, call, say};
use super::error::KubeError;
use super::field_path::{as_text, is_valid, lookup};
use super::flag;
use super::resource::{Target, name_of};
use super::watch::{Verdict, config_for, watch_until};

/// What the objects must come to.
enum Goal {
    Condition(String),
    Fields(Vec<(String, String)>),
    Gone,
}

pub(crate) async fn run(
    kube: &Kube,
    ctx: &StepContext,
    f: &Fields,
) -> Result<StepOutcome, KubeError> {
    let goal = goal(f)?;
    let conn = kube.conn(f).await?;
    let target = Target::from_fields(ctx, &conn, f, false).await?;
    let api = target.api(&conn);
    if conn.dry_run {
        // Nothing changes in a dry run, so only check that the objects can be read.
        let what = format!("LIST {}", target.describe());
        let lp = kube::api::ListParams::default();
        let lp = match (&target.name, &target.selector) {
            (Some(n), _) => lp.fields(&format!("metadata.name={n}")),
            (None, Some(s)) => lp.labels(s),
            _ => lp,
        };
        let found = call(ctx, &what, || api.list(&lp)).await?;
        say(
            ctx,
            format!(
                "would watch {} ({} found now)",
                target.describe(),
                found.items.len()
            ),
        );
        return Ok(StepOutcome::done());
    }
    let what = target.describe();
    let judge = move |objs: &[&DynamicObject]| judge(&what, &goal, objs);
    let config = config_for(target.name.as_deref(), target.selector.as_deref());
    watch_until(ctx, api, config, judge).await?;
    Ok(StepOutcome::done())
}

fn goal(f: &Fields) -> Result<Goal, KubeError> {
    if let Some(c) = f.get("condition").and_then(Value::as_str) {
        return Ok(Goal::Condition(c.trim().to_string()));
    }
    if let Some(Value::Object(m)) = f.get("fields") {
        let mut want = Vec::new();
        for (path, v) in m {
            if !is_valid(path) {
                return Err(KubeError::field(
                    "fields",
                    format!("`{path}` is not a field path like .status.phase"),
                ));
            }
            want.push((path.clone(), as_text(v)));
        }
        return Ok(Goal::Fields(want));
    }
    if flag(f, "gone") {
        return Ok(Goal::Gone);
    }
    Err(KubeError::field(
        "condition",
        "give one of `condition`, `fields` or `gone = true`",
    ))
}

fn judge(what: &str, goal: &Goal, objs: &[&DynamicObject]) -> Verdict {
    if let Goal::Gone = goal {
        return if objs.is_empty() {
            Verdict::done(format!("{what}: gone"))
        } else {
            let names: Vec<String> = objs.iter().map(|o| name_of(o)).collect();
            Verdict::waiting(format!("{what}: waiting for {} to go", names.join(", ")))
        };
    }
    if objs.is_empty() {
        return Verdict::waiting(format!("{what}: waiting for it to exist"));
    }
    let mut pending = Vec::new();
    for o in objs {
        let json = serde_json::to_value(o).unwrap_or_default();
        if let Some(why) = unmet(goal, &json) {
            pending.push(format!("{} {why}", name_of(o)));
        }
    }
    if pending.is_empty() {
        Verdict::done(format!("{what}: done"))
    } else {
        Verdict::waiting(format!("{what}: waiting: {}", pending.join("; ")))
    }
}

/// Why `obj` does not meet the goal yet, or `None`.
fn unmet(goal: &Goal, obj: &Value) -> Option<String> {
    match goal {
        Goal::Condition(c) => {
            let cond = obj["status"]["conditions"]
                .as_array()
                .and_then(|cs| {
                    cs.iter().find(|x| {
                        x["type"]
                            .as_str()
                            .is_some_and(|t| t.eq_ignore_ascii_case(c))
                    })
                })
                .cloned();
            match cond {
                Some(x) if x["status"] == "True" => None,
                Some(x) => Some(format!(
                    "condition {c} is {}{}",
                    x["status"].as_str().unwrap_or("?"),
                    x["message"]
                        .as_str()
                        .filter(|m| !m.is_empty())
                        .map(|m| format!(" ({m})"))
                        .unwrap_or_default()
                )),
                None => Some(format!("has no condition {c} yet")),
            }
        }
        Goal::Fields(want) => {
            let off: Vec<String> = want
                .iter()
                .filter_map(|(path, value)| {
                    let now = lookup(obj, path).map(as_text).unwrap_or_default();
                    (now != *value).then(|| format!("{path} = {now:?} (want {value:?})"))
                })
                .collect();
            (!off.is_empty()).then(|| off.join(", "))
        }
        Goal::Gone => Some("exists".into()),
    }
}
