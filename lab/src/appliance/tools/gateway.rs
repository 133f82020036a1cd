//! The Rok Gateway (seed 003 "Rok Gateway"): `rok-gw-manage migrate|showmigrations`, the
//! lab's `rok-gw-service start|stop|status` (the appliances have no service manager),
//! and `gunicorn`, a process that only exists to be found by `pgrep -f gunicorn`.

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::super::initial::gateway_migrations;
use super::{Refusal, Tool, ToolResult};

const MIGRATE_HELP: &str = "usage: rok-gw-manage migrate [--help]\n\nApplies the migrations of the Gateway's store. Stop the Gateway gunicorn process and daemons first.";

/// The simulated gunicorn: sleeps until killed.
pub(super) fn gunicorn() -> ! {
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

/// PIDs of the gunicorn processes this host can see (inside an appliance /proc is its
/// own PID namespace's).
fn gunicorn_pids() -> Vec<i32> {
    let me = std::process::id();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| *pid != me)
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
                let argv0 = c.split(|b| *b == 0).next().unwrap_or_default();
                argv0.rsplit(|b| *b == b'/').next() == Some(b"gunicorn".as_slice())
            })
        })
        .filter_map(|pid| i32::try_from(pid).ok())
        .collect()
}

fn require_gateway_node(tool: &Tool) -> Result<(), Refusal> {
    let state = tool.read()?;
    if state.node(&tool.host).is_some_and(|n| n.gateway) {
        Ok(())
    } else {
        Err(Refusal::new(format!(
            "the Rok Gateway does not run on {}",
            tool.host
        )))
    }
}

pub(super) fn manage(tool: &mut Tool, args: &[&str]) -> ToolResult {
    match args {
        ["migrate", "--help"] => {
            tool.say(MIGRATE_HELP);
            Ok(())
        }
        ["migrate"] => migrate(tool),
        ["showmigrations"] => show(tool),
        _ => Err(Refusal::usage(
            "usage: rok-gw-manage migrate [--help] | rok-gw-manage showmigrations",
        )),
    }
}

fn show(tool: &mut Tool) -> ToolResult {
    require_gateway_node(tool)?;
    let state = tool.read()?;
    let known = gateway_migrations(tool.boot_image(&state)?);
    tool.say("gateway");
    for m in known {
        let mark = if state.cluster.gateway_migrations.iter().any(|a| a == m) {
            "X"
        } else {
            " "
        };
        tool.say(format!(" [{mark}] {m}"));
    }
    Ok(())
}

fn migrate(tool: &mut Tool) -> ToolResult {
    require_gateway_node(tool)?;
    if let Some(pid) = gunicorn_pids().first() {
        return Err(Refusal::new(format!(
            "the Gateway is running (gunicorn, pid {pid}): stop the gunicorn process and the Gateway daemons before migrating its store"
        )));
    }
    let host = tool.host.clone();
    let applied = tool.update(|state| {
        let image = state
            .node(&host)
            .map(|n| n.boot_image)
            .ok_or_else(|| Refusal::new(format!("{host} is not a member")))?;
        let mut applied = Vec::new();
        for m in gateway_migrations(image) {
            if !state.cluster.gateway_migrations.iter().any(|a| a == m) {
                state.cluster.gateway_migrations.push(m.to_string());
                applied.push(m);
            }
        }
        Ok(applied)
    })?;
    tool.say("Operations to perform:\n  Apply all migrations: gateway\nRunning migrations:");
    if applied.is_empty() {
        tool.say("  No migrations to apply.");
    }
    for m in applied {
        tool.say(format!("  Applying gateway.{m}... OK"));
    }
    Ok(())
}

pub(super) fn service(tool: &mut Tool, args: &[&str]) -> ToolResult {
    require_gateway_node(tool)?;
    match args {
        ["start"] => {
            if let Some(pid) = gunicorn_pids().first() {
                tool.say(format!(
                    "The Gateway is already running (gunicorn, pid {pid})."
                ));
                return Ok(());
            }
            let exe = tool.paths.bin_dir(&tool.host).join("gunicorn");
            let mut cmd = Command::new(&exe);
            cmd.stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            // SAFETY: setsid is async-signal-safe. A session of its own: the daemon must
            // not die with the ssh command that started it.
            unsafe {
                cmd.pre_exec(|| {
                    libc::setsid();
                    Ok(())
                });
            }
            let child = cmd
                .spawn()
                .map_err(|e| Refusal::new(format!("cannot start {}: {e}", exe.display())))?;
            tool.say(format!(
                "Started the Gateway (gunicorn, pid {}).",
                child.id()
            ));
            Ok(())
        }
        ["stop"] => {
            let pids = gunicorn_pids();
            for pid in &pids {
                // SAFETY: kill has no memory effects.
                unsafe { libc::kill(*pid, libc::SIGTERM) };
            }
            let deadline = Instant::now() + Duration::from_secs(5);
            while !gunicorn_pids().is_empty() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            if let Some(pid) = gunicorn_pids().first() {
                return Err(Refusal::new(format!("gunicorn (pid {pid}) did not stop")));
            }
            tool.say(if pids.is_empty() {
                "The Gateway is not running."
            } else {
                "Stopped the Gateway."
            });
            Ok(())
        }
        ["status"] => match gunicorn_pids().first() {
            Some(pid) => {
                tool.say(format!("running (gunicorn, pid {pid})"));
                Ok(())
            }
            None => {
                tool.say("stopped");
                Err(Refusal {
                    code: 3,
                    message: "the Gateway is not running".into(),
                })
            }
        },
        _ => Err(Refusal::usage(
            "usage: rok-gw-service start | stop | status",
        )),
    }
}
