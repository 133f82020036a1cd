//! `kube.apply`: server-side apply of manifests (files, inline YAML, a kustomize
//! directory rendered by `kubectl kustomize`), any kind the cluster serves.
//!
//! Namespaces and CustomResourceDefinitions go first; a CRD is waited for until
//! `Established` (and discovery refreshed) before the objects after it are applied. A 409
//! names the other field managers and their fields. With `recreate_on_immutable`, an
//! object whose change the API forbids (a StatefulSet's `volumeClaimTemplates`, a
//! selector) is deleted, waited for until gone, and applied again.

use std::collections::BTreeSet;
use std::time::Duration;

use kube::api::{DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams};
use rok_plan_engine::step::{Fields, StepContext, StepOutcome};
use serde_json::{Value, json};

use super::client::{Conn, Kube, call, pause, say};
use super::delete::wait_gone;
use super::error::KubeError;
use super::resource::{Kind, Target};
use super::watch::{Verdict, config_for, watch_until};
use super::{flag, opt_text};

/// One manifest document and where it came from.
struct Document {
    source: String,
    body: Value,
}

/// What applying one object did.
#[derive(Debug, PartialEq, Eq)]
enum Applied {
    Created,
    Configured,
    Unchanged,
}

pub(crate) async fn run(
    kube: &Kube,
    ctx: &StepContext,
    f: &Fields,
) -> Result<StepOutcome, KubeError> {
    let mut docs = load(ctx, f).await?;
    // Namespaces, then CRDs, then the rest in their order: what others need comes first.
    docs.sort_by_key(|d| match d.body["kind"].as_str() {
        Some("Namespace") => 0,
        Some("CustomResourceDefinition") => 1,
        _ => 2,
    });
    let conn = kube.conn(f).await?;
    let manager = opt_text(f, "field_manager").unwrap_or("rok-plan");
    let params = PatchParams {
        dry_run: conn.dry_run,
        force: flag(f, "force"),
        field_manager: Some(manager.to_string()),
        field_validation: None,
    };
    let recreate = flag(f, "recreate_on_immutable");
    let mut changed = 0;
    for doc in docs {
        let result = apply_one(ctx, &conn, f, &params, recreate, doc).await?;
        if result != Applied::Unchanged {
            changed += 1;
        }
    }
    if changed == 0 && !conn.dry_run {
        return Ok(StepOutcome::Satisfied);
    }
    Ok(StepOutcome::done())
}

