//! Kubernetes `Status` error bodies with the API server's real codes, reasons and messages.

use serde_json::{Value, json};

/// An error the API answers with: rendered as a `kind: Status` body.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{code} {reason}: {message}")]
pub struct ApiError {
    /// HTTP status code.
    pub code: u16,
    /// Machine-readable reason (`NotFound`, `Conflict`, ...).
    pub reason: String,
    /// Human-readable message, worded like kube-apiserver's.
    pub message: String,
    /// `details` of the Status, if any.
    pub details: Option<Box<Value>>,
}

/// The resource an error is about, as `details` names it.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    /// API group ("" for core).
    pub group: &'a str,
    /// Plural resource name.
    pub resource: &'a str,
    /// Object name.
    pub name: &'a str,
}

impl Subject<'_> {
    /// `pods` or `deployments.apps`, as kube-apiserver names a group resource.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.resource.to_string()
        } else {
            format!("{}.{}", self.resource, self.group)
        }
    }

    fn details(&self) -> Value {
        let mut d = json!({"name": self.name, "kind": self.resource});
        if !self.group.is_empty() {
            d["group"] = json!(self.group);
        }
        d
    }
}

impl ApiError {
    /// A bare error with a code, reason and message.
    pub fn new(code: u16, reason: &str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            reason: reason.to_string(),
            message: message.into(),
            details: None,
        }
    }

    /// 404 `NotFound`: `pods "x" not found`.
    pub fn not_found(s: Subject<'_>) -> Self {
        ApiError {
            details: Some(Box::new(s.details())),
            ..Self::new(
                404,
                "NotFound",
                format!("{} \"{}\" not found", s.qualified(), s.name),
            )
        }
    }

    /// 409 `AlreadyExists`: `pods "x" already exists`.
    pub fn already_exists(s: Subject<'_>) -> Self {
        ApiError {
            details: Some(Box::new(s.details())),
            ..Self::new(
                409,
                "AlreadyExists",
                format!("{} \"{}\" already exists", s.qualified(), s.name),
            )
        }
    }

    /// 409 `Conflict` for a stale resourceVersion.
    pub fn conflict(s: Subject<'_>) -> Self {
        ApiError {
            details: Some(Box::new(s.details())),
            ..Self::new(
                409,
                "Conflict",
                format!(
                    "Operation cannot be fulfilled on {} \"{}\": the object has been modified; please apply your changes to the latest version and try again",
                    s.qualified(),
                    s.name
                ),
            )
        }
    }

    /// 422 `Invalid` with causes `(reason, field, message)`; `kind` is the object's Kind.
    pub fn invalid(group: &str, kind: &str, name: &str, causes: &[(&str, &str, &str)]) -> Self {
        let list: Vec<String> = causes.iter().map(|(_, f, m)| format!("{f}: {m}")).collect();
        let joined = if list.len() == 1 {
            list[0].clone()
        } else {
            format!("[{}]", list.join(", "))
        };
        let mut d = json!({"name": name, "kind": kind, "causes": causes.iter().map(|(r, f, m)| json!({"reason": r, "message": m, "field": f})).collect::<Vec<_>>()});
        if !group.is_empty() {
            d["group"] = json!(group);
        }
        ApiError {
            details: Some(Box::new(d)),
            ..Self::new(
                422,
                "Invalid",
                format!("{kind} \"{name}\" is invalid: {joined}"),
            )
        }
    }

    /// 400 `BadRequest`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    /// 405 `MethodNotAllowed`.
    pub fn method_not_allowed() -> Self {
        Self::new(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        )
    }

    /// 415 `UnsupportedMediaType` for a PATCH with an unknown content type.
    pub fn unsupported_patch(content_type: &str) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json; got {content_type:?}"
            ),
        )
    }

    /// 410 `Expired` for a watch from a compacted resourceVersion.
    pub fn expired(requested: u64, oldest: u64) -> Self {
        Self::new(
            410,
            "Expired",
            format!("too old resource version: {requested} ({oldest})"),
        )
    }

    /// 500 `InternalError`.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, "InternalError", message)
    }

    /// Adds `details` to the error.
    #[must_use]
    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(Box::new(details));
        self
    }

    /// The `Status` body.
    pub fn to_status(&self) -> Value {
        let mut s = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(d) = &self.details {
            s["details"] = (**d).clone();
        }
        s
    }
}

/// A `Status` of `Success`, as DELETE returns once an object is gone.
pub fn success(details: Value) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details})
}
