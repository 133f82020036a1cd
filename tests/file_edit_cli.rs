//! `file.edit` through the real binary: a run edits the file (with a backup), a second run
//! finds it already in the wanted state (`satisfied`) and writes nothing.

use std::process::Command;

fn rok_plan(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_rok-plan"))
        .current_dir(dir)
        .args(args)
        .output()
        .expect("rok-plan runs")
}

#[test]
fn file_edit_edits_once_then_is_satisfied() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("daemons.conf"),
        "# daemons\n[s3d.0]\nendpoint = tcp://s3\n",
    )
    .unwrap();
    std::fs::write(
        d.join("plan.toml"),
        r#"
[plan]
name = "fe"
[[step]]
id = "s3"
type = "file.edit"
path = "daemons.conf"
ini = [{ section = "s3d.0", key = "assume-no-versioning", value = "true" }]
replace = [{ pattern = "tcp:", with = "http:" }]
"#,
    )
    .unwrap();
    let first = rok_plan(d, &["-q", "execute", "plan.toml"]);
    assert_eq!(
        first.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(d.join("daemons.conf")).unwrap(),
        "# daemons\n[s3d.0]\nendpoint = http://s3\nassume-no-versioning = true\n"
    );
    let backups: Vec<_> = std::fs::read_dir(d)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .filter(|n| n.ends_with(".bak"))
        .collect();
    assert_eq!(backups.len(), 1, "{backups:?}");

    let second = rok_plan(d, &["-q", "execute", "plan.toml", "--new"]);
    assert_eq!(second.status.code(), Some(0));
    let status = rok_plan(d, &["--output", "json", "status"]);
    let doc: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(doc["steps"][0]["state"], "satisfied", "{doc}");
    let backups_after = std::fs::read_dir(d)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".bak"))
        })
        .count();
    assert_eq!(backups_after, 1, "no new backup when nothing changes");
}
