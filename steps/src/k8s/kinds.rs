//! The schemas and descriptions of the Kubernetes step types.

use indexmap::IndexMap;
use rok_plan_engine::plan::{FieldValue, FieldValueKind};
use rok_plan_engine::step::{
    FieldKind, FieldSpec, Fields, StepContext, StepError, StepOutcome, StepSchema, StepType,
};
use serde_json::{Map, Value};

use super::error::KubeError;
use super::{
    CONTEXT, Kube, NAMESPACE, SELECTOR, apply, cordon, delete, drain, get, kubectl, logs_quiet,
    patch, restart, scale, scope, wait,
};
use crate::{shown, text};

macro_rules! step_type {
    ($ty:ident, $schema:ident, $run:path, |$f:ident| $describe:expr) => {
        step_type!($ty, $schema, $run, |$f| $describe, |_fields| Vec::new());
    };
    ($ty:ident, $schema:ident, $run:path, |$f:ident| $describe:expr, |$fields:ident| $outputs:expr) => {
        #[doc = concat!("The `", stringify!($ty), "` step type; see its schema for the fields.")]
        #[derive(Debug, Clone)]
        pub struct $ty {
            kube: Kube,
        }

        impl $ty {
            /// The step type, sharing the run's Kubernetes connections.
            pub(crate) fn new(kube: Kube) -> Self {
                Self { kube }
            }
        }

        #[async_trait::async_trait]
        impl StepType for $ty {
            fn schema(&self) -> &StepSchema {
                &$schema
            }
            async fn run(
                &self,
                ctx: &StepContext,
                fields: &Fields,
            ) -> Result<StepOutcome, StepError> {
                finish(ctx, $run(&self.kube, ctx, fields).await)
            }
            fn describe(&self, $f: &Map<String, Value>) -> String {
                $describe
            }
            fn declared_outputs(&self, $fields: &IndexMap<String, FieldValue>) -> Vec<String> {
                $outputs
            }
        }
    };
}

/// A step's result: its outcome, or its error as a failure (redacted); only a field the
/// type cannot use is an error of the step itself.
fn finish(
    ctx: &StepContext,
    result: Result<StepOutcome, KubeError>,
) -> Result<StepOutcome, StepError> {
    match result {
        Ok(outcome) => Ok(outcome),
        Err(e @ KubeError::Field { .. }) => Err(e.into()),
        Err(e) => Ok(StepOutcome::failed(
            ctx.output().redactor().redact(&e.to_string()),
        )),
    }
}

const KUBECTL: StepSchema = StepSchema {
    name: "kubectl",
    doc: "Runs kubectl with `args`: the escape hatch for what the native steps do not cover.",
    fields: &[
        FieldSpec::required(
            "args",
            FieldKind::TextList,
            "kubectl's arguments, each one word.",
        ),
        CONTEXT,
    ],
    exactly_one_of: &[],
    idempotent: false,
};
step_type!(Kubectl, KUBECTL, kubectl::run, |f| {
    let args: Vec<String> = f
        .get("args")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|w| w.as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default();
    let ctx = shown(f, "context")
        .map(|c| format!("--context {c} "))
        .unwrap_or_default();
    format!("$ kubectl {ctx}{}", args.join(" "))
});

