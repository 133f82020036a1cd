//! The text of the ssh files the lab writes: each appliance's sshd_config, and the
//! client side (ssh_config, known_hosts) that reaches every appliance by its name.

use std::fmt::Write;

use super::options::KnownHostEntry;
use super::paths::LabPaths;

/// What the client side needs to know of one appliance.
#[derive(Clone, Debug)]
pub(crate) struct HostEntry {
    pub(crate) name: String,
    pub(crate) port: u16,
    /// `TYPE BASE64` of the key known_hosts gets (the real one or a wrong one).
    pub(crate) known_key: Option<String>,
}

/// sshd_config of `host`: its own key, port and files; nothing of /etc/ssh is read.
pub(crate) fn sshd_config(
    paths: &LabPaths,
    host: &str,
    port: u16,
    max_sessions: u32,
    log_level: &str,
) -> String {
    format!(
        "# sshd of the simulated Rok appliance {host} (written by rok-plan-lab)\n\
         Port {port}\n\
         ListenAddress 127.0.0.1\n\
         HostKey {host_key}\n\
         PidFile {pid}\n\
         AuthorizedKeysFile {authorized}\n\
         # The lab lives under /tmp (world-writable parents).\n\
         StrictModes no\n\
         PubkeyAuthentication yes\n\
         PasswordAuthentication no\n\
         KbdInteractiveAuthentication no\n\
         PermitRootLogin prohibit-password\n\
         UsePAM no\n\
         UseDNS no\n\
         PrintMotd no\n\
         PrintLastLog no\n\
         X11Forwarding no\n\
         MaxSessions {max_sessions}\n\
         # Tests open many connections at once.\n\
         MaxStartups 100:30:200\n\
         Subsystem sftp internal-sftp\n\
         LogLevel {log_level}\n",
        host_key = paths.host_key(host).display(),
        pid = paths.sshd_pid(host).display(),
        authorized = paths.authorized_keys().display(),
    )
}

/// ssh_config with one `Host` block per appliance. StrictHostKeyChecking is left to the
/// caller (the product decides it).
pub(crate) fn ssh_config(paths: &LabPaths, user: &str, hosts: &[HostEntry]) -> String {
    let mut s = String::from("# Appliances of a rok-plan lab: ssh -F THIS_FILE HOST\n");
    for h in hosts {
        let _ = write!(
            s,
            "\nHost {name}\n  HostName 127.0.0.1\n  Port {port}\n  User {user}\n  IdentityFile {key}\n  IdentitiesOnly yes\n  HostKeyAlias {name}\n  UserKnownHostsFile {kh}\n  BatchMode yes\n",
            name = h.name,
            port = h.port,
            key = paths.client_key().display(),
            kh = paths.known_hosts().display(),
        );
    }
    s
}

/// known_hosts: an entry per appliance keyed by its alias, unless left out.
pub(crate) fn known_hosts(hosts: &[HostEntry]) -> String {
    hosts
        .iter()
        .filter_map(|h| h.known_key.as_ref().map(|k| format!("{} {k}\n", h.name)))
        .collect()
}

/// Which key known_hosts gets for an entry.
pub(crate) fn known_key(entry: KnownHostEntry, real: &str, wrong: &str) -> Option<String> {
    match entry {
        KnownHostEntry::Correct => Some(real.to_string()),
        KnownHostEntry::Missing => None,
        KnownHostEntry::Wrong => Some(wrong.to_string()),
    }
}
