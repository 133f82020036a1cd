//! `file.edit`: an atomic, idempotent edit of a text file, here or over ssh.

use rok_plan_engine::step::{
    FieldKind, FieldSpec, Fields, StepContext, StepError, StepOutcome, StepSchema, StepType,
};
use serde_json::{Map, Value};

use crate::text;

use super::edits::{Edit, apply, parse_edits};
use super::write::{read, replace};

/// Reads, edits and (when anything changes) atomically rewrites `path`; the backup is
/// `PATH.RUN_ID.bak`. `before_rename` is for tests.
pub(crate) fn edit_file(
    path: &std::path::Path,
    edits: &[Edit],
    backup: bool,
    run_id: &str,
    before_rename: impl FnOnce(),
) -> Result<StepOutcome, StepError> {
    let old = read(path).map_err(|e| StepError::Other(e.to_string()))?;
    let new = apply(&old, edits);
    if new == old {
        return Ok(StepOutcome::Satisfied);
    }
    let backup_path = backup.then(|| {
        let mut p = path.as_os_str().to_owned();
        p.push(format!(".{run_id}.bak"));
        std::path::PathBuf::from(p)
    });
    match replace(path, &old, &new, backup_path.as_deref(), before_rename) {
        Ok(()) => {
            let mut outputs = std::collections::BTreeMap::new();
            if let Some(b) = backup_path {
                outputs.insert("backup".to_string(), b.display().to_string());
            }
            Ok(StepOutcome::Succeeded {
                outputs,
                exit_status: None,
            })
        }
        Err(e) => Ok(StepOutcome::failed(e.to_string())),
    }
}

/// `file.edit`: here, or on `host` over ssh (sharing the `ssh` steps' connections).
#[derive(Debug, Clone, Default)]
pub struct FileEdit {
    ssh: Option<crate::ssh::Ssh>,
}

impl FileEdit {
    /// Local edits only: a step with `host` is refused.
    pub fn local() -> Self {
        Self::default()
    }

    /// Local edits, and edits on a `host` through `ssh`.
    pub fn with_ssh(ssh: crate::ssh::Ssh) -> Self {
        Self { ssh: Some(ssh) }
    }
}

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
    async fn run(&self, ctx: &StepContext, f: &Fields) -> Result<StepOutcome, StepError> {
        let edits = parse_edits(f).map_err(|message| StepError::InvalidField {
            field: "file.edit".into(),
            message,
        })?;
        let backup = f.get("backup").and_then(Value::as_bool).unwrap_or(true);
        if let Some(host) = f.get("host").and_then(Value::as_str) {
            let Some(ssh) = &self.ssh else {
                return Err(StepError::Unsupported(
                    "this `file.edit` step type was built without ssh, so `host` cannot be used"
                        .into(),
                ));
            };
            return super::remote::edit_remote(ssh, ctx, host, text(f, "path"), &edits, backup)
                .await;
        }
        let path = std::path::PathBuf::from(text(f, "path"));
        let run_id = ctx.run_id.clone();
        tokio::task::spawn_blocking(move || edit_file(&path, &edits, backup, &run_id, || {}))
            .await
            .map_err(|e| StepError::Other(format!("the edit task failed: {e}")))?
    }
    fn schema(&self) -> &StepSchema {
        &FILE_EDIT
    }
    fn prepares(&self) -> bool {
        self.ssh.is_some()
    }
    async fn prepare(&self, instances: Vec<Fields>) {
        if let Some(ssh) = &self.ssh {
            ssh.warm(
                instances
                    .iter()
                    .filter_map(|f| f.get("host").and_then(Value::as_str)),
            )
            .await;
        }
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

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn edits() -> Vec<Edit> {
        let fields: Fields = serde_json::from_str(
            r#"{ "ini": [{ "section": "s3d.0", "key": "assume-no-versioning", "value": "true" }],
                 "replace": [{ "pattern": "tcp:", "with": "http:" }] }"#,
        )
        .unwrap();
        parse_edits(&fields).unwrap()
    }

    const DAEMONS: &str = "# daemons\n[s3d.0]\nendpoint = tcp://s3\n; a comment\n";

    #[test]
    fn edits_atomically_keeps_the_mode_backs_up_and_is_satisfied_the_second_time() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("daemons.conf");
        std::fs::write(&path, DAEMONS).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();

        let outcome = edit_file(&path, &edits(), true, "r1", || {}).unwrap();
        let StepOutcome::Succeeded { outputs, .. } = outcome else {
            panic!("{outcome:?}")
        };
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "# daemons\n[s3d.0]\nendpoint = http://s3\n; a comment\nassume-no-versioning = true\n"
        );
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o640
        );
        let backup = dir.path().join("daemons.conf.r1.bak");
        assert_eq!(outputs["backup"], backup.display().to_string());
        assert_eq!(std::fs::read_to_string(&backup).unwrap(), DAEMONS);

        // Already in the wanted state: nothing is written, no new backup.
        std::fs::remove_file(&backup).unwrap();
        assert_eq!(
            edit_file(&path, &edits(), true, "r2", || {}).unwrap(),
            StepOutcome::Satisfied
        );
        assert!(!dir.path().join("daemons.conf.r2.bak").exists());
        // No temporary file is left behind.
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["daemons.conf"]);
    }

    #[test]
    fn a_file_changed_between_read_and_write_is_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("daemons.conf");
        std::fs::write(&path, DAEMONS).unwrap();
        let outcome = edit_file(&path, &edits(), false, "r1", || {
            std::fs::write(&path, "someone else's edit\n").unwrap();
        })
        .unwrap();
        let StepOutcome::Failed { reason, .. } = outcome else {
            panic!("{outcome:?}")
        };
        assert!(
            reason.contains("changed while it was being edited"),
            "{reason}"
        );
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "someone else's edit\n"
        );
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "the temporary file is removed"
        );
    }

    #[test]
    fn a_missing_file_fails_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nope.conf");
        let err = edit_file(&path, &edits(), true, "r1", || {}).unwrap_err();
        assert!(err.to_string().contains("nope.conf"), "{err}");
    }
}
