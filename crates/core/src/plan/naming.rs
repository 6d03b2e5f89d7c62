//! How the planner names things: an image from its build context, a `FROM` reference in
//! comparable form, a Docker tag from a branch or tag name, and the semver tags users expect.
//! The rules these names must satisfy are `crate::names`'.

use crate::names::{self, check_tag, is_path_component};

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
    if full.len() > names::MAX_IMAGE_NAME {
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
    let n = match names::split_registry(name) {
        (Some(host), rest) => {
            let host = if host == "index.docker.io" {
                "docker.io"
            } else {
                host
            };
            if host == "docker.io" && !rest.contains('/') {
                format!("docker.io/library/{rest}")
            } else {
                format!("{host}/{rest}")
            }
        }
        (None, path) if path.contains('/') => format!("docker.io/{path}"),
        (None, path) => format!("docker.io/library/{path}"),
    };
    Some(n)
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
    check_tag(&t).is_ok().then_some(t)
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
