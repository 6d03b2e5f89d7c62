//! Just enough of the Dockerfile grammar to know which images a Dockerfile is built `FROM`:
//! line continuations, comments, parser directives (`# escape=`), `ARG`s declared before the
//! first `FROM` with their defaults (overridden by build args), `--platform`, and stage names
//! (`FROM base AS build` then `FROM build` refers to the stage, not an image).

use std::collections::BTreeMap;

/// The external images a Dockerfile's stages start from, in order, without stage references and
/// `scratch`. References whose variables cannot be resolved are left out (they cannot name an
/// image of this repository with any certainty).
pub fn base_images(text: &str, build_args: &BTreeMap<String, String>) -> Vec<String> {
    let escape = escape_char(text);
    let mut args: BTreeMap<String, String> = BTreeMap::new();
    let mut stages: Vec<String> = Vec::new();
    let mut bases = Vec::new();
    let mut seen_from = false;
    for instruction in logical_lines(text, escape) {
        let mut words = instruction.split_whitespace();
        let Some(keyword) = words.next() else {
            continue;
        };
        let rest: Vec<&str> = words.collect();
        if keyword.eq_ignore_ascii_case("ARG") && !seen_from {
            for decl in rest {
                let (name, default) = match decl.split_once('=') {
                    Some((n, d)) => (n, Some(unquote(d))),
                    None => (decl, None),
                };
                let value = build_args
                    .get(name)
                    .cloned()
                    .or(default.map(str::to_string));
                if let Some(v) = value {
                    args.insert(name.to_string(), v);
                }
            }
        } else if keyword.eq_ignore_ascii_case("FROM") {
            seen_from = true;
            let mut it = rest.iter().filter(|w| !w.starts_with("--"));
            let Some(image) = it.next() else { continue };
            if let (Some(as_kw), Some(stage)) = (it.next(), it.next())
                && as_kw.eq_ignore_ascii_case("AS")
            {
                stages.push(stage.to_ascii_lowercase());
            }
            let Some(image) = substitute(image, &args) else {
                continue;
            };
            let lower = image.to_ascii_lowercase();
            if lower == "scratch" || is_earlier_stage(&stages, &lower, &rest) {
                continue;
            }
            bases.push(image);
        }
    }
    bases
}

/// Whether `name` refers to a stage declared by an earlier `FROM` (not the current one's own
/// `AS` name, which was pushed just before this check).
fn is_earlier_stage(stages: &[String], name: &str, current: &[&str]) -> bool {
    let own = current
        .iter()
        .position(|w| w.eq_ignore_ascii_case("AS"))
        .and_then(|i| current.get(i + 1))
        .map(|s| s.to_ascii_lowercase());
    let earlier = match own {
        Some(_) => &stages[..stages.len() - 1],
        None => stages,
    };
    earlier.iter().any(|s| s == name)
}

fn escape_char(text: &str) -> char {
    for line in text.lines() {
        let t = line.trim();
        let Some(d) = t.strip_prefix('#') else { break };
        let d = d.trim();
        if let Some(v) = d.strip_prefix("escape").map(str::trim_start)
            && let Some(v) = v.strip_prefix('=')
        {
            return if v.trim() == "`" { '`' } else { '\\' };
        }
        if !d.contains('=') {
            break;
        }
    }
    '\\'
}

/// Joins continued lines and drops comments and empty lines.
fn logical_lines(text: &str, escape: char) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with('#') || (t.is_empty() && !current.is_empty()) {
            continue;
        }
        if let Some(body) = t.strip_suffix(escape) {
            current.push_str(body);
            current.push(' ');
        } else {
            current.push_str(t);
            if !current.trim().is_empty() {
                out.push(std::mem::take(&mut current));
            }
            current.clear();
        }
    }
    if !current.trim().is_empty() {
        out.push(current);
    }
    out
}

fn unquote(s: &str) -> &str {
    let s = s.trim();
    s.strip_prefix('"')
        .and_then(|r| r.strip_suffix('"'))
        .or_else(|| s.strip_prefix('\'').and_then(|r| r.strip_suffix('\'')))
        .unwrap_or(s)
}

/// `$VAR`, `${VAR}` and `${VAR:-default}`; `None` when a variable has no value.
fn substitute(s: &str, args: &BTreeMap<String, String>) -> Option<String> {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let (expr, remaining) = if let Some(b) = after.strip_prefix('{') {
            let end = b.find('}')?;
            (&b[..end], &b[end + 1..])
        } else {
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            (&after[..end], &after[end..])
        };
        let (name, default) = match expr.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (expr, None),
        };
        let value = args
            .get(name)
            .filter(|v| !v.is_empty())
            .map(String::as_str)
            .or(default)?;
        out.push_str(value);
        rest = remaining;
    }
    out.push_str(rest);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bases(t: &str) -> Vec<String> {
        base_images(t, &BTreeMap::new())
    }

    #[test]
    fn plain_and_stages() {
        assert_eq!(
            bases(
                "FROM acme/base:1 AS build\nRUN x\nFROM build\nFROM scratch\nCOPY --from=build / /\n"
            ),
            vec!["acme/base:1"]
        );
        assert_eq!(
            bases("from --platform=$BUILDPLATFORM golang:1.22 as b\n"),
            vec!["golang:1.22"]
        );
    }

    #[test]
    fn args_and_continuations() {
        let t = "# syntax=docker/dockerfile:1\nARG BASE=acme/base\nARG TAG\nFROM ${BASE}:${TAG:-latest} \\\n  AS x\nFROM $UNKNOWN\n";
        assert_eq!(bases(t), vec!["acme/base:latest"]);
        let args = BTreeMap::from([("BASE".to_string(), "acme/other".to_string())]);
        assert_eq!(base_images(t, &args), vec!["acme/other:latest"]);
    }

    #[test]
    fn escape_directive() {
        let t = "# escape=`\nFROM `\n  acme/base\n";
        assert_eq!(bases(t), vec!["acme/base"]);
    }

    #[test]
    fn stage_named_like_an_image() {
        // `FROM base AS base` names its own stage: `base` is still the image.
        assert_eq!(bases("FROM base AS base\nFROM base\n"), vec!["base"]);
    }
}
