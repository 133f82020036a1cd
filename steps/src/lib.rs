//! rok-plan's built-in step types. [`builtin`] lists every one of them, once.
//!
//! Each type declares its fields in a [`StepSchema`] (validated by the engine, exported
//! as JSON Schema) and says in one line what an instance does (`rok-plan plan`).

mod file_edit;
mod git_rebase;
mod k8s;
mod local;
mod ssh;

use rok_plan_engine::step::StepRegistry;

pub use file_edit::FileEdit;
pub use git_rebase::GitRebase;
pub use k8s::{
    KubeApply, KubeCordon, KubeDelete, KubeDrain, KubeGet, KubeLogsQuiet, KubeOptions, KubePatch,
    KubeRestart, KubeScale, KubeUncordon, KubeWait, Kubectl,
};
pub use local::{Manual, Noop, Shell, Sleep};
pub use ssh::{HostKeyChecking, Ssh, SshOptions};

/// How the built-in step types reach the outside world during a run: ssh and Kubernetes
/// settings that are the operator's (command-line flags), not the plan's.
#[derive(Clone, Debug, Default)]
pub struct StepOptions {
    /// ssh: config file, host key policy, sessions per host.
    pub ssh: SshOptions,
    /// Kubernetes: kubeconfig, server-side dry run.
    pub kube: KubeOptions,
}

/// Every built-in step type, with default options (`~/.ssh/config`, strict host keys,
/// `$KUBECONFIG`).
pub fn builtin() -> StepRegistry {
    builtin_with(&StepOptions::default())
}

/// Every built-in step type, with `options`.
pub fn builtin_with(options: &StepOptions) -> StepRegistry {
    let ssh = Ssh::new(options.ssh.clone());
    // One set of cluster connections for every Kubernetes step type of the run.
    let kube = k8s::Kube::new(options.kube.clone());
    let mut r = StepRegistry::new();
    r.register(Noop)
        .register(Sleep)
        .register(Shell)
        .register(Manual)
        .register(ssh.clone())
        .register(FileEdit::with_ssh(ssh))
        .register(GitRebase)
        .register(Kubectl::new(kube.clone()))
        .register(KubeApply::new(kube.clone()))
        .register(KubeScale::new(kube.clone()))
        .register(KubeWait::new(kube.clone()))
        .register(KubeDelete::new(kube.clone()))
        .register(KubeLogsQuiet::new(kube.clone()))
        .register(KubeCordon::new(kube.clone()))
        .register(KubeUncordon::new(kube.clone()))
        .register(KubeDrain::new(kube.clone()))
        .register(KubeRestart::new(kube.clone()))
        .register(KubeGet::new(kube.clone()))
        .register(KubePatch::new(kube));
    r
}

/// Field text, or `""`.
pub(crate) fn text<'a>(
    fields: &'a serde_json::Map<String, serde_json::Value>,
    key: &str,
) -> &'a str {
    fields.get(key).and_then(|v| v.as_str()).unwrap_or("")
}

/// A field as shown in a description: strings bare, the rest as JSON.
pub(crate) fn shown(
    fields: &serde_json::Map<String, serde_json::Value>,
    key: &str,
) -> Option<String> {
    fields.get(key).map(|v| match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    })
}

/// A command given as `run` (a shell line) or `argv` (words), as it would be typed.
pub(crate) fn command_line(fields: &serde_json::Map<String, serde_json::Value>) -> String {
    if let Some(run) = fields.get("run").and_then(|v| v.as_str()) {
        return run.to_string();
    }
    let words: Vec<String> = fields
        .get("argv")
        .and_then(|v| v.as_array())
        .map(|a| {
            a.iter()
                .map(|w| {
                    shlex::try_quote(w.as_str().unwrap_or(""))
                        .map_or_else(|_| w.to_string(), |q| q.into_owned())
                })
                .collect()
        })
        .unwrap_or_default();
    words.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_is_registered_once_with_documented_fields() {
        let r = builtin();
        let names: Vec<&str> = r.names().collect();
        assert_eq!(names.len(), 19);
        for schema in r.schemas() {
            assert!(!schema.doc.is_empty(), "{}", schema.name);
            for f in schema.fields {
                assert!(!f.doc.is_empty(), "{}.{}", schema.name, f.name);
            }
            for k in schema.exactly_one_of {
                assert!(schema.field(k).is_some(), "{}: {k}", schema.name);
            }
        }
    }
}
