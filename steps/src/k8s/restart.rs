//! `kube.restart`: new pods for a workload.
//! - `rollout`: Deployment, StatefulSet, DaemonSet get kubectl's `restartedAt` template
//!   annotation and are watched until rolled out; a ReplicationController is copied and
//!   rolled over to the copy one pod at a time (what `kubectl rolling-update` did).
//! - `scale-bounce`: replicas to 0 and back; the count is kept in an annotation first, so
//!   a run that dies at zero scales back to the right number on resume.
//! - `replace`: bare pods deleted and re-created from their own spec (the spec is printed
//!   first, so `rok-plan logs` holds it if the run dies in between).

use std::collections::BTreeSet;

use kube::ResourceExt;
use kube::api::{DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use rok_plan_engine::step::{Fields, StepContext, StepOutcome};
use serde_json::{Map, Value, json};

use super::client::{Conn, Kube, call, say};
use super::delete::wait_gone;
use super::error::KubeError;
use super::opt_text;
use super::resource::{Target, name_of};
use super::rollout::rollout_complete;
use super::scale::scale_to;
use super::watch::{config_for, watch_until};

/// Where a scale-bounce keeps the replica count it will restore.
const BOUNCE_REPLICAS: &str = "rok-plan/bounce-replicas";
/// The label that keeps an RC's pods apart from its copy's during a copy-and-roll.
const ROLLOUT_LABEL: &str = "rok-plan/rollout";

pub(crate) async fn run(
    kube: &Kube,
    ctx: &StepContext,
    f: &Fields,
) -> Result<StepOutcome, KubeError> {
    let strategy = opt_text(f, "strategy").unwrap_or("rollout");
    let conn = kube.conn(f).await?;
    let target = Target::from_fields(ctx, &conn, f, strategy != "replace").await?;
    match (strategy, target.kind.ar.kind.as_str()) {
        ("replace", "Pod") => replace_pods(ctx, &conn, &target).await,
        ("replace", other) => Err(KubeError::field(
            "strategy",
            format!("\"replace\" is for bare pods, not {other}"),
        )),
        ("scale-bounce", _) => scale_bounce(ctx, &conn, &target).await,
        ("rollout", "ReplicationController") => copy_and_roll(ctx, &conn, &target).await,
        ("rollout", "Deployment" | "StatefulSet" | "DaemonSet") => {
            rollout_restart(ctx, &conn, &target).await
        }
        ("rollout", other) => Err(KubeError::field(
            "strategy",
            format!(
                "\"rollout\" works on Deployments, StatefulSets, DaemonSets and ReplicationControllers, not {other}"
            ),
        )),
        (other, _) => Err(KubeError::field(
            "strategy",
            format!("unknown strategy `{other}`"),
        )),
    }
}

fn patch_params(conn: &Conn) -> PatchParams {
    PatchParams {
        dry_run: conn.dry_run,
        ..PatchParams::default()
    }
}

async fn rollout_restart(
    ctx: &StepContext,
    conn: &Conn,
    target: &Target,
) -> Result<StepOutcome, KubeError> {
    let name = target.name.clone().unwrap_or_default();
    let api = target.api(conn);
    let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let patch = Patch::Merge(
        json!({"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": now}}}}}),
    );
    let params = patch_params(conn);
    call(ctx, &format!("PATCH {}", target.describe()), || {
        api.patch(&name, &params, &patch)
    })
    .await?;
    if conn.dry_run {
        say(
            ctx,
            format!("{}: would restart (server dry run)", target.describe()),
        );
        return Ok(StepOutcome::done());
    }
    say(ctx, format!("{}: restarting", target.describe()));
    watch_until(ctx, api, config_for(Some(&name), None), rollout_complete()).await?;
    Ok(StepOutcome::done())
}

async fn scale_bounce(
    ctx: &StepContext,
    conn: &Conn,
    target: &Target,
) -> Result<StepOutcome, KubeError> {
    let name = target.name.clone().unwrap_or_default();
    let api = target.api(conn);
    let obj = call(ctx, &format!("GET {}", target.describe()), || {
        api.get(&name)
    })
    .await?;
    let kept = obj
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(BOUNCE_REPLICAS))
        .and_then(|v| v.parse::<i64>().ok());
    let replicas = match kept {
        Some(n) => {
            say(
                ctx,
                format!("{}: resuming a scale-bounce back to {n}", target.describe()),
            );
            n
        }
        None => {
            let n = obj.data["spec"]["replicas"].as_i64().unwrap_or(1);
            let mark = Patch::Merge(
                json!({"metadata": {"annotations": {BOUNCE_REPLICAS: n.to_string()}}}),
            );
            let params = patch_params(conn);
            call(ctx, &format!("PATCH {}", target.describe()), || {
                api.patch(&name, &params, &mark)
            })
            .await?;
            n
        }
    };
    scale_to(ctx, conn, target, 0, true).await?;
    scale_to(ctx, conn, target, replicas, true).await?;
    let unmark = Patch::Merge(json!({"metadata": {"annotations": {BOUNCE_REPLICAS: null}}}));
    let params = patch_params(conn);
    call(ctx, &format!("PATCH {}", target.describe()), || {
        api.patch(&name, &params, &unmark)
    })
    .await?;
    Ok(StepOutcome::done())
}

