//! ssh failures in words an operator can act on, each naming the host.

use std::io::ErrorKind;

/// Why connecting to `host` failed, from what ssh said (openssh passes its log through).
pub(crate) fn connect_error(host: &str, err: &openssh::Error) -> String {
    let (kind, said) = match err {
        openssh::Error::Connect(e) | openssh::Error::Master(e) => (Some(e.kind()), e.to_string()),
        other => (None, other.to_string()),
    };
    let said = said.trim();
    if said.contains("REMOTE HOST IDENTIFICATION HAS CHANGED")
        || said.contains("Host key for") && said.contains("has changed")
    {
        return format!(
            "ssh {host}: the host key CHANGED since it was recorded in known_hosts (a reinstalled host, or someone in the middle); refusing to connect. Check the new key out of band, then update known_hosts"
        );
    }
    if said.contains("Host key verification failed") || said.contains("host key is known") {
        return format!(
            "ssh {host}: the host key is not in known_hosts, and host keys are checked strictly. Check its fingerprint and add it (ssh-keyscan), or accept new keys with --ssh-accept-new-host-keys or `host_key_checking = \"accept-new\"` on the step"
        );
    }
    if said.contains("Could not resolve hostname") {
        return format!("ssh {host}: cannot resolve the host name ({said})");
    }
    match kind {
        Some(ErrorKind::ConnectionRefused) => {
            format!("ssh {host}: connection refused (is sshd running, is the port right?)")
        }
        Some(ErrorKind::PermissionDenied) => format!(
            "ssh {host}: authentication failed ({said}); rok-plan uses keys or an agent only (BatchMode), never a password prompt"
        ),
        Some(ErrorKind::TimedOut) => format!("ssh {host}: connecting timed out"),
        _ if said.contains("timed out") => format!("ssh {host}: connecting timed out ({said})"),
        _ => format!("ssh {host}: cannot connect: {}", one_line(said)),
    }
}

/// ssh's multi-line messages on one line, without its banner noise.
fn one_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("@@@"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connect(kind: ErrorKind, msg: &str) -> openssh::Error {
        openssh::Error::Connect(std::io::Error::new(kind, msg))
    }

    #[test]
    fn each_failure_names_the_host_and_what_to_do() {
        let unknown = connect(
            ErrorKind::ConnectionAborted,
            "No ED25519 host key is known for [127.0.0.1]:2222 and you have requested strict checking.\r\nHost key verification failed.",
        );
        let m = connect_error("rok-1", &unknown);
        assert!(
            m.starts_with("ssh rok-1: the host key is not in known_hosts"),
            "{m}"
        );
        assert!(m.contains("--ssh-accept-new-host-keys"), "{m}");

        let changed = connect(
            ErrorKind::ConnectionAborted,
            "@@@@@@@\r\n@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\r\nHost key verification failed.",
        );
        assert!(connect_error("rok-2", &changed).contains("rok-2: the host key CHANGED"));

        let refused = connect(
            ErrorKind::ConnectionRefused,
            "connect to host 127.0.0.1 port 1: Connection refused",
        );
        assert_eq!(
            connect_error("rok-3", &refused),
            "ssh rok-3: connection refused (is sshd running, is the port right?)"
        );
        let denied = connect(
            ErrorKind::PermissionDenied,
            "root@127.0.0.1: Permission denied (publickey).",
        );
        assert!(connect_error("rok-4", &denied).starts_with("ssh rok-4: authentication failed"));
    }
}
