//! The state a lab starts with: a healthy cluster at the starting version, every node
//! at that version, maps in the v3 format, the Gateway's migrations of that version.

use std::collections::BTreeMap;

use super::ganeti::initial_ganeti_state;
use super::options::ApplianceOptions;
use super::state::{ClusterState, LabState, MapState, NodeState};
use super::version::{V0_11, V0_12, Version};

/// The Gateway store migrations each release ships (cumulative): `showmigrations` lists
/// the ones of the host's BOOT image.
pub(crate) fn gateway_migrations(image: Version) -> Vec<&'static str> {
    let mut all = vec!["0001_initial", "0002_tasks", "0003_buckets"];
    if image >= V0_11 {
        all.extend(["0004_openstore_endpoints", "0005_etcd_credentials"]);
    }
    if image >= V0_12 {
        all.push("0006_map_v4_metadata");
    }
    all
}

/// The configuration key of a member's master capability (v0.11 and later).
pub(crate) fn master_capable_key(member: &str) -> String {
    format!("cluster.members.{member}.master_capable")
}

/// Before v0.11, master eligibility is one list: `cluster.master_candidates`.
pub(crate) const MASTER_CANDIDATES: &str = "cluster.master_candidates";

/// The map format key (`rok-config set composer.map_version=4`).
pub(crate) const MAP_VERSION: &str = "composer.map_version";

/// The configuration a cluster at `version` starts with.
pub(crate) fn initial_config(
    opts: &ApplianceOptions,
    version: Version,
) -> BTreeMap<String, String> {
    let mut config = BTreeMap::new();
    config.insert("cluster.name".to_string(), opts.cluster_name.clone());
    config.insert(MAP_VERSION.to_string(), "3".to_string());
    if version >= V0_11 {
        for h in &opts.hosts {
            config.insert(master_capable_key(h), "True".to_string());
        }
    } else if let Some(candidates) = &opts.initial_master_candidates {
        let list: Vec<String> = candidates
            .iter()
            .map(|c| format!("{c}.{}", opts.cluster_name))
            .collect();
        config.insert(MASTER_CANDIDATES.to_string(), list.join(","));
    }
    config
}

/// The whole initial state.
pub(crate) fn initial_state(opts: &ApplianceOptions) -> LabState {
    let version = opts.starting_version();
    let config = initial_config(opts, version);
    let master = opts.hosts[0].clone();
    let cluster = ClusterState {
        name: opts.cluster_name.clone(),
        version,
        master: master.clone(),
        members: opts.hosts.clone(),
        applied_config: config.clone(),
        config,
        config_generation: 1,
        // The v0.11 procedure ends by enabling it: a cluster that starts at v0.11 or later
        // finished that procedure.
        etcd_auth: version >= V0_11,
        maps: opts
            .maps
            .iter()
            .map(|name| MapState {
                name: name.clone(),
                format: 3,
            })
            .collect(),
        map_backups: Vec::new(),
        gateway_migrations: gateway_migrations(version)
            .into_iter()
            .map(str::to_string)
            .collect(),
        config_get_host_lines: opts.config_get_host_lines,
    };
    let nodes = opts
        .hosts
        .iter()
        .map(|h| NodeState {
            name: h.clone(),
            boot_image: opts.first_boot_image(h),
            version,
            gateway: opts.gateway && *h == master,
            up: false,
        })
        .collect();
    let ganeti = opts
        .ganeti
        .as_ref()
        .map(|g| initial_ganeti_state(opts, g))
        .unwrap_or_default();
    LabState {
        cluster,
        nodes,
        ganeti,
    }
}

/// `/etc/rok/daemons.conf` of `host` at `version`: OpenStore endpoints in the format of
/// that version (tcp:// before v0.11, http:// with roles after: seed 003), and an
/// `[s3d.0]` section on hosts that run the S3 daemon.
pub(crate) fn daemons_conf(opts: &ApplianceOptions, host: &str, version: Version) -> String {
    let master = format!("{}.{}", opts.hosts[0], opts.cluster_name);
    let role = if host == opts.hosts[0] {
        "master"
    } else {
        "slave"
    };
    let mut s = format!("# /etc/rok/daemons.conf of {host} (a simulated Rok appliance)\n\n");
    if version >= V0_11 {
        s.push_str(&format!(
            "[openstore.0]\nargs = -C role={role},http://{master}:7400 -L role={role},http://0.0.0.0:7401\n\n\
             [composerd.0]\nopenstore = http://127.0.0.1:7401\n\n\
             [extcontroller.0]\nargs = --controller-listen role=slave,http://0.0.0.0:7402\n"
        ));
    } else {
        s.push_str(&format!(
            "[openstore.0]\nargs = -C tcp://{master}:7400 -L tcp://0.0.0.0:7401\n\n\
             [composerd.0]\nopenstore = tcp://127.0.0.1:7401\n\n\
             [extcontroller.0]\nargs = --bind-http 0.0.0.0:7402\n"
        ));
    }
    if opts.s3d_host_list().iter().any(|h| h == host) {
        s.push_str(&format!(
            "\n[s3d.0]\nargs = --no-versioning\nbucket = rok-{}\n",
            opts.cluster_name
        ));
    }
    s
}
