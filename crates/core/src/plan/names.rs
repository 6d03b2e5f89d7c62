//! Docker reference grammar, tag rules and the semver tags users expect.
//!
//! Grammar (distribution/reference): a name is an optional domain (`host[:port]`) followed by
//! `/`-separated path components `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`, at most 255 characters in
//! all; a tag is `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.

/// A path component of a repository name.
pub fn is_path_component(c: &str) -> bool {
    let b = c.as_bytes();
    if b.is_empty() || !is_alnum(b[0]) || !is_alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if is_alnum(b[i]) {
            i += 1;
            continue;
        }
        // A separator run: `.`, `_`, `__` or one or more `-`, between alphanumerics.
        let start = i;
        while i < b.len() && !is_alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

fn is_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

fn is_domain(d: &str) -> bool {
    let (host, port) = match d.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (d, None),
    };
    if let Some(p) = port
        && (p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()))
    {
        return false;
    }
    !host.is_empty()
        && host.split('.').all(|l| {
            !l.is_empty()
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

/// Whether the first component of a reference is a registry domain (Docker's own rule).
fn looks_like_domain(first: &str) -> bool {
    first.contains('.')
        || first.contains(':')
        || first == "localhost"
        || first.bytes().any(|b| b.is_ascii_uppercase())
}

/// A namespace: `acme`, `ghcr.io/acme`, `localhost:5000/team/x`.
pub fn check_namespace(ns: &str) -> Result<(), String> {
    if ns.is_empty() {
        return Err("the image namespace may not be empty".into());
    }
    if ns.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err("must be lowercase".into());
    }
    let mut parts = ns.split('/');
    let first = parts.next().unwrap_or_default();
    let rest: Vec<&str> = if looks_like_domain(first) {
        if !is_domain(first) {
            return Err(format!("`{first}` is not a valid registry host"));
        }
        parts.collect()
    } else {
        ns.split('/').collect()
    };
    for c in rest {
        if !is_path_component(c) {
            return Err(format!(
                "`{c}` is not a valid image path component (lowercase letters and digits, separated by `.`, `_`, `__` or `-`)"
            ));
        }
    }
    Ok(())
}

/// A repository path under the namespace, as `slipway.toml` writes it (`web`, `team/web`).
pub fn check_repo_name(n: &str) -> Result<(), String> {
    if n.is_empty() {
        return Err("may not be empty".into());
    }
    for c in n.split('/') {
        if !is_path_component(c) {
            return Err(format!(
                "`{c}` is not a valid image path component (lowercase letters and digits, separated by `.`, `_`, `__` or `-`)"
            ));
        }
    }
    Ok(())
}

/// The image name for a build context: `<namespace>/<context with / as ->`, lowercased; the
/// root context takes the repository's name. `Err` says why it cannot be made valid.
pub fn image_name(namespace: &str, repository: &str, context: &str) -> Result<String, String> {
    let path = if context == "." {
        repository
            .rsplit('/')
            .next()
            .unwrap_or(repository)
            .to_string()
    } else {
        context.replace('/', "-")
    };
    let path = path.to_lowercase();
    if !is_path_component(&path) {
        return Err(format!(
            "`{path}` (from `{context}`) cannot be an image name: Docker allows only lowercase letters and digits separated by `.`, `_`, `__` or `-`, starting and ending with a letter or digit; give it a `name` in slipway.toml"
        ));
    }
    full_name(namespace, &path)
}

/// `<namespace>/<path>`, checked against the length limit.
pub fn full_name(namespace: &str, path: &str) -> Result<String, String> {
    let full = format!("{}/{}", namespace.trim_end_matches('/'), path);
    if full.len() > 255 {
        return Err(format!("`{full}` is longer than Docker's 255 characters"));
    }
    Ok(full)
}

/// Normalises a `FROM` reference for comparison with this repository's images: drops the tag or
/// digest and spells Docker Hub's implicit `docker.io/library/` out.
pub fn normalize_reference(r: &str) -> Option<String> {
    let r = r.split('@').next()?;
    // A `:` after the last `/` starts the tag.
    let name = match (r.rfind(':'), r.rfind('/')) {
        (Some(c), Some(s)) if c > s => &r[..c],
        (Some(c), None) => &r[..c],
        _ => r,
    };
    if name.is_empty() {
        return None;
    }
    let first = name.split('/').next()?;
    let n = if name.contains('/') && looks_like_domain(first) {
        let rest = &name[first.len()..];
        let host = if first == "index.docker.io" {
            "docker.io"
        } else {
            first
        };
        if host == "docker.io" && !rest[1..].contains('/') {
            format!("docker.io/library{rest}")
        } else {
            format!("{host}{rest}")
        }
    } else if name.contains('/') {
        format!("docker.io/{name}")
    } else {
        format!("docker.io/library/{name}")
    };
    Some(n)
}

/// A Docker tag.
pub fn is_tag(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

/// A branch or tag name made into a Docker tag the way docker/metadata-action does: every
/// character outside `[A-Za-z0-9_.-]` becomes `-`, leading `.`/`-` are dropped, at most 128.
pub fn sanitize_tag(s: &str) -> Option<String> {
    let mapped: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    let trimmed = mapped.trim_start_matches(['.', '-']);
    let t: String = trimmed.chars().take(128).collect();
    is_tag(&t).then_some(t)
}

/// `v1.2.3`, `1.2.3-rc.1`, `v2.0.0+build.5` → the version.
pub fn parse_version(s: &str) -> Option<semver::Version> {
    semver::Version::parse(s.strip_prefix('v').unwrap_or(s)).ok()
}

/// The semver tags of a version: `X.Y.Z`, `X.Y`, `X` for a stable one (no `X` for `0.x`, whose
/// minor releases break), only the full version for a pre-release.
pub fn semver_tags(v: &semver::Version) -> Vec<String> {
    if !v.pre.is_empty() {
        return vec![format!("{}.{}.{}-{}", v.major, v.minor, v.patch, v.pre)];
    }
    let mut tags = vec![
        format!("{}.{}.{}", v.major, v.minor, v.patch),
        format!("{}.{}", v.major, v.minor),
    ];
    if v.major > 0 {
        tags.push(v.major.to_string());
    }
    tags
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components() {
        for ok in ["a", "web", "a-b", "a--b", "a.b", "a_b", "a__b", "0x"] {
            assert!(is_path_component(ok), "{ok}");
        }
        for bad in ["", "-a", "a-", "_a", "a___b", "a._b", "A", "a b", "é"] {
            assert!(!is_path_component(bad), "{bad}");
        }
    }

    #[test]
    fn names() {
        assert_eq!(
            image_name("acme", "o/r", "svc/Web").unwrap(),
            "acme/svc-web"
        );
        assert_eq!(
            image_name("ghcr.io/acme", "o/Repo", ".").unwrap(),
            "ghcr.io/acme/repo"
        );
        assert!(image_name("acme", "o/r", "_build").is_err());
        assert!(image_name("acme", "o/r", "my app").is_err());
        assert!(check_namespace("localhost:5000/team").is_ok());
        assert!(check_namespace("acme").is_ok());
        assert!(check_namespace("Acme").is_err());
        assert!(check_namespace("acme/").is_err());
    }

    #[test]
    fn references() {
        assert_eq!(
            normalize_reference("alpine:3").unwrap(),
            "docker.io/library/alpine"
        );
        assert_eq!(
            normalize_reference("acme/base").unwrap(),
            "docker.io/acme/base"
        );
        assert_eq!(
            normalize_reference("docker.io/acme/base:1@sha256:ab").unwrap(),
            "docker.io/acme/base"
        );
        assert_eq!(
            normalize_reference("localhost:5000/acme/base:latest").unwrap(),
            "localhost:5000/acme/base"
        );
        assert_eq!(normalize_reference("ghcr.io/a/b").unwrap(), "ghcr.io/a/b");
    }

    #[test]
    fn tags() {
        assert_eq!(sanitize_tag("feature/new-UI").unwrap(), "feature-new-UI");
        assert_eq!(sanitize_tag("-x").unwrap(), "x");
        assert_eq!(sanitize_tag("a+b").unwrap(), "a-b");
        assert!(sanitize_tag("///").is_none());
        assert_eq!(sanitize_tag(&"a".repeat(300)).unwrap().len(), 128);
        let v = parse_version("v1.2.3").unwrap();
        assert_eq!(semver_tags(&v), vec!["1.2.3", "1.2", "1"]);
        assert_eq!(
            semver_tags(&parse_version("0.4.1").unwrap()),
            vec!["0.4.1", "0.4"]
        );
        assert_eq!(
            semver_tags(&parse_version("v2.0.0-rc.1").unwrap()),
            vec!["2.0.0-rc.1"]
        );
        assert_eq!(
            semver_tags(&parse_version("v2.0.0+b5").unwrap()),
            vec!["2.0.0", "2.0", "2"]
        );
        assert!(parse_version("release").is_none());
    }
}
