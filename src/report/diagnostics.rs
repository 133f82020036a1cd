//! Diagnostics for humans (miette's graphical report) and as JSON.

use std::io::IsTerminal;

use miette::{GraphicalReportHandler, GraphicalTheme};
use rok_plan_engine::{Diagnostics, PlanDiagnostic};

/// Renders one diagnostic as people read it: colour only on a terminal without `NO_COLOR`.
pub(crate) fn render(d: &PlanDiagnostic) -> String {
    let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let theme = if color {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    let handler = GraphicalReportHandler::new_themed(theme).with_width(100);
    let mut out = String::new();
    if handler.render_report(&mut out, d).is_err() {
        out = format!("error[{}]: {}", d.code(), d.message());
    }
    out
}

/// Every diagnostic, then a count line, on stderr.
pub(crate) fn print_human(diags: &Diagnostics) {
    for d in diags.iter() {
        eprintln!("{}", render(d));
    }
    let n = diags.len();
    eprintln!("error: {n} problem{} found", if n == 1 { "" } else { "s" });
}

/// Diagnostics as JSON records.
pub(crate) fn to_json(diags: &Diagnostics) -> Vec<serde_json::Value> {
    diags
        .iter()
        .map(|d| serde_json::to_value(d.to_record()).unwrap_or(serde_json::Value::Null))
        .collect()
}
