//! Docker's identifiers, as the reference grammar (distribution/reference) writes them: an image
//! name is an optional registry host (`host[:port]`) and `/`-separated lowercase path components
//! `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`, at most 255 characters in all; a tag is
//! `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
//!
//! Where Docker's grammar is looser slipway picks one spelling: registry hosts are lowercase
//! (DNS ignores case, but a host becomes part of SSM parameter names and notifications, and two
//! spellings would be two credentials), and a port is a number from 1 to 65535.

use super::Invalid;

/// The longest image name Docker accepts.
pub const MAX_IMAGE_NAME: usize = 255;

fn is_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// A path component of an image name: lowercase letters and digits, separated by single `.`,
/// `_`, `__` or runs of `-`, starting and ending with a letter or digit.
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
        // A separator run between alphanumerics.
        let start = i;
        while i < b.len() && !is_alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        if !(sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-')) {
            return false;
        }
    }
    true
}

/// Docker's rule for where the registry ends: the first component of a name with a `/` is a
/// registry host when it holds a `.` or a `:`, is `localhost`, or holds an upper-case letter.
/// Returns `(host, path)`.
pub fn split_registry(name: &str) -> (Option<&str>, &str) {
    match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.bytes().any(|b| b.is_ascii_uppercase()) =>
        {
            (Some(first), rest)
        }
        _ => (None, name),
    }
}

/// A registry host, `host[:port]`: lowercase DNS labels (letters, digits, inner hyphens) or an
/// IPv4 address, and a port from 1 to 65535.
pub fn check_registry_host(host: &str) -> Result<(), Invalid> {
    let (h, port) = match host.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (host, None),
    };
    if let Some(p) = port {
        let number = (!p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()))
            .then(|| p.parse::<u32>().ok())
            .flatten();
        if !number.is_some_and(|n| (1..=65535).contains(&n)) {
            return Err(Invalid("registry port must be a number from 1 to 65535"));
        }
    }
    let ok = !h.is_empty()
        && h.split('.').all(|l| {
            !l.is_empty()
                && l.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        });
    if ok {
        Ok(())
    } else {
        Err(Invalid(
            "registry host must be a lowercase DNS name or an IPv4 address",
        ))
    }
}

/// The path of an image under its registry (or under a namespace): one or more path components.
pub fn check_image_path(path: &str) -> Result<(), Invalid> {
    if path.is_empty() {
        return Err(Invalid("needs a repository path"));
    }
    if !path.split('/').all(is_path_component) {
        return Err(Invalid(
            "path components may hold only lowercase letters, digits and single `.`, `_`, `__` or `-` runs between them",
        ));
    }
    Ok(())
}

/// An image name: optional `host[:port]`, then lowercase path components, 255 characters at
/// most, no tag, no digest. The one rule for the names the planner makes, the build
/// environment carries, a scheduled rebuild names and `slipway serve`'s pages look up.
pub fn check_image_name(name: &str) -> Result<(), Invalid> {
    if name.is_empty() || name.len() > MAX_IMAGE_NAME {
        return Err(Invalid("must be 1 to 255 characters"));
    }
    let (host, path) = split_registry(name);
    if let Some(host) = host {
        check_registry_host(host)?;
    }
    check_image_path(path)
}

/// An image namespace, what every image name of a deployment starts with: `acme`,
/// `ghcr.io/acme`, `localhost:5000/team/x`, or a registry alone (`ghcr.io`). Valid when the
/// names made from it are.
pub fn check_namespace(ns: &str) -> Result<(), Invalid> {
    if ns.is_empty() {
        return Err(Invalid("may not be empty"));
    }
    if ns.ends_with('/') {
        return Err(Invalid("may not end with `/`"));
    }
    check_image_name(&format!("{ns}/x")).map_err(|e| match e.0 {
        "must be 1 to 255 characters" => Invalid("must leave room for image names (255 in all)"),
        _ => e,
    })
}

/// A tag: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
pub fn check_tag(tag: &str) -> Result<(), Invalid> {
    let b = tag.as_bytes();
    if b.is_empty() || b.len() > 128 {
        return Err(Invalid("must be 1 to 128 characters"));
    }
    if b[0] == b'.' || b[0] == b'-' {
        return Err(Invalid("may not start with `.` or `-`"));
    }
    if !b
        .iter()
        .all(|&x| x.is_ascii_alphanumeric() || matches!(x, b'_' | b'.' | b'-'))
    {
        return Err(Invalid(
            "may hold only ASCII letters, digits, `_`, `.` and `-`",
        ));
    }
    Ok(())
}

/// A manifest digest, `sha256:<64 hex>`.
pub fn check_digest(d: &str) -> Result<(), Invalid> {
    match d.strip_prefix("sha256:") {
        Some(h) if h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()) => Ok(()),
        _ => Err(Invalid("must be `sha256:` and 64 hex digits")),
    }
}

