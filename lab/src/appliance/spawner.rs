//! Starting the appliances' processes so that they die with the process that owns them.
//!
//! `PR_SET_PDEATHSIG` fires when the *thread* that forked the child ends, not the process:
//! a lab started from a short-lived thread (a test's helper thread, tokio's blocking
//! pool) would lose its appliances when that thread ends. So every attached child is
//! forked by one thread that lives as long as the process.

use std::os::unix::process::CommandExt;
use std::process::{Child, Command};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};

type Request = (Command, mpsc::Sender<std::io::Result<Child>>);

fn spawner() -> &'static Mutex<mpsc::Sender<Request>> {
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<Request>>> = OnceLock::new();
    SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Request>();
        // Never joined: it must outlive every lab of the process.
        let spawned = std::thread::Builder::new()
            .name("rok-lab-spawner".into())
            .spawn(move || {
                for (mut cmd, reply) in rx {
                    let _ = reply.send(cmd.spawn());
                }
            });
        if let Err(e) = spawned {
            // Without the thread every spawn reports this error through a closed channel.
            eprintln!("rok-plan-lab: cannot start the spawner thread: {e}");
        }
        Mutex::new(tx)
    })
}

/// Spawns `cmd` in a new process group; with `attached`, it gets SIGKILL when this
/// process ends (however it ends), otherwise it outlives it in a session of its own.
pub(crate) fn spawn(mut cmd: Command, attached: bool) -> std::io::Result<Child> {
    if !attached {
        // SAFETY: setsid is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setsid() < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        return cmd.spawn();
    }
    cmd.process_group(0);
    // SAFETY: prctl and getppid are async-signal-safe.
    unsafe {
        let parent = libc::getpid();
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent may have died between fork and prctl.
            if libc::getppid() != parent {
                libc::_exit(1);
            }
            Ok(())
        });
    }
    let (tx, rx) = mpsc::channel();
    let sent = spawner()
        .lock()
        .map_err(|_| std::io::Error::other("the spawner lock is poisoned"))?
        .send((cmd, tx));
    if sent.is_err() {
        return Err(std::io::Error::other("the spawner thread is gone"));
    }
    rx.recv()
        .map_err(|_| std::io::Error::other("the spawner thread is gone"))?
}
