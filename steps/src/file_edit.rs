//! `file.edit`: an atomic, idempotent edit of a text file, here or over ssh.

use rok_plan_engine::step::{
    FieldKind, FieldSpec, Fields, StepContext, StepError, StepOutcome, StepSchema, StepType,
};
use serde_json::{Map, Value};

use crate::text;

/// `file.edit`.
#[derive(Debug, Clone, Copy)]
pub struct FileEdit;

const REPLACE: &[FieldSpec] = &[
    FieldSpec::required("pattern", FieldKind::Text, "A regex to find."),
    FieldSpec::required("with", FieldKind::Text, "The replacement ($1 for groups)."),
];
const INI: &[FieldSpec] = &[
    FieldSpec::required(
        "section",
        FieldKind::Text,
        "The [section] (created when missing).",
    ),
    FieldSpec::required("key", FieldKind::Text, "The key in that section."),
    FieldSpec::required("value", FieldKind::Text, "The value it must have."),
];

const FILE_EDIT: StepSchema = StepSchema {
    name: "file.edit",
    doc: "Edits a text file atomically (temp file, fsync, rename); no change when already in the wanted state.",
    fields: &[
        FieldSpec::required("path", FieldKind::Text, "The file to edit."),
        FieldSpec::optional(
            "host",
            FieldKind::Text,
            "Edit the file on this host over ssh; omit to edit locally.",
        ),
        FieldSpec::optional(
            "replace",
            FieldKind::TableList(REPLACE),
            "Regex replacements: [{ pattern, with }].",
        ),
        FieldSpec::optional(
            "ini",
            FieldKind::TableList(INI),
            "INI settings: [{ section, key, value }]; other lines and comments stay.",
        ),
        FieldSpec::optional(
            "ensure_line",
            FieldKind::TextOrList,
            "Line(s) that must be present (appended when missing).",
        ),
        FieldSpec::optional(
            "backup",
            FieldKind::Bool,
            "Keep a copy of the old file beside it (default true).",
        ),
    ],
    exactly_one_of: &[],
    idempotent: true,
};

#[async_trait::async_trait]
impl StepType for FileEdit {
    async fn run(&self, _: &StepContext, _: &Fields) -> Result<StepOutcome, StepError> {
        Err(crate::not_in_this_version(self.schema().name))
    }
    fn schema(&self) -> &StepSchema {
        &FILE_EDIT
    }
    fn describe(&self, f: &Map<String, Value>) -> String {
        let mut edits = Vec::new();
        for r in f
            .get("replace")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            edits.push(format!(
                "replace /{}/ with \"{}\"",
                text(r.as_object().unwrap_or(&Map::new()), "pattern"),
                text(r.as_object().unwrap_or(&Map::new()), "with")
            ));
        }
        for i in f.get("ini").and_then(Value::as_array).into_iter().flatten() {
            let i = i.as_object().cloned().unwrap_or_default();
            edits.push(format!(
                "set [{}] {} = {}",
                text(&i, "section"),
                text(&i, "key"),
                text(&i, "value")
            ));
        }
        match f.get("ensure_line") {
            Some(Value::String(l)) => edits.push(format!("ensure line \"{l}\"")),
            Some(Value::Array(ls)) => edits.extend(
                ls.iter()
                    .map(|l| format!("ensure line \"{}\"", l.as_str().unwrap_or(""))),
            ),
            _ => {}
        }
        let at = match f.get("host").and_then(Value::as_str) {
            Some(h) => format!("{h}:{}", text(f, "path")),
            None => text(f, "path").to_string(),
        };
        format!("edit {at}: {}", edits.join("; "))
    }
}