async fn apply_one(
    ctx: &StepContext,
    conn: &Conn,
    f: &Fields,
    params: &PatchParams,
    recreate: bool,
    doc: Document,
) -> Result<Applied, KubeError> {
    let Document { source, mut body } = doc;
    let api_version = body["apiVersion"].as_str().unwrap_or("").to_string();
    let kind_name = body["kind"].as_str().unwrap_or("").to_string();
    let name = body["metadata"]["name"].as_str().unwrap_or("").to_string();
    if api_version.is_empty() || kind_name.is_empty() || name.is_empty() {
        return Err(KubeError::Manifest(format!(
            "{source}: a document lacks apiVersion, kind or metadata.name"
        )));
    }
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", &api_version));
    let gvk = GroupVersionKind::gvk(group, version, &kind_name);
    let (ar, caps) = conn.pinned_kind(ctx, &gvk).await?.ok_or_else(|| {
        KubeError::UnknownKind(format!("{kind_name} ({api_version}) of {source}"))
    })?;
    let kind = Kind { ar, caps };
    let namespace = kind.namespaced().then(|| {
        body["metadata"]["namespace"]
            .as_str()
            .map(str::to_string)
            .or_else(|| opt_text(f, "namespace").map(str::to_string))
            .unwrap_or_else(|| conn.namespace.clone())
    });
    if let Some(ns) = &namespace {
        body["metadata"]["namespace"] = json!(ns);
    }
    let target = Target {
        kind: kind.clone(),
        name: Some(name.clone()),
        namespace: namespace.clone(),
        selector: None,
    };
    let shown = target.describe();
    let api = target.api(conn);
    let before = call(ctx, &format!("GET {shown}"), || api.get_opt(&name)).await?;
    let what = format!("apply {shown}");
    let patch = Patch::Apply(&body);
    let answer = match call(ctx, &what, || api.patch(&name, params, &patch)).await {
        Err(KubeError::Api {
            code: 409,
            message,
            causes,
            ..
        }) => {
            return Err(KubeError::Manifest(format!(
                "{shown}: fields are owned by other field managers: {} (set force = true to take them over as {})",
                if causes.is_empty() {
                    message
                } else {
                    causes.join("; ")
                },
                params.field_manager.as_deref().unwrap_or("rok-plan")
            )));
        }
        Err(KubeError::Api {
            code: 422, message, ..
        }) if is_immutable(&message) => {
            if !recreate {
                return Err(KubeError::Manifest(format!(
                    "{shown}: the API forbids this change: {message} (set recreate_on_immutable = true to delete and re-create it)"
                )));
            }
            say(
                ctx,
                format!(
                    "{shown}: the API forbids this change in place ({message}); re-creating it"
                ),
            );
            recreate_object(ctx, conn, &target, before.as_ref()).await?;
            if conn.dry_run {
                return Ok(Applied::Configured);
            }
            call(ctx, &what, || api.patch(&name, params, &patch)).await?
        }
        other => other?,
    };
    let applied = match &before {
        None => Applied::Created,
        Some(b) if unchanged(b, &answer) => Applied::Unchanged,
        Some(_) => Applied::Configured,
    };
    let dry = if conn.dry_run {
        " (server dry run)"
    } else {
        ""
    };
    say(
        ctx,
        format!("{shown}: {}{dry}", format!("{applied:?}").to_lowercase()),
    );
    if kind_name == "CustomResourceDefinition" && group == "apiextensions.k8s.io" && !conn.dry_run {
        await_established(ctx, conn, &target).await?;
        conn.forget_kinds().await;
    }
    Ok(applied)
}

/// Whether the apply changed nothing. A controller may write the status between our read
/// and our apply, so for objects with a generation an unchanged generation and metadata
/// count as unchanged too.
fn unchanged(before: &DynamicObject, after: &DynamicObject) -> bool {
    let (b, a) = (&before.metadata, &after.metadata);
    b.resource_version == a.resource_version
        || (b.generation.is_some()
            && b.generation == a.generation
            && b.labels == a.labels
            && b.annotations == a.annotations)
}

/// Whether a 422's message says the change is forbidden in place.
fn is_immutable(message: &str) -> bool {
    message.contains("field is immutable")
        || message.contains("are forbidden")
        || message.contains("Forbidden: updates to")
}

/// Deletes the object as `kubectl delete` does (its pods go with it; a StatefulSet's volume
/// claims stay, for the new one's pods to adopt) and waits until it is gone.
async fn recreate_object(
    ctx: &StepContext,
    conn: &Conn,
    target: &Target,
    before: Option<&DynamicObject>,
) -> Result<(), KubeError> {
    let Some(old) = before else {
        return Ok(());
    };
    let name = target.name.clone().unwrap_or_default();
    let api = target.api(conn);
    let params = DeleteParams {
        dry_run: conn.dry_run,
        ..DeleteParams::background()
    };
    call(ctx, &format!("DELETE {}", target.describe()), || {
        api.delete(&name, &params)
    })
    .await?;
    if conn.dry_run {
        say(
            ctx,
            format!(
                "{}: would be deleted and re-created (server dry run)",
                target.describe()
            ),
        );
        return Ok(());
    }
    let uids: BTreeSet<String> = old.metadata.uid.iter().cloned().collect();
    wait_gone(ctx, target, api, uids).await?;
    Ok(())
}

