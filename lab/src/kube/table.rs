//! Server-side printing: the `meta.k8s.io/v1` `Table` kubectl asks for, with the columns
//! kube-apiserver's printers give the kinds the lab serves (and CRD printer columns).

use serde_json::{Value, json};

use super::kinds::ResourceType;
use super::pod::is_ready;

/// kubectl's human-readable duration (`HumanDuration` in apimachinery).
pub fn human_duration(secs: i64) -> String {
    let s = secs.max(0);
    let (m, h, d) = (s / 60, s / 3600, s / 86400);
    if s < 120 {
        format!("{s}s")
    } else if m < 10 {
        if s % 60 == 0 {
            format!("{m}m")
        } else {
            format!("{m}m{}s", s % 60)
        }
    } else if m < 180 {
        format!("{m}m")
    } else if h < 8 {
        if m % 60 == 0 {
            format!("{h}h")
        } else {
            format!("{h}h{}m", m % 60)
        }
    } else if h < 48 {
        format!("{h}h")
    } else if h < 192 {
        if h % 24 == 0 {
            format!("{d}d")
        } else {
            format!("{d}d{}h", h % 24)
        }
    } else {
        format!("{d}d")
    }
}

fn age(ts: &Value) -> String {
    match ts.as_str().and_then(|t| t.parse::<jiff::Timestamp>().ok()) {
        Some(t) => human_duration((jiff::Timestamp::now() - t).get_seconds()),
        None => "<unknown>".into(),
    }
}

fn n(v: &Value) -> i64 {
    v.as_i64().unwrap_or(0)
}

fn path<'a>(obj: &'a Value, json_path: &str) -> &'a Value {
    json_path
        .trim_start_matches('.')
        .split('.')
        .filter(|s| !s.is_empty())
        .fold(obj, |cur, seg| &cur[seg])
}

fn cell(v: &Value, ty: &str) -> Value {
    match (v, ty) {
        (Value::Null, _) => json!(null),
        (Value::String(_), "date") => json!(age(v)),
        _ => v.clone(),
    }
}

type Row = Vec<Value>;

