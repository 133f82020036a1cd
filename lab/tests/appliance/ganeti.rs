//! RokE on a Ganeti cluster: the physical hosts (own hostname, `apt-get`, `tcp:` endpoints
//! in `/usr/bin/*kvm*`, `/etc/ganeti/rok/rok.conf`, `/etc/default/snf-image`, none of it
//! on the machine), and the simulated `rok-cluster-upgrade-ganeti` run with python3.

use std::io::{BufReader, Read, Write};
use std::process::{Child, Command, Stdio};

use rok_plan_lab::appliance::ganeti::edited_paths;
use rok_plan_lab::appliance::{
    ApplianceLab, ApplianceOptions, GanetiOptions, V0_10, V0_11, Version,
};

use crate::support::{lab_with, ok, ssh};

/// The seed's command, quotes included (the shell removes them).
const SEED_APT: &str = r#"apt-get -o Dpkg::Options::="--force-confdef" -o Dpkg::Options::="--force-confold" install rok-common rok-base -y"#;

/// The seed's sed over the three places.
const SEED_SED: &str =
    "sed -i 's/tcp:/http:/g' /usr/bin/*kvm* /etc/ganeti/rok/rok.conf /etc/default/snf-image";

/// Three v0.11 appliances on a Ganeti cluster of `pnodes` physical hosts.
fn ganeti_lab(pnodes: usize) -> ApplianceLab {
    lab_with(3, |o| {
        o.boot_image = V0_11;
        o.ganeti = Some(GanetiOptions::pnodes(pnodes));
    })
}

fn package(lab: &ApplianceLab, pnode: &str, name: &str) -> Option<Version> {
    lab.state()
        .unwrap()
        .ganeti
        .pnode(pnode)
        .and_then(|p| p.packages.get(name).copied())
}

#[test]
fn physical_hosts_are_their_own_hosts_with_tcp_endpoints_that_the_machine_does_not_have() {
    let lab = ganeti_lab(3);
    assert_eq!(lab.pnodes(), ["ganeti-1", "ganeti-2", "ganeti-3"]);
    assert_eq!(lab.hosts(), ["rok-node-1", "rok-node-2", "rok-node-3"]);
    assert_eq!(lab.slaves(), ["rok-node-2", "rok-node-3"]);
    for p in lab.pnodes() {
        assert_eq!(ok(&lab, &p, "hostname").trim(), p);
        // The shim comes first on root's PATH.
        assert_eq!(
            ok(&lab, &p, "command -v apt-get").trim(),
            "/usr/local/sbin/apt-get"
        );
        let kvm = ok(&lab, &p, "ls /usr/bin/*kvm*");
        assert_eq!(kvm.lines().count(), 2, "{kvm}");
        let places = ok(
            &lab,
            &p,
            "grep -l tcp: /usr/bin/*kvm* /etc/ganeti/rok/rok.conf /etc/default/snf-image",
        );
        assert_eq!(places.lines().count(), 4, "{places}");
        // The rest of /usr/bin and /etc is the machine's.
        ok(&lab, &p, "test -x /usr/bin/sed && test -s /etc/passwd");
        assert_eq!(lab.pnode_tcp_endpoints(&p).len(), 5, "{p}");
    }
    // A host's change stays on that host.
    ok(&lab, "ganeti-2", "echo mark >> /etc/default/snf-image");
    assert!(!ok(&lab, "ganeti-3", "cat /etc/default/snf-image").contains("mark"));
    let kept = lab
        .pnode_file("ganeti-2", "/etc/default/snf-image")
        .unwrap();
    assert!(std::fs::read_to_string(kept).unwrap().contains("mark"));
    // Neither the machine nor the appliances have any of it.
    for path in edited_paths() {
        assert!(
            !std::path::Path::new(&path).exists(),
            "{path} on the machine"
        );
    }
    assert!(!std::path::Path::new("/etc/ganeti").exists());
    assert_eq!(
        ssh(&lab, "rok-node-1", "test -e /etc/ganeti/rok/rok.conf")
            .status
            .code(),
        Some(1)
    );
    assert_eq!(
        ssh(&lab, "rok-node-1", "command -v apt-get").stdout,
        b"/usr/bin/apt-get\n".to_vec(),
        "appliances have the machine's apt-get"
    );
    // ssh_config, known_hosts and the v0.11 parameters name them.
    let config = std::fs::read_to_string(lab.ssh_config()).unwrap();
    assert!(config.contains("Host ganeti-3\n"), "{config}");
    let params: toml::Table = std::fs::read_to_string(lab.plan_params("0.11"))
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(params["ganeti"].as_bool(), Some(true));
    assert_eq!(params["ganeti_master_pnode"].as_str(), Some("ganeti-1"));
    assert_eq!(
        params["ganeti_pnodes"].as_array().unwrap().len(),
        2,
        "the other physical hosts: {params:?}"
    );
    assert_eq!(
        params["ganeti_scripts_dir"].as_str(),
        Some(lab.ganeti_scripts_dir().to_str().unwrap())
    );
    assert_eq!(
        params["ganeti_extra_args"].as_str(),
        Some("--instance rok-node-1")
    );
    assert!(!params.contains_key("roke_password") && !params.contains_key("rapi_password"));
    let g = lab.options().ganeti.clone().unwrap();
    let text = std::fs::read_to_string(lab.plan_params("0.11")).unwrap();
    assert!(!text.contains(&g.roke_password) && !text.contains(&g.rapi_password));
}

