//! `file.edit` with `host`: the seed's `[s3d.0] assume-no-versioning = true` edit of
//! `/etc/rok/daemons.conf`, on the hosts themselves.

use crate::support::{Lab, state_of, step};
use crate::{appliances, on_host, ssh_args, with_ssh};

const EDIT: &str = r#"
[plan]
name = "s3d"
[params.hosts]
type = "list"
default = ["rok-node-1"]
[[step]]
id = "s3d"
type = "file.edit"
for_each = "params.hosts"
host = "{{ item }}"
path = "/etc/rok/daemons.conf"
ini = [{ section = "s3d.0", key = "assume-no-versioning", value = "true" }]
"#;

#[test]
fn edits_the_file_on_the_host_keeps_mode_and_other_lines_and_changes_nothing_the_second_time() {
    let hosts = appliances(2);
    on_host(&hosts, "rok-node-1", "chmod 640 /etc/rok/daemons.conf");
    let before = hosts.daemons_conf("rok-node-1").unwrap();
    let other_before = hosts.daemons_conf("rok-node-2").unwrap();
    assert!(before.contains("[s3d.0]"), "{before}");

    let lab = Lab::with_plan(EDIT);
    let ssh = ssh_args(&hosts);
    lab.run(&with_ssh(&["execute", "plan.toml"], &ssh)).code(0);
    let status = lab.status();
    assert_eq!(state_of(&status, "s3d/rok-node-1"), "succeeded");
    let backup = step(&status, "s3d/rok-node-1")["outputs"]["backup"]
        .as_str()
        .expect("a backup path")
        .to_string();

    let after = hosts.daemons_conf("rok-node-1").unwrap();
    let section: Vec<&str> = after
        .lines()
        .skip_while(|l| l.trim() != "[s3d.0]")
        .skip(1)
        .take_while(|l| !l.trim_start().starts_with('['))
        .collect();
    assert!(section.contains(&"assume-no-versioning = true"), "{after}");
    // Every line that was there is still there, in order.
    let kept: Vec<&str> = after
        .lines()
        .filter(|l| before.lines().any(|b| b == *l))
        .collect();
    assert_eq!(kept, before.lines().collect::<Vec<_>>());
    assert_eq!(
        on_host(&hosts, "rok-node-1", "stat -c %a /etc/rok/daemons.conf").trim(),
        "640"
    );
    assert_eq!(
        on_host(&hosts, "rok-node-1", &format!("cat {backup}")),
        before
    );
    assert_eq!(
        hosts.daemons_conf("rok-node-2").unwrap(),
        other_before,
        "another host's file"
    );

    // Again, as a new run: already in place.
    lab.run(&with_ssh(&["execute", "plan.toml", "--new"], &ssh))
        .code(0);
    assert_eq!(state_of(&lab.status(), "s3d/rok-node-1"), "satisfied");
    assert_eq!(hosts.daemons_conf("rok-node-1").unwrap(), after);
}

#[test]
fn a_missing_file_fails_naming_the_host_and_the_path() {
    let hosts = appliances(1);
    let lab = Lab::with_plan(&EDIT.replace("/etc/rok/daemons.conf", "/etc/rok/nope.conf"));
    let ssh = ssh_args(&hosts);
    lab.run(&with_ssh(&["execute", "plan.toml"], &ssh)).code(1);
    let err = step(&lab.status(), "s3d/rok-node-1")["last_error"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_eq!(
        err,
        "cannot read rok-node-1:/etc/rok/nope.conf (missing or not readable)"
    );
}
