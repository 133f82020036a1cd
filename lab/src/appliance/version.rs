//! Rok release versions (`0.11.0`), as node, cluster and BOOT image versions.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::error::ApplianceError;

/// A Rok release, `MAJOR.MINOR.PATCH`. Serialized as its string.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Version {
    /// Major number.
    pub major: u32,
    /// Minor number (the upgrade procedures go 0.10 -> 0.11 -> 0.12).
    pub minor: u32,
    /// Patch number.
    pub patch: u32,
}

impl Version {
    /// `major.minor.patch`.
    pub const fn new(major: u32, minor: u32, patch: u32) -> Self {
        Self {
            major,
            minor,
            patch,
        }
    }

    /// The release before this one in the upgrade chain (`0.12.0` -> `0.11.0`): upgrade
    /// tools of this version upgrade from that one.
    pub fn previous(self) -> Self {
        Self::new(self.major, self.minor.saturating_sub(1), 0)
    }

    /// The name of this release's upgrade tool, e.g. `rok-cluster-upgrade-v0.12.0`.
    pub fn upgrade_tool(self) -> String {
        format!("rok-cluster-upgrade-v{self}")
    }

    /// Reads the version out of an upgrade tool's name (`rok-cluster-upgrade-v0.12.0`).
    pub fn of_upgrade_tool(name: &str) -> Option<Self> {
        name.strip_prefix("rok-cluster-upgrade-v")?.parse().ok()
    }
}

/// Rok v0.10.0, the release before the v0.11 procedure.
pub const V0_10: Version = Version::new(0, 10, 0);
/// Rok v0.11.0 (seed 003).
pub const V0_11: Version = Version::new(0, 11, 0);
/// Rok v0.12.0 (seed 002).
pub const V0_12: Version = Version::new(0, 12, 0);

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

impl FromStr for Version {
    type Err = ApplianceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || ApplianceError::BadVersion(s.to_string());
        let mut parts = s.trim_start_matches('v').split('.');
        let mut next = || -> Result<u32, ApplianceError> {
            parts.next().ok_or_else(bad)?.parse().map_err(|_| bad())
        };
        let v = Self::new(next()?, next()?, next()?);
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(v)
    }
}

impl TryFrom<String> for Version {
    type Error = ApplianceError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Version> for String {
    fn from(v: Version) -> Self {
        v.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_prints_and_orders() {
        let v: Version = "0.12.0".parse().unwrap();
        assert_eq!(v, V0_12);
        assert_eq!(v.to_string(), "0.12.0");
        assert_eq!(v.previous(), V0_11);
        assert!(V0_10 < V0_11);
        assert!("0.12".parse::<Version>().is_err());
        assert_eq!(
            Version::of_upgrade_tool("rok-cluster-upgrade-v0.11.0"),
            Some(V0_11)
        );
    }
}