const APPLY: StepSchema = StepSchema {
    name: "kube.apply",
    doc: "Server-side applies manifests (files, inline YAML or a kustomize directory).",
    fields: &[
        FieldSpec::optional(
            "files",
            FieldKind::TextList,
            "Manifest files (YAML, several documents allowed).",
        ),
        FieldSpec::optional("manifest", FieldKind::Text, "Inline YAML manifests."),
        FieldSpec::optional(
            "kustomize",
            FieldKind::Text,
            "A kustomize directory, rendered offline.",
        ),
        NAMESPACE,
        FieldSpec::optional(
            "field_manager",
            FieldKind::Text,
            "The server-side apply field manager (default \"rok-plan\").",
        ),
        FieldSpec::optional(
            "recreate_on_immutable",
            FieldKind::Bool,
            "Delete and re-create an object whose spec change is forbidden (e.g. a StatefulSet's selector).",
        ),
        FieldSpec::optional(
            "force",
            FieldKind::Bool,
            "Take ownership of fields another manager owns (default false: report the conflict).",
        ),
        CONTEXT,
    ],
    exactly_one_of: &["files", "manifest", "kustomize"],
    idempotent: true,
};
step_type!(KubeApply, APPLY, apply::run, |f| {
    let what = if let Some(k) = shown(f, "kustomize") {
        format!("kustomize directory {k}")
    } else if let Some(files) = f.get("files").and_then(Value::as_array) {
        files
            .iter()
            .map(|v| v.as_str().unwrap_or("").to_string())
            .collect::<Vec<_>>()
            .join(", ")
    } else {
        "the inline manifest".to_string()
    };
    let manager = shown(f, "field_manager").unwrap_or_else(|| "rok-plan".into());
    let mut line = format!(
        "server-side apply {what} as field manager {manager}{}",
        scope(f)
    );
    if f.get("recreate_on_immutable").and_then(Value::as_bool) == Some(true) {
        line.push_str("; re-create objects whose immutable fields changed");
    }
    line
});

const SCALE: StepSchema = StepSchema {
    name: "kube.scale",
    doc: "Sets the replicas of a StatefulSet, Deployment or ReplicationController and waits until observed.",
    fields: &[
        FieldSpec::required(
            "resource",
            FieldKind::Text,
            "\"statefulset/NAME\", \"deployment/NAME\" or \"replicationcontroller/NAME\".",
        ),
        NAMESPACE,
        FieldSpec::required(
            "replicas",
            FieldKind::Integer,
            "The replica count (an integer or a template giving one).",
        ),
        FieldSpec::optional(
            "wait",
            FieldKind::Bool,
            "Wait until the observed replicas match (default true).",
        ),
        CONTEXT,
    ],
    exactly_one_of: &[],
    idempotent: true,
};
step_type!(KubeScale, SCALE, scale::run, |f| {
    let wait = if f.get("wait").and_then(Value::as_bool) == Some(false) {
        ""
    } else {
        ", then wait until observed"
    };
    format!(
        "PATCH {}/scale replicas={}{}{wait}",
        text(f, "resource"),
        shown(f, "replicas").unwrap_or_default(),
        scope(f)
    )
});

const WAIT: StepSchema = StepSchema {
    name: "kube.wait",
    doc: "Watches objects until a condition holds, fields have values, or they are gone.",
    fields: &[
        FieldSpec::required(
            "resource",
            FieldKind::Text,
            "\"KIND/NAME\", or \"KIND\" with `selector`.",
        ),
        NAMESPACE,
        SELECTOR,
        FieldSpec::optional(
            "condition",
            FieldKind::Text,
            "A status condition that must be True, e.g. \"Ready\" or \"Complete\".",
        ),
        FieldSpec::optional(
            "fields",
            FieldKind::TextMap,
            "Field paths and the values they must have, e.g. { \".status.phase\" = \"Running\" }.",
        ),
        FieldSpec::optional(
            "gone",
            FieldKind::Bool,
            "Wait until the objects no longer exist.",
        ),
        CONTEXT,
    ],
    exactly_one_of: &["condition", "fields", "gone"],
    idempotent: true,
};
step_type!(KubeWait, WAIT, wait::run, |f| {
    let target = match shown(f, "selector") {
        Some(sel) => format!("{} selected by {sel}", text(f, "resource")),
        None => text(f, "resource").to_string(),
    };
    let until = if let Some(c) = shown(f, "condition") {
        format!("condition {c} is True")
    } else if let Some(Value::Object(m)) = f.get("fields") {
        m.iter()
            .map(|(k, v)| format!("{k} = {}", v.as_str().unwrap_or("")))
            .collect::<Vec<_>>()
            .join(" and ")
    } else {
        "it is gone".to_string()
    };
    format!("watch {target}{} until {until}", scope(f))
});

