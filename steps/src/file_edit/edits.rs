//! The edits of `file.edit`, as a pure function of the text: easy to test, and the same
//! locally and (later) over ssh.

use regex::Regex;
use serde_json::Value;

/// One edit, parsed from the step's rendered fields.
#[derive(Debug, Clone)]
pub(crate) enum Edit {
    /// Replace every match of `pattern` with `with` (`$1` for groups).
    Replace { pattern: Regex, with: String },
    /// `key = value` in `[section]`, other lines and comments untouched.
    Ini {
        section: String,
        key: String,
        value: String,
    },
    /// The line must be present.
    EnsureLine(String),
}

/// The edits of the fields `replace`, `ini` and `ensure_line`, in that order.
pub(crate) fn parse_edits(fields: &serde_json::Map<String, Value>) -> Result<Vec<Edit>, String> {
    let mut edits = Vec::new();
    let text = |v: &Value, k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    for r in fields
        .get("replace")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let pattern = text(r, "pattern");
        let pattern = Regex::new(&pattern)
            .map_err(|e| format!("`replace` pattern `{pattern}` is not a valid regex: {e}"))?;
        edits.push(Edit::Replace {
            pattern,
            with: text(r, "with"),
        });
    }
    for i in fields
        .get("ini")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        edits.push(Edit::Ini {
            section: text(i, "section"),
            key: text(i, "key"),
            value: text(i, "value"),
        });
    }
    match fields.get("ensure_line") {
        Some(Value::String(l)) => edits.push(Edit::EnsureLine(l.clone())),
        Some(Value::Array(ls)) => edits.extend(
            ls.iter()
                .filter_map(Value::as_str)
                .map(|l| Edit::EnsureLine(l.to_string())),
        ),
        _ => {}
    }
    if edits.is_empty() {
        return Err("nothing to do: give `replace`, `ini` or `ensure_line`".into());
    }
    Ok(edits)
}

/// `text` with every edit applied in order.
pub(crate) fn apply(text: &str, edits: &[Edit]) -> String {
    edits.iter().fold(text.to_string(), |t, e| match e {
        Edit::Replace { pattern, with } => pattern.replace_all(&t, with.as_str()).into_owned(),
        Edit::Ini {
            section,
            key,
            value,
        } => set_ini(&t, section, key, value),
        Edit::EnsureLine(line) => {
            if t.lines().any(|l| l == line) {
                t
            } else {
                let sep = if t.is_empty() || t.ends_with('\n') {
                    ""
                } else {
                    "\n"
                };
                format!("{t}{sep}{line}\n")
            }
        }
    })
}

fn section_name(line: &str) -> Option<&str> {
    let l = line.trim();
    l.strip_prefix('[')?.strip_suffix(']').map(str::trim)
}

fn key_of(line: &str) -> Option<&str> {
    let l = line.trim_start();
    if l.starts_with('#') || l.starts_with(';') {
        return None;
    }
    let (k, _) = l.split_once('=')?;
    Some(k.trim())
}

/// Sets `key = value` in `[section]`: the key's line is rewritten in place (keeping its
/// indentation); a missing key goes after the section's last line that is not blank; a
/// missing section is added at the end.
fn set_ini(text: &str, section: &str, key: &str, value: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.iter().position(|l| section_name(l) == Some(section));
    let Some(start) = start else {
        let sep = if text.is_empty() || text.ends_with("\n\n") {
            ""
        } else if text.ends_with('\n') {
            "\n"
        } else {
            "\n\n"
        };
        return format!("{text}{sep}[{section}]\n{key} = {value}\n");
    };
    let end = lines[start + 1..]
        .iter()
        .position(|l| section_name(l).is_some())
        .map_or(lines.len(), |p| start + 1 + p);
    let mut out: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    if let Some(i) = (start + 1..end).find(|&i| key_of(lines[i]) == Some(key)) {
        let indent: String = lines[i].chars().take_while(|c| c.is_whitespace()).collect();
        out[i] = format!("{indent}{key} = {value}");
    } else {
        let last = (start..end)
            .rev()
            .find(|&i| !lines[i].trim().is_empty())
            .unwrap_or(start);
        out.insert(last + 1, format!("{key} = {value}"));
    }
    let mut joined = out.join("\n");
    if text.ends_with('\n') || text.is_empty() {
        joined.push('\n');
    }
    joined
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAEMONS: &str = "# Rok daemons\n[s3d.0]\n  endpoint = http://s3\n# keep this comment\nno-versioning = yes\n\n[gw]\nport = 80\n";

    #[test]
    fn ini_adds_a_key_to_its_section_and_touches_nothing_else() {
        let out = set_ini(DAEMONS, "s3d.0", "assume-no-versioning", "true");
        assert_eq!(
            out,
            "# Rok daemons\n[s3d.0]\n  endpoint = http://s3\n# keep this comment\nno-versioning = yes\nassume-no-versioning = true\n\n[gw]\nport = 80\n"
        );
        assert_eq!(
            set_ini(&out, "s3d.0", "assume-no-versioning", "true"),
            out,
            "idempotent"
        );
    }

    #[test]
    fn ini_rewrites_a_key_in_place_and_adds_missing_sections() {
        let out = set_ini(DAEMONS, "s3d.0", "endpoint", "https://s3");
        assert!(out.contains("\n  endpoint = https://s3\n"), "{out}");
        let out = set_ini(DAEMONS, "new", "a", "b");
        assert!(out.ends_with("port = 80\n\n[new]\na = b\n"), "{out}");
        // A key of the same name in another section is not touched.
        assert!(set_ini(DAEMONS, "gw", "endpoint", "x").contains("  endpoint = http://s3\n"));
    }

    #[test]
    fn replace_and_ensure_line() {
        let edits = vec![
            Edit::Replace {
                pattern: Regex::new("tcp:").unwrap(),
                with: "http:".into(),
            },
            Edit::EnsureLine("role=master".into()),
        ];
        let out = apply("a tcp://x\nb tcp://y", &edits);
        assert_eq!(out, "a http://x\nb http://y\nrole=master\n");
        assert_eq!(apply(&out, &edits), out, "applying again changes nothing");
    }
}