/// Watches a CRD until its `Established` condition is True.
async fn await_established(
    ctx: &StepContext,
    conn: &Conn,
    target: &Target,
) -> Result<(), KubeError> {
    let api = target.api(conn);
    let shown = target.describe();
    watch_until(ctx, api, config_for(target.name.as_deref(), None), |objs| {
        let established = objs.first().is_some_and(|o| {
            o.data["status"]["conditions"].as_array().is_some_and(|cs| {
                cs.iter()
                    .any(|c| c["type"] == "Established" && c["status"] == "True")
            })
        });
        if established {
            Verdict::done(format!("{shown}: established"))
        } else {
            Verdict::waiting(format!("{shown}: waiting until established"))
        }
    })
    .await?;
    // Discovery documents can lag the condition by a moment on a real API server.
    pause(ctx, Duration::from_millis(100)).await?;
    Ok(())
}

/// The step's documents, from `files`, `manifest` or `kustomize`.
async fn load(ctx: &StepContext, f: &Fields) -> Result<Vec<Document>, KubeError> {
    let mut docs = Vec::new();
    if let Some(files) = f.get("files").and_then(Value::as_array) {
        for file in files {
            let path = file.as_str().unwrap_or("");
            let text = tokio::fs::read_to_string(path)
                .await
                .map_err(|e| KubeError::Manifest(format!("cannot read manifest `{path}`: {e}")))?;
            parse(&text, path, &mut docs)?;
        }
    } else if let Some(text) = opt_text(f, "manifest") {
        parse(text, "the inline manifest", &mut docs)?;
    } else if let Some(dir) = opt_text(f, "kustomize") {
        let text = kustomize(ctx, dir).await?;
        parse(&text, &format!("kustomize directory {dir}"), &mut docs)?;
    } else {
        return Err(KubeError::field(
            "files",
            "give `files`, `manifest` or `kustomize`",
        ));
    }
    if docs.is_empty() {
        return Err(KubeError::Manifest("the manifests hold no objects".into()));
    }
    Ok(docs)
}

/// Multi-document YAML (or JSON) into objects; `kind: List` is flattened.
fn parse(text: &str, source: &str, out: &mut Vec<Document>) -> Result<(), KubeError> {
    let values: Vec<Value> = serde_saphyr::from_multiple(text)
        .map_err(|e| KubeError::Manifest(format!("{source} is not valid YAML: {e}")))?;
    for v in values {
        match v {
            Value::Null => {}
            Value::Object(ref m)
                if m.get("kind")
                    .and_then(Value::as_str)
                    .is_some_and(|k| k.ends_with("List"))
                    && m.contains_key("items") =>
            {
                for item in m["items"].as_array().into_iter().flatten() {
                    out.push(Document {
                        source: source.to_string(),
                        body: item.clone(),
                    });
                }
            }
            Value::Object(_) => out.push(Document {
                source: source.to_string(),
                body: v,
            }),
            _ => {
                return Err(KubeError::Manifest(format!(
                    "{source}: a document is not a Kubernetes object"
                )));
            }
        }
    }
    Ok(())
}

/// `kubectl kustomize DIR`, rendered offline (no cluster access).
async fn kustomize(ctx: &StepContext, dir: &str) -> Result<String, KubeError> {
    let mut cmd = tokio::process::Command::new("kubectl");
    cmd.arg("kustomize")
        .arg(dir)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    let output = tokio::select! {
        o = cmd.output() => o.map_err(|e| KubeError::Manifest(format!("cannot run `kubectl kustomize {dir}`: {e}")))?,
        () = ctx.cancellation().cancelled() => return Err(KubeError::Cancelled(String::new())),
    };
    if !output.status.success() {
        return Err(KubeError::Manifest(format!(
            "`kubectl kustomize {dir}` failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    String::from_utf8(output.stdout).map_err(|_| {
        KubeError::Manifest(format!("`kubectl kustomize {dir}` printed non-UTF-8 text"))
    })
}