#[test]
fn apt_get_upgrades_the_rok_packages_with_the_seed_command_only() {
    let lab = ganeti_lab(2);
    assert_eq!(package(&lab, "ganeti-1", "rok-common"), Some(V0_10));
    // Without -y there is no one to answer "Do you want to continue?".
    let o = ssh(&lab, "ganeti-1", "apt-get install rok-common rok-base");
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stdout).contains("Abort."));
    // Without --force-confold/confdef dpkg stops at the modified conffile.
    let o = ssh(&lab, "ganeti-1", "apt-get install rok-common rok-base -y");
    assert_eq!(o.status.code(), Some(100));
    assert!(String::from_utf8_lossy(&o.stderr).contains("conffile prompt"));
    let o = ssh(&lab, "ganeti-1", "apt-get install -y rok-nonesuch");
    assert_eq!(o.status.code(), Some(100));
    assert_eq!(package(&lab, "ganeti-1", "rok-common"), Some(V0_10));

    let out = ok(&lab, "ganeti-1", SEED_APT);
    assert!(out.contains("Setting up rok-base (0.11.0)"), "{out}");
    assert_eq!(package(&lab, "ganeti-1", "rok-common"), Some(V0_11));
    assert_eq!(package(&lab, "ganeti-1", "rok-base"), Some(V0_11));
    assert_eq!(package(&lab, "ganeti-2", "rok-common"), Some(V0_10));
    // Idempotent, as the plan declares it.
    let again = ok(&lab, "ganeti-1", SEED_APT);
    assert!(again.contains("already the newest version"), "{again}");
    // The package keeps the conffile's tcp: endpoints (the procedure seds them next).
    assert_eq!(lab.pnode_tcp_endpoints("ganeti-1").len(), 5);
    let runs = lab.invocations("ganeti-1", "apt-get").unwrap();
    assert_eq!(runs.len(), 5, "every apt-get is journalled: {runs:?}");
}

#[test]
fn the_seed_sed_leaves_no_tcp_endpoint_and_the_change_survives_a_power_cycle() {
    let lab = ganeti_lab(2);
    ok(&lab, "ganeti-2", SEED_SED);
    assert_eq!(lab.pnode_tcp_endpoints("ganeti-2"), Vec::<String>::new());
    assert_eq!(lab.pnode_tcp_endpoints("ganeti-1").len(), 5);
    // The plan's check.
    ok(&lab, "ganeti-2", "! grep -qs 'tcp:' /usr/bin/*kvm*");
    lab.restart_host("ganeti-2").unwrap();
    assert!(lab.state().unwrap().ganeti.pnode("ganeti-2").unwrap().up);
    let conf = ok(&lab, "ganeti-2", "cat /etc/ganeti/rok/rok.conf");
    assert!(conf.contains("http://rok-node-1.rok-prod:7400"), "{conf}");
    lab.stop_host("ganeti-1").unwrap();
    assert!(!lab.state().unwrap().ganeti.pnode("ganeti-1").unwrap().up);
}

#[test]
fn on_ganeti_the_roke_master_boots_the_old_image() {
    let lab = ganeti_lab(2);
    assert_eq!(
        ssh(&lab, "rok-node-1", "command -v rok-cluster-upgrade-v0.11.0")
            .status
            .code(),
        Some(1)
    );
    ok(&lab, "rok-node-2", "command -v rok-cluster-upgrade-v0.11.0");
    let state = lab.state().unwrap();
    let homes: Vec<(&str, &str)> = state
        .ganeti
        .instances
        .iter()
        .map(|i| (i.name.as_str(), i.node.as_str()))
        .collect();
    assert_eq!(
        homes,
        [
            ("rok-node-1", "ganeti-1"),
            ("rok-node-2", "ganeti-2"),
            ("rok-node-3", "ganeti-1")
        ]
    );
}

