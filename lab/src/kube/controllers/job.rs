//! Jobs: run pods until `completions` succeed (Complete) or more than `backoffLimit` fail
//! (Failed).

use serde_json::{Value, json};

use super::super::pod::is_active;
use super::super::store::now_rfc3339;
use super::super::world::World;

/// Reconciles the queued objects.
pub(super) fn run(w: &mut World, keys: Vec<super::dirty::Key>) {
    for key in keys {
        let Some(job) = super::get_key(w, "batch", "jobs", &key) else {
            continue;
        };
        if !job["metadata"]["deletionTimestamp"].is_string() {
            reconcile(w, &job);
        }
    }
}

fn finished(job: &Value) -> bool {
    job["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| (c["type"] == "Complete" || c["type"] == "Failed") && c["status"] == "True")
}

fn reconcile(w: &mut World, job: &Value) {
    let ns = job["metadata"]["namespace"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let name = job["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let completions = job["spec"]["completions"].as_i64().unwrap_or(1);
    let parallelism = job["spec"]["parallelism"].as_i64().unwrap_or(1);
    let backoff = job["spec"]["backoffLimit"].as_i64().unwrap_or(6);
    let pods = super::owned(w, "", "pods", job);
    let succeeded = pods
        .iter()
        .filter(|p| p["status"]["phase"] == "Succeeded")
        .count() as i64;
    let failed = pods
        .iter()
        .filter(|p| p["status"]["phase"] == "Failed")
        .count() as i64;
    let active: Vec<&Value> = pods.iter().filter(|p| is_active(p)).collect();
    let mut out = job.clone();
    let now = now_rfc3339();
    if out["status"]["startTime"].is_null() {
        out["status"]["startTime"] = json!(now);
    }
    if !finished(job) {
        if succeeded >= completions {
            super::set_condition(
                &mut out,
                "SuccessCriteriaMet",
                "True",
                "CompletionsReached",
                "Reached expected number of succeeded pods",
            );
            super::set_condition(
                &mut out,
                "Complete",
                "True",
                "CompletionsReached",
                "Reached expected number of succeeded pods",
            );
            out["status"]["completionTime"] = json!(now);
        } else if failed > backoff {
            super::set_condition(
                &mut out,
                "FailureTarget",
                "True",
                "BackoffLimitExceeded",
                "Job has reached the specified backoff limit",
            );
            super::set_condition(
                &mut out,
                "Failed",
                "True",
                "BackoffLimitExceeded",
                "Job has reached the specified backoff limit",
            );
            for p in &active {
                super::delete(w, "", "pods", p);
            }
        } else {
            let want = parallelism.min(completions - succeeded) - active.len() as i64;
            let uid = job["metadata"]["uid"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            for _ in 0..want.max(0) {
                let mut pod = super::pod_from_template(
                    &job["spec"]["template"],
                    job,
                    &[
                        ("job-name", name.clone()),
                        ("batch.kubernetes.io/job-name", name.clone()),
                        ("controller-uid", uid.clone()),
                        ("batch.kubernetes.io/controller-uid", uid.clone()),
                    ],
                );
                pod["metadata"]["generateName"] = json!(format!("{name}-"));
                super::create(w, "", "pods", &ns, pod);
            }
        }
    }
    let active = super::owned(w, "", "pods", job)
        .iter()
        .filter(|p| is_active(p))
        .count();
    out["status"]["active"] = json!(active);
    out["status"]["succeeded"] = json!(succeeded);
    out["status"]["failed"] = json!(failed);
    out["status"]["ready"] = json!(0);
    super::put_status(w, "batch", "jobs", out);
}
