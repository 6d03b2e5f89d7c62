//! GitHub's identifiers: repositories, clone URLs and the headers of a webhook delivery.

use super::Invalid;

/// A GitHub repository full name, `owner/name`. Owners are letters, digits and single hyphens;
/// repository names also allow `.` and `_`. Case is kept (GitHub compares without it).
pub fn check_repository(full_name: &str) -> Result<(), Invalid> {
    let (owner, name) = full_name
        .split_once('/')
        .ok_or(Invalid("must be `owner/name`"))?;
    if owner.is_empty() || owner.len() > 39 {
        return Err(Invalid("owner must be 1 to 39 characters"));
    }
    if !owner
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        || owner.starts_with('-')
        || owner.ends_with('-')
    {
        return Err(Invalid(
            "owner may hold only ASCII letters, digits and inner hyphens",
        ));
    }
    if name.is_empty() || name.len() > 100 {
        return Err(Invalid("name must be 1 to 100 characters"));
    }
    if name == "." || name == ".." {
        return Err(Invalid("name may not be `.` or `..`"));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(Invalid(
            "name may hold only ASCII letters, digits, `-`, `_` and `.`",
        ));
    }
    Ok(())
}

/// A clone URL: `https://host/...` with no credentials in it. (`slipway serve` may also allow
/// `file://` for local repositories; see [`crate::listener::ListenerConfig`].)
pub fn check_clone_url(raw: &str) -> Result<url::Url, Invalid> {
    let url = url::Url::parse(raw).map_err(|_| Invalid("must be an absolute URL"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Invalid("may not carry credentials"));
    }
    match url.scheme() {
        "https" if url.host_str().is_some() => Ok(url),
        "file" => Ok(url),
        _ => Err(Invalid("must be an https:// URL")),
    }
}

/// `X-GitHub-Delivery`: a GUID. Accepted: 1 to 64 ASCII letters, digits and hyphens, because it
/// becomes a queue deduplication id and part of build names.
pub fn check_delivery_id(id: &str) -> Result<(), Invalid> {
    if id.is_empty() || id.len() > 64 {
        return Err(Invalid("must be 1 to 64 characters"));
    }
    if !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return Err(Invalid("may hold only ASCII letters, digits and hyphens"));
    }
    Ok(())
}

/// `X-GitHub-Event`: a lowercase word of letters, digits and underscores, starting with a letter,
/// as every event GitHub documents is (`push`, `projects_v2_item`, `security_and_analysis`).
/// It is logged and echoed in the answer, so nothing else is let through.
pub fn check_event_name(name: &str) -> Result<(), Invalid> {
    if name.is_empty() || name.len() > 64 {
        return Err(Invalid("must be 1 to 64 characters"));
    }
    if !name.as_bytes()[0].is_ascii_lowercase()
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        return Err(Invalid(
            "must be a lowercase ASCII letter followed by lowercase letters, digits and `_`",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// GitHub's documented events, one a line (the listener's tests send each of them too).
    const DOCUMENTED_EVENTS: &str =
        include_str!("../../../../tests/fixtures/github/webhook-events.txt");

    #[test]
    fn repositories() {
        for ok in [
            "Codertocat/Hello-World",
            "octo-org/a.b_c",
            "a/b",
            "x/.github",
        ] {
            assert!(check_repository(ok).is_ok(), "{ok}");
        }
        for bad in [
            "noslash",
            "a/b/c",
            "/b",
            "a/",
            "-a/b",
            "a/..",
            "a b/c",
            "a/b;rm",
            "ünï/cödé",
            "a/$(id)",
        ] {
            assert!(check_repository(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn clone_urls() {
        assert!(check_clone_url("https://github.com/acme/site.git").is_ok());
        assert!(check_clone_url("file:///srv/git/site").is_ok());
        for bad in [
            "http://github.com/acme/site.git",
            "https://user:pw@github.com/acme/site.git",
            "git@github.com:acme/site.git",
            "ext::sh -c id",
        ] {
            assert!(check_clone_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn deliveries() {
        assert!(check_delivery_id("72d3162e-cc78-11e3-81ab-4c9367dc0958").is_ok());
        assert!(check_delivery_id("x;y").is_err());
        assert!(check_delivery_id("").is_err());
    }

    #[test]
    fn every_documented_event_name_is_accepted() {
        let events: Vec<&str> = DOCUMENTED_EVENTS
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect();
        assert!(events.len() > 70, "the list is GitHub's whole list");
        for name in ["projects_v2_item", "security_and_analysis", "push", "ping"] {
            assert!(events.contains(&name), "{name} is documented");
        }
        for name in events {
            assert!(check_event_name(name).is_ok(), "{name}");
        }
        for bad in [
            "", "Push", "2fa", "_push", "push-x", "push;id", "pu sh", "ünï",
        ] {
            assert!(check_event_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_event_name(&"a".repeat(65)).is_err());
    }
}