const DELETE: StepSchema = StepSchema {
    name: "kube.delete",
    doc: "Deletes objects and waits until they are gone.",
    fields: &[
        FieldSpec::required(
            "resource",
            FieldKind::Text,
            "\"KIND/NAME\", or \"KIND\" with `selector`.",
        ),
        NAMESPACE,
        SELECTOR,
        CONTEXT,
    ],
    exactly_one_of: &[],
    idempotent: true,
};
step_type!(KubeDelete, DELETE, delete::run, |f| {
    let sel = shown(f, "selector")
        .map(|s| format!(" selected by {s}"))
        .unwrap_or_default();
    format!(
        "DELETE {}{sel}{}, then wait until gone",
        text(f, "resource"),
        scope(f)
    )
});

const LOGS_QUIET: StepSchema = StepSchema {
    name: "kube.logs_quiet",
    doc: "Follows the logs of every selected pod until none has logged for `quiet_for`.",
    fields: &[
        NAMESPACE,
        FieldSpec::required(
            "selector",
            FieldKind::Text,
            "Label selector of the pods, e.g. \"app=rok-csi-node\".",
        ),
        FieldSpec::optional(
            "container",
            FieldKind::Text,
            "The container whose logs to follow.",
        ),
        FieldSpec::required(
            "quiet_for",
            FieldKind::Duration,
            "How long every pod must stay silent, e.g. \"30s\".",
        ),
        CONTEXT,
    ],
    exactly_one_of: &[],
    idempotent: true,
};
step_type!(KubeLogsQuiet, LOGS_QUIET, logs_quiet::run, |f| {
    let c = shown(f, "container")
        .map(|c| format!(" container {c}"))
        .unwrap_or_default();
    format!(
        "follow logs of pods {}{c}{} until all are quiet for {}",
        text(f, "selector"),
        scope(f),
        text(f, "quiet_for")
    )
});

const CORDON: StepSchema = StepSchema {
    name: "kube.cordon",
    doc: "Marks a node unschedulable, recording whether it already was.",
    fields: &[
        FieldSpec::required("node", FieldKind::Text, "The node's name."),
        CONTEXT,
    ],
    exactly_one_of: &[],
    idempotent: true,
};
step_type!(KubeCordon, CORDON, cordon::run_cordon, |f| format!(
    "cordon node {}{}",
    text(f, "node"),
    scope(f)
));

const UNCORDON: StepSchema = StepSchema {
    name: "kube.uncordon",
    doc: "Marks a node schedulable again, unless someone else cordoned it.",
    fields: &[
        FieldSpec::required("node", FieldKind::Text, "The node's name."),
        FieldSpec::optional(
            "force",
            FieldKind::Bool,
            "Uncordon even a node this run did not cordon.",
        ),
        CONTEXT,
    ],
    exactly_one_of: &[],
    idempotent: true,
};
step_type!(KubeUncordon, UNCORDON, cordon::run_uncordon, |f| {
    let force = if f.get("force").and_then(Value::as_bool) == Some(true) {
        " (forced)"
    } else {
        " (only if this run cordoned it)"
    };
    format!("uncordon node {}{force}{}", text(f, "node"), scope(f))
});

const DRAIN: StepSchema = StepSchema {
    name: "kube.drain",
    doc: "Pre-flights, cordons and drains a node through the eviction API, honouring PodDisruptionBudgets.",
    fields: &[
        FieldSpec::required("node", FieldKind::Text, "The node's name."),
        FieldSpec::optional(
            "grace_period",
            FieldKind::Duration,
            "Termination grace period given to evicted pods.",
        ),
        FieldSpec::optional(
            "allow_unmanaged",
            FieldKind::Bool,
            "Evict pods that no controller will re-create (they are lost).",
        ),
        FieldSpec::optional(
            "allow_emptydir_loss",
            FieldKind::Bool,
            "Evict pods whose emptyDir data will be erased.",
        ),
        FieldSpec::optional(
            "wait_for_budgets",
            FieldKind::Bool,
            "Pods whose PodDisruptionBudget allows no disruption now do not stop the pre-flight: their evictions are retried until the step's timeout.",
        ),
        CONTEXT,
    ],
    exactly_one_of: &[],
    idempotent: true,
};
step_type!(KubeDrain, DRAIN, drain::run, |f| {
    let mut allow = Vec::new();
    if f.get("allow_unmanaged").and_then(Value::as_bool) == Some(true) {
        allow.push("unmanaged pods");
    }
    if f.get("allow_emptydir_loss").and_then(Value::as_bool) == Some(true) {
        allow.push("emptyDir data loss");
    }
    let allowed = if allow.is_empty() {
        String::new()
    } else {
        format!(" (allowing {})", allow.join(" and "))
    };
    format!(
        "pre-flight, cordon and drain node {} by eviction{allowed}{}",
        text(f, "node"),
        scope(f)
    )
});

