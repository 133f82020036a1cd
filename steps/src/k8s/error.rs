//! What can go wrong talking to a cluster, in words that name the object and quote the API.

use rok_plan_engine::step::StepError;

/// A Kubernetes step's error. Becomes the step's failure reason.
#[derive(Debug, thiserror::Error)]
pub(crate) enum KubeError {
    /// The kubeconfig could not be read or has no such context.
    #[error("cannot use the kubeconfig{}: {message}", context_note(.context))]
    Config {
        /// The context asked for ("" for the current one).
        context: String,
        /// Why.
        message: String,
    },
    /// The API answered with an error status.
    #[error("{what}: {message}{} ({code} {reason})", causes_note(.causes))]
    Api {
        /// The request, e.g. "GET statefulset rok/rok-operator".
        what: String,
        /// HTTP status code.
        code: u16,
        /// The Status reason, e.g. `NotFound`.
        reason: String,
        /// The Status message.
        message: String,
        /// The Status details' causes, as `field: message`.
        causes: Vec<String>,
    },
    /// The request did not get an answer (connection, TLS, decoding).
    #[error("{what}: {source}")]
    Client {
        /// The request.
        what: String,
        /// The client's error.
        #[source]
        source: kube::Error,
    },
    /// The cluster serves no such kind.
    #[error("the cluster serves no resource type `{0}` (kubectl api-resources lists them)")]
    UnknownKind(String),
    /// A field has a value the step cannot use.
    #[error("field `{field}`: {message}")]
    Field {
        /// The field.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// A manifest could not be read or parsed.
    #[error("{0}")]
    Manifest(String),
    /// The attempt was cancelled (timeout, interrupt).
    #[error("cancelled{}", if .0.is_empty() { String::new() } else { format!(": {}", .0) })]
    Cancelled(String),
}

fn causes_note(causes: &[String]) -> String {
    // The message usually repeats a single cause already.
    if causes.is_empty() {
        String::new()
    } else {
        format!(" [{}]", causes.join("; "))
    }
}

fn context_note(context: &str) -> String {
    if context.is_empty() {
        String::new()
    } else {
        format!(" (context `{context}`)")
    }
}

impl KubeError {
    /// An error of the request `what`.
    pub(crate) fn from_kube(what: impl Into<String>, e: kube::Error) -> Self {
        match e {
            kube::Error::Api(s) => KubeError::Api {
                what: what.into(),
                code: s.code,
                reason: s.reason.clone(),
                message: s.message.clone(),
                causes: s
                    .details
                    .iter()
                    .flat_map(|d| d.causes.iter())
                    .map(|c| {
                        if c.field.is_empty() {
                            c.message.clone()
                        } else {
                            format!("{}: {}", c.field, c.message)
                        }
                    })
                    .filter(|c| !c.is_empty())
                    .collect(),
            },
            source => KubeError::Client {
                what: what.into(),
                source,
            },
        }
    }

    /// A field error.
    pub(crate) fn field(field: &'static str, message: impl Into<String>) -> Self {
        KubeError::Field {
            field,
            message: message.into(),
        }
    }
}

impl From<KubeError> for StepError {
    fn from(e: KubeError) -> Self {
        match e {
            KubeError::Field { field, message } => StepError::InvalidField {
                field: field.into(),
                message,
            },
            other => StepError::Other(other.to_string()),
        }
    }
}
