//! `rok-plan status [RUN]`, `rok-plan runs`, `rok-plan logs RUN STEP`: what the store knows.

use rok_plan_engine::state::{RunRecord, StepRecord};

use crate::cli::args::{LogsArgs, StatusArgs};
use crate::cli::{Flags, OutputFormat, store};
use crate::exit::{CliError, ExitCode};
use crate::report::progress::human_duration;
use crate::report::stdout::{print_data, print_line};

fn when(ms: u64) -> String {
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms))
        .to_string()
}

fn run_json(r: &RunRecord) -> serde_json::Value {
    serde_json::json!({
        "id": r.id, "plan": r.plan_name, "plan_path": r.plan_path, "plan_hash": r.plan_hash,
        "outcome": r.outcome, "started_at_ms": r.started_at_ms, "ended_at_ms": r.ended_at_ms,
        "params": r.params, "secret_params": r.secret_params, "settings": r.settings,
    })
}

fn duration(s: &StepRecord) -> Option<u64> {
    s.started_at_ms
        .zip(s.ended_at_ms)
        .map(|(a, b)| b.saturating_sub(a))
}

pub(crate) fn status(args: &StatusArgs, flags: &Flags) -> Result<ExitCode, CliError> {
    let store = store::open_existing(&flags.state, flags.force_unlock)?;
    let record = store::find_run(&*store, args.run_id.as_deref(), |_| true, "")?;
    let snapshot = store
        .load_run(&record.id)?
        .ok_or_else(|| CliError::NoRun(format!("no run `{}`", record.id)))?;
    let steps: Vec<&StepRecord> = snapshot.steps.values().collect();
    if flags.output == OutputFormat::Json {
        let doc = serde_json::json!({
            "version": 1,
            "run": run_json(&snapshot.run),
            "steps": steps.iter().map(|s| serde_json::json!({
                "instance": s.instance_id, "state": s.state, "attempts": s.attempts,
                "duration_ms": duration(s), "exit_status": s.exit_status, "last_error": s.last_error,
                "outputs": s.outputs,
            })).collect::<Vec<_>>(),
            "approvals": snapshot.approvals.values().collect::<Vec<_>>(),
        });
        print_line(&doc.to_string())?;
        return Ok(ExitCode::Success);
    }
    let r = &snapshot.run;
    let mut out = format!(
        "Run {} of plan {} ({}): {}\nstarted {}{}\n\n",
        r.id,
        r.plan_name,
        r.plan_path,
        r.outcome.as_str(),
        when(r.started_at_ms),
        r.ended_at_ms
            .map(|e| format!(", stopped {}", when(e)))
            .unwrap_or_default()
    );
    if !r.settings.is_empty() {
        // Options that change what the run trusts (e.g. accepting new ssh host keys).
        let settings: Vec<String> = r.settings.iter().map(|(k, v)| format!("{k}={v}")).collect();
        out.insert_str(
            out.len() - 1,
            &format!("settings: {}\n", settings.join(", ")),
        );
    }
    let w = steps
        .iter()
        .map(|s| s.instance_id.len())
        .max()
        .unwrap_or(8)
        .max(8);
    out.push_str(&format!(
        "{:w$}  {:17}  {:>8}  {:>9}  {}\n",
        "INSTANCE", "STATE", "ATTEMPTS", "DURATION", "LAST ERROR"
    ));
    for s in &steps {
        out.push_str(&format!(
            "{:w$}  {:17}  {:>8}  {:>9}  {}\n",
            s.instance_id,
            s.state.as_str(),
            s.attempts,
            duration(s).map(human_duration).unwrap_or_default(),
            s.last_error
                .as_deref()
                .unwrap_or("")
                .lines()
                .next()
                .unwrap_or("")
        ));
    }
    for a in snapshot.approvals.values() {
        // An approval holds for the plan it was given for only.
        let void = if a.plan_hash == r.plan_hash {
            ""
        } else {
            " (for an earlier version of the plan: void)"
        };
        out.push_str(&format!(
            "approved: {} by {} at {}{void}\n",
            a.instance_id,
            a.approver,
            when(a.at_ms)
        ));
    }
    print_data(&out)?;
    Ok(ExitCode::Success)
}

pub(crate) fn runs(flags: &Flags) -> Result<ExitCode, CliError> {
    let store = store::open_existing(&flags.state, flags.force_unlock)?;
    let runs = store.list_runs()?;
    if flags.output == OutputFormat::Json {
        let doc = serde_json::json!({ "version": 1, "runs": runs.iter().map(run_json).collect::<Vec<_>>() });
        print_line(&doc.to_string())?;
        return Ok(ExitCode::Success);
    }
    let mut out = format!(
        "{:24}  {:28}  {:11}  {}\n",
        "RUN", "PLAN", "OUTCOME", "STARTED"
    );
    for r in &runs {
        let outcome = r.outcome.as_str();
        out.push_str(&format!(
            "{:24}  {:28}  {:11}  {}\n",
            r.id,
            r.plan_name,
            outcome,
            when(r.started_at_ms)
        ));
    }
    print_data(&out)?;
    Ok(ExitCode::Success)
}

pub(crate) fn logs(args: &LogsArgs, flags: &Flags) -> Result<ExitCode, CliError> {
    let store = store::open_existing(&flags.state, flags.force_unlock)?;
    let snapshot = store
        .load_run(&args.run_id)?
        .ok_or_else(|| CliError::NoRun(format!("no run `{}` in the state store", args.run_id)))?;
    if !snapshot.steps.contains_key(&args.step) {
        // A step of a group or with `for_each` has instances (`g/ELEMENT/STEP`, `STEP/ELEMENT`):
        // an operator naming the step as the plan does is shown them.
        let instances: Vec<&str> = snapshot
            .steps
            .keys()
            .map(String::as_str)
            .filter(|i| {
                i.ends_with(&format!("/{}", args.step)) || i.starts_with(&format!("{}/", args.step))
            })
            .collect();
        let hint = if instances.is_empty() {
            rok_plan_engine::diagnostic::did_you_mean(
                &args.step,
                snapshot.steps.keys().map(String::as_str),
            )
            .map(|h| format!("; {h}"))
            .unwrap_or_default()
        } else {
            format!("; its instances: {}", instances.join(", "))
        };
        return Err(CliError::NoRun(format!(
            "run `{}` has no step instance `{}`{hint}",
            args.run_id, args.step
        )));
    }
    let chunks = store.read_output(&args.run_id, &args.step)?;
    if flags.output == OutputFormat::Json {
        print_line(&serde_json::json!({ "version": 1, "run": args.run_id, "instance": args.step, "output": chunks }).to_string())?;
        return Ok(ExitCode::Success);
    }
    let mut out = String::new();
    let mut attempt = 0;
    for c in &chunks {
        if c.attempt != attempt {
            attempt = c.attempt;
            out.push_str(&format!("── attempt {attempt} ──\n"));
        }
        out.push_str(&c.text);
        if !c.text.ends_with('\n') {
            out.push('\n');
        }
    }
    if chunks.is_empty() {
        out.push_str("(no output recorded)\n");
    }
    print_data(&out)?;
    Ok(ExitCode::Success)
}
