//! [`GanetiOptions`]: the Ganeti cluster a lab's appliances run on, when they run on one.

/// The Ganeti cluster under the appliances (seed 003, "RokE on a Ganeti cluster"): its
/// physical hosts ("pnodes") are extra sshd hosts of the lab, the appliances are its
/// instances, and `rok-cluster-upgrade-ganeti` is a Python script the lab writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GanetiOptions {
    /// The physical hosts' names (hostnames, ssh aliases). The first one runs the RokE
    /// master instance. At least two: the upgrade script evacuates the first one onto the
    /// others. Default `ganeti-1..2`.
    pub pnodes: Vec<String>,
    /// The Ganeti cluster name: the RAPI host (`--rapi-host`).
    pub cluster_name: String,
    /// The RAPI user (`--rapi-user`).
    pub rapi_user: String,
    /// The RAPI password the script expects in `RAPI_PASSWORD`.
    pub rapi_password: String,
    /// The RokE root password the script expects in `ROKE_PASSWORD`.
    pub roke_password: String,
}

impl Default for GanetiOptions {
    fn default() -> Self {
        Self::pnodes(2)
    }
}

impl GanetiOptions {
    /// `n` physical hosts `ganeti-1..n`, the rest default.
    pub fn pnodes(n: usize) -> Self {
        Self {
            pnodes: (1..=n).map(|i| format!("ganeti-{i}")).collect(),
            cluster_name: "ganeti.rok-lab.internal".into(),
            rapi_user: "rok-upgrade".into(),
            rapi_password: "lab-rapi-secret-5d1c".into(),
            roke_password: "lab-roke-secret-9b7e".into(),
        }
    }

    /// The physical host of the RokE master instance (the first one).
    pub fn master_pnode(&self) -> &str {
        self.pnodes.first().map_or("", String::as_str)
    }

    /// Every other physical host (the plan's `ganeti_pnodes`).
    pub fn other_pnodes(&self) -> &[String] {
        self.pnodes.get(1..).unwrap_or_default()
    }
}
