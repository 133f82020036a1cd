//! Helpers: start a lab, run a command on an appliance, check how it ended.

use std::process::Output;

use rok_plan_lab::appliance::{ApplianceLab, ApplianceOptions};

/// A lab of `n` appliances with `tune` applied to the default options.
pub(crate) fn lab_with(n: usize, tune: impl FnOnce(&mut ApplianceOptions)) -> ApplianceLab {
    let mut opts = ApplianceOptions::nodes(n);
    tune(&mut opts);
    ApplianceLab::start(opts).expect("the appliance lab starts")
}

/// A default lab of `n` appliances.
pub(crate) fn lab(n: usize) -> ApplianceLab {
    lab_with(n, |_| {})
}

/// Runs the shell command `cmd` on `host` over ssh.
pub(crate) fn ssh(lab: &ApplianceLab, host: &str, cmd: &str) -> Output {
    lab.ssh(host).arg(cmd).output().expect("ssh runs")
}

fn show(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Runs `cmd` on `host`; it must succeed. Returns its stdout.
#[track_caller]
pub(crate) fn ok(lab: &ApplianceLab, host: &str, cmd: &str) -> String {
    let o = ssh(lab, host, cmd);
    assert!(o.status.success(), "{host}: {cmd}: {}", show(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Runs `cmd` on `host`; it must fail with status 1 and say `expected` on stderr.
#[track_caller]
pub(crate) fn refused(lab: &ApplianceLab, host: &str, cmd: &str, expected: &str) -> String {
    let o = ssh(lab, host, cmd);
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(1), "{host}: {cmd}: {}", show(&o));
    assert!(
        stderr.contains(expected),
        "{host}: {cmd}: expected {expected:?} in {}",
        show(&o)
    );
    stderr
}

/// Whether anything accepts connections on 127.0.0.1:`port`.
pub(crate) fn port_open(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
}

/// Whether process `pid` still runs (a zombie does not).
pub(crate) fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rfind(')')
            .and_then(|i| s.get(i + 2..i + 3))
            .is_some_and(|state| state != "Z")
    })
}

/// PIDs of live processes whose command line mentions `needle`.
pub(crate) fn processes_mentioning(needle: &str) -> Vec<u32> {
    let me = std::process::id();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| *p != me && alive(*p))
        .filter(|p| {
            std::fs::read(format!("/proc/{p}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(needle))
        })
        .collect()
}