/// A platform, `os/arch[/variant]` in lowercase letters, digits and `_`, each part at most 32.
pub fn check_platform(p: &str) -> Result<(), Invalid> {
    let parts: Vec<&str> = p.split('/').collect();
    if !(2..=3).contains(&parts.len())
        || parts.iter().any(|c| {
            c.is_empty()
                || c.len() > 32
                || !c
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        })
    {
        return Err(Invalid(
            "must be `os/arch` or `os/arch/variant`, e.g. `linux/arm64`",
        ));
    }
    Ok(())
}

/// A build argument name: an environment variable name, `[A-Za-z_][A-Za-z0-9_]*`, at most 128.
pub fn check_build_arg_name(name: &str) -> Result<(), Invalid> {
    let b = name.as_bytes();
    if b.is_empty() || b.len() > 128 {
        return Err(Invalid("must be 1 to 128 characters"));
    }
    if !(b[0].is_ascii_alphabetic() || b[0] == b'_')
        || !b.iter().all(|&x| x.is_ascii_alphanumeric() || x == b'_')
    {
        return Err(Invalid(
            "must be a letter or `_` followed by letters, digits and `_`",
        ));
    }
    Ok(())
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
    fn image_names() {
        for ok in [
            "nginx",
            "acme/web",
            "ghcr.io/acme/web",
            "127.0.0.1:5056/t/web",
            "localhost/web",
            "localhost:65535/web",
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com/acme/web",
        ] {
            assert!(check_image_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "acme/web;id",
            "acme/$(id)",
            "acme/web:tag",
            "acme/web@sha256:ab",
            "acme//web",
            "ghcr.io/",
        ] {
            assert!(check_image_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_image_name(&format!("acme/{}", "a".repeat(250))).is_ok());
        assert!(check_image_name(&format!("acme/{}", "a".repeat(251))).is_err());
    }

    /// One rule where the build environment, the planner's namespace and scheduled rebuilds had
    /// three: upper case is refused everywhere, hosts included (a scheduled rebuild naming
    /// `Acme/Web` could never match a planned image anyway).
    #[test]
    fn upper_case_is_refused_in_paths_and_hosts() {
        for bad in [
            "Acme/Web",
            "acme/Web",
            "GHCR.io/acme/web",
            "Localhost:5000/web",
        ] {
            assert!(check_image_name(bad).is_err(), "{bad}");
        }
        assert!(check_namespace("Acme").is_err());
        assert!(check_namespace("ghcr.io/Acme").is_err());
    }

    /// One port rule where the build environment allowed five digits and the planner's
    /// namespace any number of them.
    #[test]
    fn registry_ports_are_numbers_from_1_to_65535() {
        assert!(check_registry_host("localhost:5000").is_ok());
        assert!(check_registry_host("127.0.0.1:1").is_ok());
        for bad in [
            "localhost:0",
            "localhost:65536",
            "localhost:99999",
            "localhost:123456",
            "localhost:",
            "localhost:50a0",
        ] {
            assert!(check_registry_host(bad).is_err(), "{bad}");
            assert!(check_image_name(&format!("{bad}/web")).is_err(), "{bad}");
        }
        assert!(check_namespace("localhost:5000/team").is_ok());
        assert!(check_namespace("localhost:123456/team").is_err());
    }

    #[test]
    fn namespaces() {
        for ok in ["acme", "ghcr.io/acme", "localhost:5000/team/x", "ghcr.io"] {
            assert!(check_namespace(ok).is_ok(), "{ok}");
        }
        for bad in ["", "acme/", "a b", "-acme", "acme//x"] {
            assert!(check_namespace(bad).is_err(), "{bad:?}");
        }
        assert!(check_image_path("team/web").is_ok());
        assert!(check_image_path("Web").is_err());
        assert!(check_image_path("").is_err());
    }

    #[test]
    fn tags_digests_platforms_build_args() {
        for ok in ["latest", "v1.2.3", "_x", "sha-6113728", &"t".repeat(128)] {
            assert!(check_tag(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".x", "-x", "a;b", "a b", &"t".repeat(129)] {
            assert!(check_tag(bad).is_err(), "{bad:?}");
        }
        assert!(check_digest(&format!("sha256:{}", "ab".repeat(32))).is_ok());
        assert!(check_digest("sha256:$(id)").is_err());
        assert!(check_platform("linux/arm64/v8").is_ok());
        assert!(check_platform("linux").is_err());
        assert!(check_platform(&format!("linux/{}", "a".repeat(33))).is_err());
        assert!(check_build_arg_name("_VERSION_2").is_ok());
        for bad in ["", "2X", "A B", "A-B", &"A".repeat(129)] {
            assert!(check_build_arg_name(bad).is_err(), "{bad:?}");
        }
    }
}
