//! Plan parameters that fit a lab: plans/rok-v0.11.toml and plans/rok-v0.12.toml run
//! against it with `--params DIR/params-rok-vX.toml --ssh-config DIR/ssh_config`.

use super::options::ApplianceOptions;
use super::paths::LabPaths;

fn list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| format!("{s:?}")).collect();
    format!("[{}]", quoted.join(", "))
}

/// Parameters for plans/rok-v0.12.toml.
pub(crate) fn v0_12(opts: &ApplianceOptions) -> String {
    format!(
        "# Parameters of plans/rok-v0.12.toml for this lab (written by rok-plan-lab)\n\
         master = {master:?}\n\
         slaves = {slaves}\n\
         s3d_hosts = {s3d}\n",
        master = opts.hosts[0],
        slaves = list(&opts.hosts[1..]),
        s3d = list(&opts.s3d_host_list()),
    )
}

/// Parameters for plans/rok-v0.11.toml: the Gateway is stopped and started with the
/// lab's `rok-gw-service` (the appliances have no systemd). With Ganeti, its branch is on
/// (the passwords are not here: they are secrets, given as ROKE_PASSWORD / RAPI_PASSWORD).
pub(crate) fn v0_11(opts: &ApplianceOptions, paths: &LabPaths) -> String {
    let mut text = format!(
        "# Parameters of plans/rok-v0.11.toml for this lab (written by rok-plan-lab)\n\
         master = {master:?}\n\
         slaves = {slaves}\n\
         rok_clustername = {name:?}\n\
         gateway = {gateway}\n\
         gateway_stop_command = \"rok-gw-service stop\"\n\
         gateway_start_command = \"rok-gw-service start\"\n",
        master = opts.hosts[0],
        slaves = list(&opts.hosts[1..]),
        name = opts.cluster_name,
        gateway = opts.gateway,
    );
    if let Some(g) = &opts.ganeti {
        text.push_str(&format!(
            "ganeti = true\n\
             ganeti_cluster_name = {cluster:?}\n\
             ganeti_rapi_user = {user:?}\n\
             ganeti_scripts_dir = {dir:?}\n\
             ganeti_extra_args = \"--instance {master}\"\n\
             ganeti_master_pnode = {pnode:?}\n\
             ganeti_pnodes = {others}\n",
            cluster = g.cluster_name,
            user = g.rapi_user,
            dir = paths.ganeti_scripts_dir().display().to_string(),
            master = opts.hosts[0],
            pnode = g.master_pnode(),
            others = list(g.other_pnodes()),
        ));
    }
    text
}
