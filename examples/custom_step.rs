//! A step type of your own: declare its fields once (validation, `rok-plan plan` and the
//! JSON Schema follow from them), implement `run`, register it, and use it in plans.
//!
//! `cargo run --example custom_step` validates a plan that uses a `notify` step, shows how
//! a bad field is reported, and runs the plan.

use std::collections::BTreeMap;
use std::sync::Arc;

use rok_plan::engine::exec::{ExecutorBuilder, RunEvent};
use rok_plan::engine::params::{ParamInputs, resolve_params};
use rok_plan::engine::state::{MemoryStore, RunOutcome};
use rok_plan::engine::step::{
    FieldKind, FieldSpec, Fields, StepContext, StepError, StepOutcome, StepSchema, StepType, Stream,
};
use rok_plan::engine::{PlanSource, load_plan};

/// `notify`: sends a message to a channel (here: writes it to the step's output).
struct Notify;

const NOTIFY: StepSchema = StepSchema {
    name: "notify",
    doc: "Posts a message to a chat channel.",
    fields: &[
        FieldSpec::required(
            "channel",
            FieldKind::Text,
            "Where to post, e.g. \"#upgrades\".",
        ),
        FieldSpec::required("message", FieldKind::Text, "What to say."),
        FieldSpec::optional("urgent", FieldKind::Bool, "Mention everyone."),
    ],
    exactly_one_of: &[],
    idempotent: false,
};

#[async_trait::async_trait]
impl StepType for Notify {
    fn schema(&self) -> &StepSchema {
        &NOTIFY
    }

    fn describe(&self, f: &Fields) -> String {
        format!(
            "post to {}: {}",
            f["channel"].as_str().unwrap_or(""),
            f["message"].as_str().unwrap_or("")
        )
    }

    async fn run(&self, ctx: &StepContext, f: &Fields) -> Result<StepOutcome, StepError> {
        let channel = f["channel"].as_str().unwrap_or_default();
        if !channel.starts_with('#') {
            return Ok(StepOutcome::failed(format!(
                "`{channel}` is not a channel name"
            )));
        }
        let urgent = if f.get("urgent").and_then(|v| v.as_bool()) == Some(true) {
            "@here "
        } else {
            ""
        };
        ctx.output().write(
            Stream::Stdout,
            &format!(
                "{channel}: {urgent}{}\n",
                f["message"].as_str().unwrap_or("")
            ),
        );
        let mut outputs = BTreeMap::new();
        outputs.insert("posted_to".to_string(), channel.to_string());
        Ok(StepOutcome::Succeeded {
            outputs,
            exit_status: None,
        })
    }
}

const PLAN: &str = r##"
[plan]
name = "with-notify"

[[step]]
id = "announce"
type = "notify"
channel = "#upgrades"
message = "starting run {{ run.id }}"
urgent = true

[[step]]
id = "work"
type = "shell"
needs = ["announce"]
run = "echo working"
"##;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut registry = rok_plan::steps::builtin();
    registry.register(Notify);

    // A field the type does not declare is caught before anything runs.
    let bad = PLAN.replace("urgent = true", "urgnet = true");
    let diags = load_plan(&PlanSource::new("bad.toml", bad), &registry)
        .err()
        .ok_or("the typo was not caught")?;
    let first = diags.iter().next().ok_or("no diagnostic")?;
    println!(
        "caught: {} [{}] {}",
        first.message(),
        first.code(),
        first.help_text().unwrap_or("")
    );

    let plan = load_plan(&PlanSource::new("with-notify.toml", PLAN), &registry)?;
    let params = resolve_params(&plan, &ParamInputs::new())?;
    let report = ExecutorBuilder::new(registry, Arc::new(MemoryStore::new()))
        .build()
        .execute(&plan, &params, "with-notify.toml", &mut |e: &RunEvent| {
            if let Ok(line) = serde_json::to_string(e) {
                println!("{line}");
            }
        })
        .await?;
    let announce = report
        .steps
        .iter()
        .find(|s| s.instance_id == "announce")
        .ok_or("no announce step")?;
    if report.outcome != RunOutcome::Succeeded
        || announce.outputs.get("posted_to").map(String::as_str) != Some("#upgrades")
    {
        return Err(format!("unexpected result: {:?}", report.outcome).into());
    }
    println!("run {}: {:?}", report.run_id, report.outcome);
    Ok(())
}
