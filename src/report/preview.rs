//! `rok-plan plan` for people: parameters, then each wave with every instance rendered.

use std::fmt::Write;

use rok_plan_engine::preview::{InstancePreview, PlanPreview, WhenDecision};

use crate::report::plural;

/// The preview as text.
pub(crate) fn render(p: &PlanPreview) -> String {
    let mut out = String::new();
    let _ = write!(out, "Plan {}", p.plan);
    if let Some(d) = &p.description {
        let _ = write!(out, ": {d}");
    }
    out.push('\n');
    if !p.params.is_empty() {
        out.push_str("\nParameters:\n");
        let width = p.params.iter().map(|x| x.name.len()).max().unwrap_or(0);
        for param in &p.params {
            let value = match &param.value {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let origin = match param.origin {
                Some(o) => serde_json::to_value(o)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
                None => String::new(),
            };
            let _ = writeln!(out, "  {:width$} = {value}  ({origin})", param.name);
        }
    }
    for wave in &p.waves {
        let _ = writeln!(
            out,
            "\nWave {} ({} instance{}):",
            wave.number,
            wave.instances.len(),
            plural(wave.instances.len())
        );
        for inst in &wave.instances {
            render_instance(&mut out, inst);
        }
    }
    let waves = p.waves.len();
    let _ = writeln!(
        out,
        "\n{} instance{} in {waves} wave{}; {} skipped by `when`. Nothing was executed.",
        p.instances,
        plural(p.instances),
        plural(waves),
        p.skipped
    );
    out
}

fn render_instance(out: &mut String, i: &InstancePreview) {
    let marker = match i.decision {
        WhenDecision::Run => "",
        WhenDecision::Skip => " [skipped: `when` is false]",
        WhenDecision::AtRunTime => " [`when` decided at run time]",
    };
    let finally = if i.finally { " [finally]" } else { "" };
    let _ = writeln!(out, "  - {} ({}){finally}{marker}", i.id, i.step_type);
    if let Some(d) = &i.description {
        let _ = writeln!(out, "      # {d}");
    }
    for (n, line) in i.action.lines().enumerate() {
        let lead = if n == 0 { "      " } else { "        " };
        let _ = writeln!(out, "{lead}{line}");
    }
    if let Some(c) = &i.check {
        let _ = writeln!(out, "      check: {c}");
    }
    if !i.when.is_empty() {
        let _ = writeln!(out, "      when: {}", i.when.join(" and "));
    }
    let mut policy = Vec::new();
    if let Some(t) = &i.timeout {
        policy.push(format!("timeout {t}"));
    }
    if i.attempts > 1 {
        policy.push(format!("{} attempts", i.attempts));
    }
    let on_failure = serde_json::to_value(i.on_failure)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    if on_failure != "abort" {
        policy.push(format!("on failure: {on_failure}"));
    }
    if !i.captures.is_empty() {
        policy.push(format!("captures {}", i.captures.join(", ")));
    }
    if !policy.is_empty() {
        let _ = writeln!(out, "      ({})", policy.join("; "));
    }
}
