//! `apt-get` of a physical Ganeti host (seed 003, Ganeti step 4):
//! `apt-get -o Dpkg::Options::="--force-confdef" -o Dpkg::Options::="--force-confold" install rok-common rok-base -y`.
//!
//! Only the Rok packages exist. Like the real one run without a terminal: without `-y`
//! it asks "Do you want to continue?" and aborts; without `--force-confold` or
//! `--force-confdef`, dpkg stops at the prompt about the locally modified conffile
//! `/etc/ganeti/rok/rok.conf` (which keeps its `tcp:` endpoints either way: the procedure
//! edits it afterwards). The candidate version is the release the lab upgrades to.

use super::super::ganeti::ROK_PACKAGES;
use super::{Refusal, Tool, ToolResult};

/// apt-get's exit status for errors.
const APT_ERROR: u8 = 100;

/// A parsed `apt-get` command line.
#[derive(Debug, Default)]
struct AptArgs<'a> {
    yes: bool,
    dpkg_options: Vec<&'a str>,
    command: Option<&'a str>,
    packages: Vec<&'a str>,
}

fn parse<'a>(args: &[&'a str]) -> Result<AptArgs<'a>, Refusal> {
    let mut parsed = AptArgs::default();
    let mut it = args.iter().copied();
    while let Some(a) = it.next() {
        let option = match a {
            "-o" | "--option" => Some(it.next().ok_or_else(|| {
                Refusal::with_code(APT_ERROR, "E: Option -o requires an argument")
            })?),
            _ => a
                .strip_prefix("-o")
                .filter(|o| !o.is_empty() && !a.starts_with("--")),
        };
        if let Some(o) = option {
            if let Some(v) = o.strip_prefix("Dpkg::Options::=") {
                // The seed quotes the value ("--force-confold"); the shell removes them.
                parsed.dpkg_options.push(v.trim_matches('"'));
            }
            continue;
        }
        match a {
            "-y" | "--yes" | "--assume-yes" => parsed.yes = true,
            "-q" | "-qq" | "--quiet" => {}
            _ if a.starts_with('-') => {
                return Err(Refusal::with_code(
                    APT_ERROR,
                    format!("E: Command line option '{a}' is not understood"),
                ));
            }
            _ if parsed.command.is_none() => parsed.command = Some(a),
            _ => parsed.packages.push(a),
        }
    }
    Ok(parsed)
}

/// `apt-get ARGS` on a physical host.
pub(super) fn run(tool: &mut Tool, args: &[&str]) -> ToolResult {
    let a = parse(args)?;
    match a.command {
        Some("update") => {
            tool.say("Reading package lists... Done");
            Ok(())
        }
        Some("install") => install(tool, &a),
        Some(other) => Err(Refusal::with_code(
            APT_ERROR,
            format!("E: Invalid operation {other}"),
        )),
        None => Err(Refusal::with_code(
            APT_ERROR,
            "usage: apt-get [options] install|update [packages]",
        )),
    }
}

fn install(tool: &mut Tool, a: &AptArgs<'_>) -> ToolResult {
    tool.say("Reading package lists... Done");
    tool.say("Building dependency tree... Done");
    if let Some(unknown) = a.packages.iter().find(|p| !ROK_PACKAGES.contains(p)) {
        return Err(Refusal::with_code(
            APT_ERROR,
            format!("E: Unable to locate package {unknown}"),
        ));
    }
    let host = tool.host.clone();
    let state = tool.read()?;
    let target = state
        .ganeti
        .target
        .ok_or_else(|| Refusal::new("the lab has no Ganeti cluster"))?;
    let pnode = state
        .ganeti
        .pnode(&host)
        .ok_or_else(|| Refusal::new(format!("{host} is not a physical Ganeti host")))?;
    let upgrades: Vec<&str> = a
        .packages
        .iter()
        .copied()
        .filter(|p| pnode.packages.get(*p).is_none_or(|v| *v < target))
        .collect();
    for p in a.packages.iter().filter(|p| !upgrades.contains(p)) {
        tool.say(format!("{p} is already the newest version ({target})."));
    }
    if upgrades.is_empty() {
        tool.say("0 upgraded, 0 newly installed, 0 to remove and 0 not upgraded.");
        return Ok(());
    }
    tool.say("The following packages will be upgraded:");
    tool.say(format!("  {}", upgrades.join(" ")));
    if !a.yes {
        tool.say("Do you want to continue? [Y/n] Abort.");
        return Err(Refusal::new("E: Aborted (no answer without -y)"));
    }
    let keeps_conffiles = a
        .dpkg_options
        .iter()
        .any(|o| *o == "--force-confold" || *o == "--force-confdef");
    if upgrades.contains(&"rok-common") && !keeps_conffiles {
        tool.say(format!("Setting up rok-common ({target}) ..."));
        tool.say("Configuration file '/etc/ganeti/rok/rok.conf'");
        tool.say(" ==> Modified (by you or by a script) since installation.");
        tool.say(" ==> Package distributor has shipped an updated version.");
        return Err(Refusal::with_code(
            APT_ERROR,
            "dpkg: error processing package rok-common (--configure): end of file on stdin at conffile prompt",
        ));
    }
    tool.update(|s| {
        let p = s
            .ganeti
            .pnode_mut(&host)
            .ok_or_else(|| Refusal::new(format!("{host} is not a physical Ganeti host")))?;
        for name in &upgrades {
            p.packages.insert((*name).to_string(), target);
        }
        Ok(())
    })?;
    for name in &upgrades {
        tool.say(format!("Unpacking {name} ({target}) ..."));
        tool.say(format!("Setting up {name} ({target}) ..."));
    }
    tool.say(format!(
        "{} upgraded, 0 newly installed, 0 to remove and 0 not upgraded.",
        upgrades.len()
    ));
    Ok(())
}