const RESTART: StepSchema = StepSchema {
    name: "kube.restart",
    doc: "Replaces the pods of a workload: rollout restart, scale to zero and back, or delete and re-create bare pods.",
    fields: &[
        FieldSpec::required(
            "resource",
            FieldKind::Text,
            "\"KIND/NAME\" (or \"pod\" with `selector` for bare pods).",
        ),
        NAMESPACE,
        SELECTOR,
        FieldSpec::optional(
            "strategy",
            FieldKind::Choice(&["rollout", "scale-bounce", "replace"]),
            "\"rollout\" (default; Deployment, StatefulSet, DaemonSet, ReplicationController by copy-and-roll), \"scale-bounce\", \"replace\" (bare pods).",
        ),
        CONTEXT,
    ],
    exactly_one_of: &[],
    idempotent: false,
};
step_type!(KubeRestart, RESTART, restart::run, |f| {
    let how = match text(f, "strategy") {
        "scale-bounce" => "scale to 0 and back to its replicas",
        "replace" => "delete and re-create from its own spec",
        _ => "rollout restart",
    };
    let sel = shown(f, "selector")
        .map(|s| format!(" selected by {s}"))
        .unwrap_or_default();
    format!("{how}: {}{sel}{}", text(f, "resource"), scope(f))
});

const GET: StepSchema = StepSchema {
    name: "kube.get",
    doc: "Reads an object; each of `fields` becomes an output.",
    fields: &[
        FieldSpec::required("resource", FieldKind::Text, "\"KIND/NAME\"."),
        NAMESPACE,
        FieldSpec::optional(
            "fields",
            FieldKind::TextMap,
            "Outputs and the field paths they read, e.g. { version = \".status.version\" }.",
        ),
        FieldSpec::optional(
            "optional",
            FieldKind::Bool,
            "A missing object is not a failure (its outputs are empty).",
        ),
        CONTEXT,
    ],
    exactly_one_of: &[],
    idempotent: true,
};
step_type!(
    KubeGet,
    GET,
    get::run,
    |f| {
        let fields = match f.get("fields") {
            Some(Value::Object(m)) => format!(
                ", reading {}",
                m.iter()
                    .map(|(k, v)| format!("{k} = {}", v.as_str().unwrap_or("")))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            _ => String::new(),
        };
        format!("GET {}{}{fields}", text(f, "resource"), scope(f))
    },
    |fields| match fields.get("fields").map(|v| &v.kind) {
        // Each key of `fields` is an output of the step.
        Some(FieldValueKind::Table(t)) => t.keys().cloned().collect(),
        _ => Vec::new(),
    }
);

const PATCH: StepSchema = StepSchema {
    name: "kube.patch",
    doc: "Patches an object with a JSON merge patch or RFC 6902 operations.",
    fields: &[
        FieldSpec::required("resource", FieldKind::Text, "\"KIND/NAME\"."),
        NAMESPACE,
        FieldSpec::optional(
            "merge",
            FieldKind::Any,
            "A JSON merge patch (an inline table, or YAML/JSON text).",
        ),
        FieldSpec::optional(
            "json",
            FieldKind::Any,
            "RFC 6902 operations: [{ op, path, value }].",
        ),
        CONTEXT,
    ],
    exactly_one_of: &["merge", "json"],
    idempotent: false,
};
step_type!(KubePatch, PATCH, patch::run, |f| {
    let (kind, body) = match (f.get("merge"), f.get("json")) {
        (Some(m), _) => ("merge patch", m),
        (_, Some(j)) => ("JSON patch", j),
        _ => ("patch", &Value::Null),
    };
    let body = match body {
        Value::String(s) => s.trim().to_string(),
        other => other.to_string(),
    };
    format!("PATCH {}{} ({kind}) {body}", text(f, "resource"), scope(f))
});
