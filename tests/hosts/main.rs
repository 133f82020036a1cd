//! The `ssh` and remote `file.edit` steps, and the appliance plans, against the lab's
//! simulated Rok appliances: real `sshd`s on 127.0.0.1, each in its own namespaces (its
//! own hostname, `/etc/rok`, processes), reached through the lab's ssh_config with strict
//! host key checking. The tests run the real `rok-plan` binary and check what an operator
//! would: exit codes, `status`, `logs`, and the hosts themselves (over ssh, and the lab's
//! state and journal of tool invocations).

#[path = "../run/support.rs"]
#[allow(dead_code)]
mod support;

mod appliance_crash;
mod appliance_plans;
mod ganeti;
mod remote_file_edit;
mod ssh_cancel;
mod ssh_failures;
mod ssh_steps;

use rok_plan_lab::appliance::{ApplianceLab, ApplianceOptions};

/// A lab of `n` appliances (`rok-node-1..n`) for one test; dropped at the test's end,
/// also when it fails.
pub(crate) fn appliances(n: usize) -> ApplianceLab {
    appliances_with(ApplianceOptions::nodes(n))
}

/// A lab with these options.
pub(crate) fn appliances_with(options: ApplianceOptions) -> ApplianceLab {
    ApplianceLab::start(options).unwrap_or_else(|e| panic!("the appliance lab starts: {e}"))
}

/// Runs `command` on `host` with plain ssh (the test's own look at the host).
#[track_caller]
pub(crate) fn on_host(lab: &ApplianceLab, host: &str, command: &str) -> String {
    let out = lab
        .ssh(host)
        .arg(command)
        .output()
        .unwrap_or_else(|e| panic!("ssh {host}: {e}"));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `rok-plan` arguments that point ssh at the lab.
pub(crate) fn ssh_args(lab: &ApplianceLab) -> Vec<String> {
    vec![
        "--ssh-config".to_string(),
        lab.ssh_config().display().to_string(),
    ]
}

/// `args` followed by [`ssh_args`], as `&str`s for the harness.
pub(crate) fn with_ssh<'a>(args: &[&'a str], ssh: &'a [String]) -> Vec<&'a str> {
    let mut v: Vec<&str> = args.to_vec();
    v.extend(ssh.iter().map(String::as_str));
    v
}

/// `execute plans/rok-vRELEASE.toml --params LAB-PARAMS EXTRA... --ssh-config LAB-CONFIG`:
/// a shipped appliance plan against this lab.
pub(crate) fn execute_shipped(hosts: &ApplianceLab, release: &str, extra: &[&str]) -> Vec<String> {
    let mut args = vec![
        "execute".to_string(),
        appliance_plans::shipped(&format!("rok-v{release}.toml")),
        "--params".to_string(),
        hosts.plan_params(release).display().to_string(),
    ];
    args.extend(extra.iter().map(|a| a.to_string()));
    args.extend(ssh_args(hosts));
    args
}

/// `&str`s of `args`, for the harness.
pub(crate) fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}