/// Replaces a ReplicationController by a copy of itself, one pod at a time.
async fn copy_and_roll(
    ctx: &StepContext,
    conn: &Conn,
    target: &Target,
) -> Result<StepOutcome, KubeError> {
    let name = target.name.clone().unwrap_or_default();
    let api = target.api(conn);
    // The run id's last four letters or digits (a dry run's id ends in "-run": no hyphen
    // right after the RC's own name).
    let suffix: String = ctx
        .run_id
        .chars()
        .rev()
        .filter(char::is_ascii_alphanumeric)
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let copy = format!("{name}-{}", suffix.to_ascii_lowercase());
    let Some(old) = call(ctx, &format!("GET {}", target.describe()), || {
        api.get_opt(&name)
    })
    .await?
    else {
        if call(ctx, "GET copy", || api.get_opt(&copy))
            .await?
            .is_some()
        {
            say(
                ctx,
                format!("{} was already replaced by {copy}", target.describe()),
            );
            return Ok(StepOutcome::Satisfied);
        }
        return Err(KubeError::Api {
            what: format!("GET {}", target.describe()),
            code: 404,
            reason: "NotFound".into(),
            message: format!("{} not found", target.describe()),
            causes: Vec::new(),
        });
    };
    let replicas = old.data["spec"]["replicas"].as_i64().unwrap_or(1);
    let mut selector: Map<String, Value> = old.data["spec"]["selector"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    selector.remove(ROLLOUT_LABEL);
    if conn.dry_run {
        say(
            ctx,
            format!(
                "{}: would be copied to {copy} and rolled over one pod at a time ({replicas} replicas)",
                target.describe()
            ),
        );
        return Ok(StepOutcome::done());
    }
    // 1. Keep the old pods apart: label them, then narrow the old RC's selector.
    let pods = kube::Api::<DynamicObject>::namespaced_with(
        conn.client.clone(),
        target.namespace.as_deref().unwrap_or("default"),
        &kube::api::ApiResource::erase::<k8s_openapi::api::core::v1::Pod>(&()),
    );
    let sel: Vec<String> = selector
        .iter()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
        .collect();
    let lp = ListParams::default().labels(&sel.join(","));
    for p in call(ctx, "LIST pods", || pods.list(&lp)).await?.items {
        if p.labels().get(ROLLOUT_LABEL).is_none() {
            let label = Patch::Merge(json!({"metadata": {"labels": {ROLLOUT_LABEL: name}}}));
            let pod = name_of(&p);
            let params = PatchParams::default();
            call(ctx, &format!("PATCH pod {pod}"), || {
                pods.patch(&pod, &params, &label)
            })
            .await?;
        }
    }
    let narrow = Patch::Merge(
        json!({"spec": {"selector": {ROLLOUT_LABEL: name}, "template": {"metadata": {"labels": {ROLLOUT_LABEL: name}}}}}),
    );
    let params = PatchParams::default();
    call(ctx, &format!("PATCH {}", target.describe()), || {
        api.patch(&name, &params, &narrow)
    })
    .await?;
    // 2. The copy, at zero replicas.
    if call(ctx, "GET copy", || api.get_opt(&copy))
        .await?
        .is_none()
    {
        let mut body = json!({
            "apiVersion": "v1", "kind": "ReplicationController",
            "metadata": {"name": copy, "labels": old.metadata.labels.clone().unwrap_or_default()},
            "spec": {"replicas": 0, "selector": selector, "template": old.data["spec"]["template"].clone()},
        });
        body["spec"]["selector"][ROLLOUT_LABEL] = json!(copy);
        body["spec"]["template"]["metadata"]["labels"][ROLLOUT_LABEL] = json!(copy);
        let obj: DynamicObject =
            serde_json::from_value(body).map_err(|e| KubeError::Manifest(e.to_string()))?;
        let params = PostParams::default();
        call(ctx, &format!("POST ReplicationController {copy}"), || {
            api.create(&params, &obj)
        })
        .await?;
        say(
            ctx,
            format!("created ReplicationController {copy}, a copy of {name}"),
        );
    }
    // 3. One pod at a time: the copy up by one, the old one down by one.
    let copy_target = Target {
        name: Some(copy.clone()),
        ..target.clone()
    };
    for step in 1..=replicas {
        scale_to(ctx, conn, &copy_target, step, true).await?;
        scale_to(ctx, conn, target, replicas - step, true).await?;
    }
    // 4. The old RC, now empty, goes.
    let uids: BTreeSet<String> = old.metadata.uid.iter().cloned().collect();
    let params = DeleteParams::background();
    call(ctx, &format!("DELETE {}", target.describe()), || {
        api.delete(&name, &params)
    })
    .await?;
    wait_gone(ctx, target, api, uids).await?;
    say(
        ctx,
        format!("ReplicationController {name} replaced by {copy}"),
    );
    Ok(StepOutcome::done())
}

async fn replace_pods(
    ctx: &StepContext,
    conn: &Conn,
    target: &Target,
) -> Result<StepOutcome, KubeError> {
    let api = target.api(conn);
    let pods: Vec<DynamicObject> = match (&target.name, &target.selector) {
        (Some(n), _) => {
            vec![call(ctx, &format!("GET {}", target.describe()), || api.get(n)).await?]
        }
        (None, sel) => {
            let lp = ListParams::default().labels(sel.as_deref().unwrap_or(""));
            call(ctx, &format!("LIST {}", target.describe()), || {
                api.list(&lp)
            })
            .await?
            .items
        }
    };
    for pod in pods {
        let name = name_of(&pod);
        if pod
            .metadata
            .owner_references
            .as_ref()
            .is_some_and(|o| o.iter().any(|r| r.controller == Some(true)))
        {
            return Err(KubeError::field(
                "strategy",
                format!(
                    "pod {name} has a controller: restart the controller instead of replacing its pod"
                ),
            ));
        }
        let fresh = fresh_copy(&pod)?;
        say(
            ctx,
            format!(
                "pod {name} will be re-created from: {}",
                serde_json::to_string(&fresh).unwrap_or_default()
            ),
        );
        let one = Target {
            name: Some(name.clone()),
            ..target.clone()
        };
        let params = DeleteParams {
            dry_run: conn.dry_run,
            ..DeleteParams::default()
        };
        call(ctx, &format!("DELETE {}", one.describe()), || {
            api.delete(&name, &params)
        })
        .await?;
        if !conn.dry_run {
            let uids: BTreeSet<String> = pod.metadata.uid.iter().cloned().collect();
            wait_gone(ctx, &one, api.clone(), uids).await?;
        }
        let pp = PostParams {
            dry_run: conn.dry_run,
            ..PostParams::default()
        };
        // A dry-run create of a pod that still exists would only say it exists.
        if !conn.dry_run {
            call(ctx, &format!("POST {}", one.describe()), || {
                api.create(&pp, &fresh)
            })
            .await?;
        }
        say(
            ctx,
            format!(
                "pod {name} re-created{}",
                if conn.dry_run {
                    " (server dry run)"
                } else {
                    ""
                }
            ),
        );
    }
    Ok(StepOutcome::done())
}

/// The pod as a new object: metadata the server owns and status dropped, the node left to
/// the scheduler, and the service-account token volume left to admission to add anew.
fn fresh_copy(pod: &DynamicObject) -> Result<DynamicObject, KubeError> {
    let mut v = serde_json::to_value(pod).map_err(|e| KubeError::Manifest(e.to_string()))?;
    if let Some(o) = v.as_object_mut() {
        o.remove("status");
    }
    if let Some(m) = v["metadata"].as_object_mut() {
        for k in [
            "uid",
            "resourceVersion",
            "creationTimestamp",
            "managedFields",
            "generation",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
        ] {
            m.remove(k);
        }
    }
    if let Some(spec) = v["spec"].as_object_mut() {
        spec.remove("nodeName");
        let token = |n: &Value| {
            n.as_str()
                .is_some_and(|s| s.starts_with("kube-api-access-"))
        };
        if let Some(vols) = spec.get_mut("volumes").and_then(Value::as_array_mut) {
            vols.retain(|vol| !token(&vol["name"]));
        }
        for key in ["containers", "initContainers"] {
            for c in spec
                .get_mut(key)
                .and_then(Value::as_array_mut)
                .into_iter()
                .flatten()
            {
                if let Some(mounts) = c.get_mut("volumeMounts").and_then(Value::as_array_mut) {
                    mounts.retain(|m| !token(&m["name"]));
                }
            }
        }
    }
    serde_json::from_value(v).map_err(|e| KubeError::Manifest(e.to_string()))
}