fn columns_and_row(rt: &ResourceType, o: &Value) -> (Vec<(&'static str, &'static str)>, Row) {
    let s = &o["status"];
    let sp = &o["spec"];
    let name = o["metadata"]["name"].clone();
    let a = json!(age(&o["metadata"]["creationTimestamp"]));
    match (rt.group.as_str(), rt.kind.as_str()) {
        ("", "Pod") => {
            let total = sp["containers"].as_array().map_or(0, Vec::len);
            let ready = s["containerStatuses"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|c| c["ready"] == true)
                .count();
            let restarts: i64 = s["containerStatuses"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|c| n(&c["restartCount"]))
                .sum();
            let mut status = s["phase"].as_str().unwrap_or("Pending").to_string();
            if let Some(w) = s["containerStatuses"]
                .as_array()
                .into_iter()
                .flatten()
                .find_map(|c| c["state"]["waiting"]["reason"].as_str())
            {
                status = w.to_string();
            }
            if o["metadata"]["deletionTimestamp"].is_string() {
                status = "Terminating".into();
            }
            (
                vec![
                    ("Name", "string"),
                    ("Ready", "string"),
                    ("Status", "string"),
                    ("Restarts", "string"),
                    ("Age", "string"),
                    ("IP", "string"),
                    ("Node", "string"),
                ],
                vec![
                    name,
                    json!(format!("{ready}/{total}")),
                    json!(status),
                    json!(restarts.to_string()),
                    a,
                    json!(s["podIP"].as_str().unwrap_or("<none>")),
                    json!(sp["nodeName"].as_str().unwrap_or("<none>")),
                ],
            )
        }
        ("", "Node") => {
            let mut status = if is_ready(o) {
                "Ready".to_string()
            } else {
                "NotReady".to_string()
            };
            if sp["unschedulable"] == true {
                status.push_str(",SchedulingDisabled");
            }
            (
                vec![
                    ("Name", "string"),
                    ("Status", "string"),
                    ("Roles", "string"),
                    ("Age", "string"),
                    ("Version", "string"),
                ],
                vec![
                    name,
                    json!(status),
                    json!("<none>"),
                    a,
                    json!(s["nodeInfo"]["kubeletVersion"].as_str().unwrap_or("")),
                ],
            )
        }
        ("", "Namespace") => (
            vec![("Name", "string"), ("Status", "string"), ("Age", "string")],
            vec![name, json!(s["phase"].as_str().unwrap_or("Active")), a],
        ),
        ("apps", "Deployment") => (
            vec![
                ("Name", "string"),
                ("Ready", "string"),
                ("Up-to-date", "string"),
                ("Available", "string"),
                ("Age", "string"),
            ],
            vec![
                name,
                json!(format!("{}/{}", n(&s["readyReplicas"]), n(&sp["replicas"]))),
                json!(n(&s["updatedReplicas"])),
                json!(n(&s["availableReplicas"])),
                a,
            ],
        ),
        ("apps", "StatefulSet") => (
            vec![("Name", "string"), ("Ready", "string"), ("Age", "string")],
            vec![
                name,
                json!(format!("{}/{}", n(&s["readyReplicas"]), n(&sp["replicas"]))),
                a,
            ],
        ),
        ("apps", "ReplicaSet") | ("", "ReplicationController") => (
            vec![
                ("Name", "string"),
                ("Desired", "integer"),
                ("Current", "integer"),
                ("Ready", "integer"),
                ("Age", "string"),
            ],
            vec![
                name,
                json!(n(&sp["replicas"])),
                json!(n(&s["replicas"])),
                json!(n(&s["readyReplicas"])),
                a,
            ],
        ),
        ("apps", "DaemonSet") => (
            vec![
                ("Name", "string"),
                ("Desired", "integer"),
                ("Current", "integer"),
                ("Ready", "integer"),
                ("Up-to-date", "integer"),
                ("Available", "integer"),
                ("Age", "string"),
            ],
            vec![
                name,
                json!(n(&s["desiredNumberScheduled"])),
                json!(n(&s["currentNumberScheduled"])),
                json!(n(&s["numberReady"])),
                json!(n(&s["updatedNumberScheduled"])),
                json!(n(&s["numberAvailable"])),
                a,
            ],
        ),
        ("batch", "Job") => {
            let cond = s["conditions"].as_array().into_iter().flatten().find(|c| {
                c["status"] == "True" && (c["type"] == "Complete" || c["type"] == "Failed")
            });
            let status = cond.and_then(|c| c["type"].as_str()).unwrap_or("Running");
            (
                vec![
                    ("Name", "string"),
                    ("Status", "string"),
                    ("Completions", "string"),
                    ("Age", "string"),
                ],
                vec![
                    name,
                    json!(status),
                    json!(format!("{}/{}", n(&s["succeeded"]), n(&sp["completions"]))),
                    a,
                ],
            )
        }
        ("policy", "PodDisruptionBudget") => (
            vec![
                ("Name", "string"),
                ("Min Available", "string"),
                ("Max Unavailable", "string"),
                ("Allowed Disruptions", "integer"),
                ("Age", "string"),
            ],
            vec![
                name,
                json!(
                    sp["minAvailable"]
                        .as_i64()
                        .map(|v| v.to_string())
                        .or_else(|| sp["minAvailable"].as_str().map(str::to_string))
                        .unwrap_or_else(|| "N/A".into())
                ),
                json!(
                    sp["maxUnavailable"]
                        .as_i64()
                        .map(|v| v.to_string())
                        .or_else(|| sp["maxUnavailable"].as_str().map(str::to_string))
                        .unwrap_or_else(|| "N/A".into())
                ),
                json!(n(&s["disruptionsAllowed"])),
                a,
            ],
        ),
        _ => (vec![("Name", "string"), ("Age", "string")], vec![name, a]),
    }
}

/// The Table of a list (`items`).
pub fn table(rt: &ResourceType, list: &Value) -> Value {
    let items = list["items"].as_array().cloned().unwrap_or_default();
    let (defs, rows): (Vec<Value>, Vec<Value>) = if rt.crd.is_some() && !rt.columns.is_empty() {
        let mut defs = vec![
            json!({"name": "Name", "type": "string", "format": "name", "description": "", "priority": 0}),
        ];
        for c in &rt.columns {
            defs.push(json!({"name": c["name"], "type": c["type"], "format": "", "description": c["description"].as_str().unwrap_or(""), "priority": c["priority"].as_i64().unwrap_or(0)}));
        }
        let rows = items
            .iter()
            .map(|o| {
                let mut cells = vec![o["metadata"]["name"].clone()];
                for c in &rt.columns {
                    cells.push(cell(
                        path(o, c["jsonPath"].as_str().unwrap_or_default()),
                        c["type"].as_str().unwrap_or_default(),
                    ));
                }
                json!({"cells": cells, "object": o})
            })
            .collect();
        (defs, rows)
    } else {
        let probe = items
            .first()
            .cloned()
            .unwrap_or_else(|| json!({"metadata": {}}));
        let (cols, _) = columns_and_row(rt, &probe);
        let defs = cols
            .iter()
            .enumerate()
            .map(|(i, (nm, ty))| {
                let priority = if rt.kind == "Pod" && i >= 5 { 1 } else { 0 };
                json!({"name": nm, "type": ty, "format": if i == 0 { "name" } else { "" }, "description": "", "priority": priority})
            })
            .collect();
        let rows = items
            .iter()
            .map(|o| json!({"cells": columns_and_row(rt, o).1, "object": o}))
            .collect();
        (defs, rows)
    };
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": list["metadata"]["resourceVersion"], "continue": list["metadata"]["continue"]}, "columnDefinitions": defs, "rows": rows})
}
