//! `KIND/NAME` as plans write it (`statefulset/rok-operator`, `sts/x`, `rokcluster/rok`,
//! `customresourcedefinition/rokclusters.crd.arrikto.com`, `deployments.apps/web`) turned
//! into an API resource by discovery, and the `Api` handle for it.

use kube::Api;
use kube::api::DynamicObject;
use kube::discovery::{ApiCapabilities, ApiResource, Scope};
use rok_plan_engine::step::{Fields, StepContext};

use super::client::Conn;
use super::error::KubeError;
use super::opt_text;

/// kubectl's short names of the built-in kinds (discovery as kube reads it drops them).
const SHORT_NAMES: &[(&str, &str)] = &[
    ("po", "pods"),
    ("no", "nodes"),
    ("ns", "namespaces"),
    ("svc", "services"),
    ("cm", "configmaps"),
    ("sa", "serviceaccounts"),
    ("pv", "persistentvolumes"),
    ("pvc", "persistentvolumeclaims"),
    ("ep", "endpoints"),
    ("rc", "replicationcontrollers"),
    ("ds", "daemonsets"),
    ("deploy", "deployments"),
    ("rs", "replicasets"),
    ("sts", "statefulsets"),
    ("cj", "cronjobs"),
    ("crd", "customresourcedefinitions"),
    ("crds", "customresourcedefinitions"),
    ("pdb", "poddisruptionbudgets"),
    ("ing", "ingresses"),
];

/// A resource type the cluster serves.
#[derive(Clone, Debug)]
pub(crate) struct Kind {
    /// Group, version, kind, plural.
    pub(crate) ar: ApiResource,
    /// Namespaced or cluster-scoped, subresources.
    pub(crate) caps: ApiCapabilities,
}

impl Kind {
    /// Objects live in namespaces.
    pub(crate) fn namespaced(&self) -> bool {
        matches!(self.caps.scope, Scope::Namespaced)
    }

    /// The kind with a subresource (`scale`, `status`).
    pub(crate) fn has_subresource(&self, name: &str) -> bool {
        self.caps
            .subresources
            .iter()
            .any(|(ar, _)| ar.plural == name)
    }

    /// The `Api` for objects of this kind in `namespace` (ignored for cluster-scoped kinds;
    /// `None` means every namespace).
    pub(crate) fn api(&self, conn: &Conn, namespace: Option<&str>) -> Api<DynamicObject> {
        match (self.namespaced(), namespace) {
            (true, Some(ns)) => Api::namespaced_with(conn.client.clone(), ns, &self.ar),
            _ => Api::all_with(conn.client.clone(), &self.ar),
        }
    }

    /// `statefulset rok/rok-operator`, for messages.
    pub(crate) fn object_name(&self, namespace: Option<&str>, name: &str) -> String {
        match (self.namespaced(), namespace) {
            (true, Some(ns)) => format!("{} {ns}/{name}", self.ar.kind),
            _ => format!("{} {name}", self.ar.kind),
        }
    }
}

/// A step's `resource` (+ `namespace`, `selector`) resolved.
#[derive(Clone, Debug)]
pub(crate) struct Target {
    /// The kind.
    pub(crate) kind: Kind,
    /// The object's name, when the step names one.
    pub(crate) name: Option<String>,
    /// The namespace (for namespaced kinds).
    pub(crate) namespace: Option<String>,
    /// The label selector, when the step has one.
    pub(crate) selector: Option<String>,
}

impl Target {
    /// Resolves the step's `resource` field, which must name an object unless `selector`
    /// may stand in for the name.
    ///
    /// # Errors
    /// Malformed fields, unknown kinds, API errors of discovery.
    pub(crate) async fn from_fields(
        ctx: &StepContext,
        conn: &Conn,
        f: &Fields,
        name_required: bool,
    ) -> Result<Target, KubeError> {
        let text = opt_text(f, "resource")
            .ok_or_else(|| KubeError::field("resource", "is empty: give KIND/NAME"))?;
        let (kind_text, name) = match text.split_once('/') {
            Some((k, n)) if !n.is_empty() && !n.contains('/') => (k, Some(n.to_string())),
            Some(_) => {
                return Err(KubeError::field(
                    "resource",
                    format!("`{text}` is not KIND/NAME"),
                ));
            }
            None => (text, None),
        };
        let selector = opt_text(f, "selector").map(str::to_string);
        if name.is_none() && (name_required || selector.is_none()) {
            return Err(KubeError::field(
                "resource",
                format!(
                    "`{text}` names no object: write KIND/NAME{}",
                    if name_required {
                        ""
                    } else {
                        ", or add `selector`"
                    }
                ),
            ));
        }
        let kind = resolve_kind(ctx, conn, kind_text).await?;
        let namespace = kind.namespaced().then(|| {
            opt_text(f, "namespace")
                .unwrap_or(&conn.namespace)
                .to_string()
        });
        Ok(Target {
            kind,
            name,
            namespace,
            selector,
        })
    }

    /// The `Api` for the target's namespace.
    pub(crate) fn api(&self, conn: &Conn) -> Api<DynamicObject> {
        self.kind.api(conn, self.namespace.as_deref())
    }

    /// `statefulset rok/rok-operator`, or `pods in rok selected by app=x`.
    pub(crate) fn describe(&self) -> String {
        match (&self.name, &self.selector) {
            (Some(n), _) => self.kind.object_name(self.namespace.as_deref(), n),
            (None, Some(sel)) => {
                let ns = self
                    .namespace
                    .as_ref()
                    .map(|n| format!(" in {n}"))
                    .unwrap_or_default();
                format!("{}{ns} selected by {sel}", self.kind.ar.plural)
            }
            (None, None) => self.kind.ar.plural.clone(),
        }
    }
}

/// Finds the resource type a plan names: kind, plural or short name, optionally
/// `.group`-qualified, case-insensitively. Core and older groups win ties, as with kubectl.
///
/// # Errors
/// [`KubeError::UnknownKind`], or discovery's API error.
pub(crate) async fn resolve_kind(
    ctx: &StepContext,
    conn: &Conn,
    text: &str,
) -> Result<Kind, KubeError> {
    let wanted = text.trim().to_ascii_lowercase();
    for refresh in [false, true] {
        let discovery = conn.discovery(ctx, refresh).await?;
        for group in discovery.groups() {
            for (ar, caps) in group.recommended_resources() {
                if matches_name(&wanted, &ar) {
                    return Ok(Kind { ar, caps });
                }
            }
        }
    }
    Err(KubeError::UnknownKind(text.to_string()))
}

fn matches_name(wanted: &str, ar: &ApiResource) -> bool {
    let (name, group) = match wanted.split_once('.') {
        Some((n, g)) => (n, Some(g)),
        None => (wanted, None),
    };
    if group.is_some_and(|g| g != ar.group) {
        return false;
    }
    let plural = SHORT_NAMES
        .iter()
        .find(|(short, _)| *short == name)
        .map_or(name, |(_, plural)| *plural);
    ar.kind.eq_ignore_ascii_case(name) || ar.plural == plural
}

/// The name of an object.
pub(crate) fn name_of(o: &DynamicObject) -> String {
    o.metadata.name.clone().unwrap_or_default()
}
