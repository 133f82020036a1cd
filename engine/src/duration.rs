//! Durations as plans write them: `"30s"`, `"10m"`, `"1h30m"`, `"500ms"`, `"2d"`.

use std::fmt;
use std::time::Duration;

/// Why a duration text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Nothing was given.
    #[error("a duration cannot be empty")]
    Empty,
    /// A number without a unit, or an unknown unit.
    #[error(
        "`{0}` is not a duration: use a number and a unit (ms, s, m, h, d), e.g. \"30s\" or \"1h30m\""
    )]
    Malformed(String),
    /// Too long to represent.
    #[error("`{0}` is too long")]
    Overflow(String),
}

/// Parses `"1h30m"` and the like. Units: `ms`, `s`, `m`, `h`, `d`; parts may repeat in any
/// order and are added.
///
/// # Errors
/// [`DurationError`] when the text is empty, malformed or overflows.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(DurationError::Empty);
    }
    let malformed = || DurationError::Malformed(text.to_string());
    let mut total: u128 = 0;
    let mut rest = trimmed;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(malformed());
        }
        let number: u128 = rest[..digits].parse().map_err(|_| malformed())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let millis_per_unit: u128 = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            _ => return Err(malformed()),
        };
        rest = &rest[unit_len..];
        total = number
            .checked_mul(millis_per_unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| DurationError::Overflow(text.to_string()))?;
    }
    let millis = u64::try_from(total).map_err(|_| DurationError::Overflow(text.to_string()))?;
    Ok(Duration::from_millis(millis))
}

/// Shows a duration the way plans write them (`1h30m`, `250ms`).
pub struct DisplayDuration(pub Duration);

impl fmt::Display for DisplayDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ms = self.0.as_millis();
        if ms == 0 {
            return f.write_str("0s");
        }
        for (unit, size) in [
            ("d", 86_400_000),
            ("h", 3_600_000),
            ("m", 60_000),
            ("s", 1_000),
            ("ms", 1),
        ] {
            if ms >= size {
                write!(f, "{}{unit}", ms / size)?;
                ms %= size;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_compound_durations() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1d2h"), Ok(Duration::from_secs(93_600)));
    }

    #[test]
    fn refuses_bad_durations() {
        assert!(parse_duration("").is_err());
        assert!(parse_duration("30").is_err());
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("3 weeks").is_err());
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("99999999999999999999999d").is_err());
    }

    #[test]
    fn displays_round_trip() {
        for text in ["1h30m", "250ms", "2d", "1m5s"] {
            let d = parse_duration(text).unwrap();
            assert_eq!(DisplayDuration(d).to_string(), text);
        }
    }
}