#[test]
fn invalid_ganeti_options_are_refused() {
    let mut one = ApplianceOptions::nodes(2).with_ganeti(1);
    one.boot_image = V0_11;
    let e = ApplianceLab::start(one).unwrap_err().to_string();
    assert!(e.contains("at least 2 physical hosts"), "{e}");
    let mut clash = ApplianceOptions::nodes(2).with_ganeti(2);
    if let Some(g) = clash.ganeti.as_mut() {
        g.pnodes[1] = "rok-node-2".into();
    }
    let e = ApplianceLab::start(clash).unwrap_err().to_string();
    assert!(e.contains("named twice"), "{e}");
}

/// The script as the plan starts it (with python3), in `ganeti_scripts_dir`.
fn start_script(lab: &ApplianceLab, roke: &str, rapi: &str, extra: &[&str]) -> Child {
    let g = lab.options().ganeti.clone().unwrap();
    Command::new("python3")
        .current_dir(lab.ganeti_scripts_dir())
        .arg("scripts/rok-cluster-upgrade-ganeti")
        .args(["--rapi-host", &g.cluster_name, "--rapi-user", &g.rapi_user])
        .args(extra)
        .env("ROKE_PASSWORD", roke)
        .env("RAPI_PASSWORD", rapi)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs the script")
}

/// Reads the script's stdout up to its question (which ends without a newline).
fn read_until_prompt(child: &mut Child) -> String {
    let mut out = String::new();
    let reader = BufReader::new(child.stdout.as_mut().unwrap());
    for byte in reader.bytes() {
        out.push(char::from(byte.unwrap()));
        if out.ends_with("[y/N] ") {
            break;
        }
    }
    out
}

fn finish(mut child: Child, answer: &str) -> (Option<i32>, String, String) {
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(answer.as_bytes());
    }
    let mut out = String::new();
    let mut err = String::new();
    if let Some(s) = child.stdout.as_mut() {
        let _ = s.read_to_string(&mut out);
    }
    if let Some(s) = child.stderr.as_mut() {
        let _ = s.read_to_string(&mut err);
    }
    let code = child.wait().unwrap().code();
    (code, out, err)
}

#[test]
fn the_upgrade_script_refuses_wrong_credentials_or_a_wrong_instance_without_changing_anything() {
    let lab = ganeti_lab(2);
    let g = lab.options().ganeti.clone().unwrap();
    let master = ["--instance", "rok-node-1"];
    for (roke, rapi, extra, expected) in [
        (
            g.roke_password.as_str(),
            "wrong",
            &master[..],
            "401 Unauthorized",
        ),
        (
            "wrong",
            g.rapi_password.as_str(),
            &master[..],
            "wrong password",
        ),
        ("", g.rapi_password.as_str(), &master[..], "ROKE_PASSWORD"),
        (
            g.roke_password.as_str(),
            g.rapi_password.as_str(),
            &["--instance", "rok-node-2"][..],
            "not the RokE master",
        ),
        (
            g.roke_password.as_str(),
            g.rapi_password.as_str(),
            &[][..],
            "--instance",
        ),
    ] {
        let (code, _, err) = finish(start_script(&lab, roke, rapi, extra), "");
        assert_ne!(code, Some(0), "{expected}");
        assert!(err.contains(expected), "expected {expected:?} in {err}");
        assert!(!err.contains(&g.roke_password) && !err.contains(&g.rapi_password));
    }
    let state = lab.state().unwrap();
    assert_eq!(state.ganeti.upgrade_script, Default::default());
    assert!(state.ganeti.all_instances_home());
}

