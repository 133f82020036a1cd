//! The kubelets: bound pods go Running, then Ready (after the delays and behaviours tests set);
//! Job pods exit; pods being deleted are removed once their (simulated) grace is over.

use std::time::Instant;

use serde_json::{Value, json};

use super::super::pod::{container_names, controller_kind, is_ready};
use super::super::store::now_rfc3339;
use super::super::world::{PodBehaviour, World};
use super::dirty::{Key, wake_kubelet};

fn container_statuses(pod: &Value, ready: bool, now: &str) -> Value {
    json!(container_names(pod).iter().map(|c| {
        let image = pod["spec"]["containers"].as_array().into_iter().flatten().find(|x| x["name"] == c.as_str()).map(|x| x["image"].clone()).unwrap_or(Value::Null);
        json!({"name": c, "image": image, "imageID": "", "ready": ready, "started": true, "restartCount": 0, "state": {"running": {"startedAt": now}}})
    }).collect::<Vec<_>>())
}

fn set_ready(pod: &mut Value, ready: bool) {
    let s = if ready { "True" } else { "False" };
    let reason = if ready { "" } else { "ContainersNotReady" };
    super::set_condition(pod, "ContainersReady", s, reason, "");
    super::set_condition(pod, "Ready", s, reason, "");
    if let Some(list) = pod["status"]["containerStatuses"].as_array_mut() {
        for c in list {
            c["ready"] = json!(ready);
        }
    }
}

fn pod_ip(uid: &str) -> String {
    let h = uid
        .bytes()
        .fold(7u32, |a, b| a.wrapping_mul(31).wrapping_add(u32::from(b)));
    format!("10.244.{}.{}", (h >> 8) % 250, h % 250 + 2)
}

/// The timers the kubelet keeps per pod uid.
const TIMERS: [&str; 3] = ["bound", "running", "deleted"];

/// Looks at the queued pods: each one bound to a node moves on when its delay is over, or asks
/// to be looked at again when it will be.
pub(super) fn run(w: &mut World, keys: Vec<Key>) {
    let now_i = Instant::now();
    for key in keys {
        let Some(mut pod) = super::get_key(w, "", "pods", &key) else {
            continue;
        };
        if !pod["spec"]["nodeName"].is_string() {
            continue;
        }
        let uid = pod["metadata"]["uid"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let ns = pod["metadata"]["namespace"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let name = pod["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if pod["metadata"]["deletionTimestamp"].is_string() {
            let since = *w.timers.entry((uid.clone(), "deleted")).or_insert(now_i);
            let finalizers = pod["metadata"]["finalizers"]
                .as_array()
                .is_some_and(|f| !f.is_empty());
            if now_i.duration_since(since) >= w.delays.pod_stop && !finalizers {
                w.store.remove(&World::gr("", "pods"), &ns, &name);
                for t in TIMERS {
                    w.timers.remove(&(uid.clone(), t));
                }
            } else if !finalizers {
                let stop = w.delays.pod_stop;
                wake_kubelet(w, &key, since, stop);
            }
            continue;
        }
        let bound = *w.timers.entry((uid.clone(), "bound")).or_insert(now_i);
        let behaviour = w.behaviour(&name);
        let phase = pod["status"]["phase"]
            .as_str()
            .unwrap_or("Pending")
            .to_string();
        let now = now_rfc3339();
        let elapsed = now_i.duration_since(bound);
        match phase.as_str() {
            "Pending" if elapsed >= w.delays.pod_start => {
                pod["status"]["phase"] = json!("Running");
                pod["status"]["startTime"] = json!(now);
                pod["status"]["hostIP"] = json!("127.0.0.1");
                pod["status"]["podIP"] = json!(pod_ip(&uid));
                pod["status"]["podIPs"] = json!([{"ip": pod_ip(&uid)}]);
                pod["status"]["containerStatuses"] = container_statuses(&pod, false, &now);
                super::set_condition(&mut pod, "PodScheduled", "True", "", "");
                super::set_condition(&mut pod, "Initialized", "True", "", "");
                set_ready(&mut pod, behaviour == PodBehaviour::Normal);
                w.timers.insert((uid.clone(), "running"), now_i);
                super::put_status(w, "", "pods", pod);
            }
            "Pending" => {
                let start = w.delays.pod_start;
                wake_kubelet(w, &key, bound, start);
            }
            "Running" => {
                let running = *w.timers.entry((uid.clone(), "running")).or_insert(now_i);
                let ran = now_i.duration_since(running);
                if controller_kind(&pod) == Some("Job")
                    && ran >= w.delays.job_run
                    && behaviour != PodBehaviour::NeverReady
                {
                    let (phase, code, reason) = if behaviour == PodBehaviour::Fail {
                        ("Failed", 1, "Error")
                    } else {
                        ("Succeeded", 0, "Completed")
                    };
                    pod["status"]["phase"] = json!(phase);
                    let started_at = pod["status"]["startTime"].clone();
                    if let Some(list) = pod["status"]["containerStatuses"].as_array_mut() {
                        for c in list {
                            c["ready"] = json!(false);
                            c["started"] = json!(false);
                            c["state"] = json!({"terminated": {"exitCode": code, "reason": reason, "startedAt": started_at, "finishedAt": now}});
                        }
                    }
                    set_ready(&mut pod, false);
                    super::put_status(w, "", "pods", pod);
                    continue;
                }
                if controller_kind(&pod) == Some("Job") && behaviour != PodBehaviour::NeverReady {
                    let run = w.delays.job_run;
                    wake_kubelet(w, &key, running, run);
                }
                let want_ready = match behaviour {
                    PodBehaviour::Normal | PodBehaviour::Fail => true,
                    PodBehaviour::NeverReady => false,
                    PodBehaviour::SlowReady(d) => {
                        if ran < d {
                            wake_kubelet(w, &key, running, d);
                        }
                        ran >= d
                    }
                };
                if want_ready != is_ready(&pod) {
                    set_ready(&mut pod, want_ready);
                    super::put_status(w, "", "pods", pod);
                }
            }
            _ => {}
        }
    }
}