#[test]
fn the_upgrade_script_evacuates_reinstalls_the_master_then_migrates_back_once_confirmed() {
    let lab = ganeti_lab(2);
    let g = lab.options().ganeti.clone().unwrap();
    let mut child = start_script(
        &lab,
        &g.roke_password,
        &g.rapi_password,
        &["--instance", "rok-node-1"],
    );
    let said = read_until_prompt(&mut child);
    assert!(said.contains("ganeti-1 is evacuated"), "{said}");
    // Waiting for the answer: evacuated, master re-installed, nothing migrated back.
    let state = lab.state().unwrap();
    assert_eq!(state.ganeti.instances_on("ganeti-1"), Vec::<String>::new());
    assert_eq!(state.ganeti.upgrade_script.runs, 1);
    assert_eq!(state.ganeti.upgrade_script.master_reinstalled, Some(V0_11));
    assert!(!state.ganeti.upgrade_script.migrated_back);
    assert_eq!(state.node("rok-node-1").unwrap().boot_image, V0_11);
    ok(&lab, "rok-node-1", "command -v rok-cluster-upgrade-v0.11.0");
    // The operator upgrades the physical host first, as the seed says.
    ok(&lab, "ganeti-1", SEED_APT);
    ok(&lab, "ganeti-1", SEED_SED);
    let (code, out, err) = finish(child, "y\n");
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(out.contains("every instance is back"), "{out}");
    let s = lab.state().unwrap().ganeti.upgrade_script;
    assert!(s.migrated_back);
    assert_eq!(s.master_pnode_ready_at_migration, Some(true));
    assert!(lab.state().unwrap().ganeti.all_instances_home());
}

#[test]
fn the_upgrade_script_leaves_the_instances_away_without_a_yes_and_records_an_early_yes() {
    let lab = ganeti_lab(2);
    let g = lab.options().ganeti.clone().unwrap();
    let args = ["--instance", "rok-node-1"];
    let mut child = start_script(&lab, &g.roke_password, &g.rapi_password, &args);
    read_until_prompt(&mut child);
    let (code, _, err) = finish(child, "n\n");
    assert_eq!(code, Some(1));
    assert!(err.contains("not confirmed"), "{err}");
    let state = lab.state().unwrap();
    assert!(!state.ganeti.upgrade_script.migrated_back);
    assert!(!state.ganeti.all_instances_home());
    // A second run, confirmed before the physical host was upgraded: the lab records it.
    let mut child = start_script(&lab, &g.roke_password, &g.rapi_password, &args);
    read_until_prompt(&mut child);
    let (code, _, _) = finish(child, "yes\n");
    assert_eq!(code, Some(0));
    let s = lab.state().unwrap().ganeti.upgrade_script;
    assert_eq!(s.runs, 2);
    assert_eq!(s.master_pnode_ready_at_migration, Some(false));
}

#[test]
fn lab_appliances_up_with_ganeti_pnodes_then_down_stops_the_physical_hosts_too() {
    let lab_cmd = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_lab"))
            .args(args)
            .output()
            .unwrap()
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("lab");
    let dir_s = dir.to_str().unwrap().to_string();
    let up = lab_cmd(&[
        "appliances",
        "up",
        "--nodes",
        "2",
        "--boot-image",
        "0.11.0",
        "--ganeti-pnodes",
        "2",
        "--dir",
        &dir_s,
        "--detach",
    ]);
    // Whatever happens next, stop what `up` left running.
    struct Down(String, String);
    impl Drop for Down {
        fn drop(&mut self) {
            let _ = Command::new(&self.0)
                .args(["appliances", "down", "--dir", &self.1])
                .output();
        }
    }
    let _down = Down(env!("CARGO_BIN_EXE_lab").to_string(), dir_s.clone());
    assert!(
        up.status.success(),
        "{}",
        String::from_utf8_lossy(&up.stderr)
    );
    let stdout = String::from_utf8_lossy(&up.stdout);
    assert!(stdout.contains("Ganeti physical host ganeti-2"), "{stdout}");
    let ssh = |host: &str, cmd: &str| {
        Command::new("ssh")
            .arg("-F")
            .arg(dir.join("ssh_config"))
            .args(["-o", "StrictHostKeyChecking=yes", host, cmd])
            .output()
            .unwrap()
    };
    let out = ssh("ganeti-2", "hostname");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ganeti-2");
    let params = std::fs::read_to_string(dir.join("params-rok-v0.11.toml")).unwrap();
    assert!(params.contains("ganeti = true"), "{params}");

    let down = lab_cmd(&["appliances", "down", "--dir", &dir_s]);
    assert!(down.status.success());
    assert!(!ssh("ganeti-2", "true").status.success(), "ganeti-2 is off");
    let state = rok_plan_lab::appliance::LabDir::open(&dir)
        .unwrap()
        .state()
        .unwrap();
    assert!(state.ganeti.pnodes.iter().all(|p| !p.up));
}
