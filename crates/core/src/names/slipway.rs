//! slipway's own identifiers: job ids, the names configuration gives (build stages, deploy and
//! call targets, tag prefixes), schedules and their runs, and what a deploy request names.

use super::Invalid;

/// A job id: letters, digits, `-`, `_`, `.`, `:`; 1 to 128 characters (an SQS deduplication id).
pub fn check_job_id(id: &str) -> Result<(), Invalid> {
    if id.is_empty() || id.len() > 128 {
        return Err(Invalid("must be 1 to 128 characters"));
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
    {
        return Err(Invalid(
            "may hold only ASCII letters, digits, `-`, `_`, `.` and `:`",
        ));
    }
    Ok(())
}

/// A name that configuration gives and that travels as a word (a build variable, an argv
/// element, a log field): a build stage (`target`), a tag prefix, a deploy target, a call
/// target. A letter or digit, then letters, digits, `_`, `.`, `-`; at most 128 characters.
pub fn check_name(name: &str) -> Result<(), Invalid> {
    let b = name.as_bytes();
    if b.is_empty() || b.len() > 128 {
        return Err(Invalid("must be 1 to 128 characters"));
    }
    if !b[0].is_ascii_alphanumeric()
        || !b
            .iter()
            .all(|&x| x.is_ascii_alphanumeric() || matches!(x, b'_' | b'.' | b'-'))
    {
        return Err(Invalid(
            "must start with a letter or digit and hold only ASCII letters, digits, `_`, `.` and `-`",
        ));
    }
    Ok(())
}

/// The longest schedule name: it becomes part of a job id (at most 128 characters) and of a
/// delivery id (at most 64).
pub const MAX_SCHEDULE_NAME: usize = 48;

/// A schedule name: 1 to 48 ASCII letters, digits and hyphens, as [`super::check_delivery_id`]
/// wants of the delivery id it becomes part of.
pub fn check_schedule_name(name: &str) -> Result<(), Invalid> {
    if name.is_empty() || name.len() > MAX_SCHEDULE_NAME {
        return Err(Invalid("must be 1 to 48 characters"));
    }
    if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return Err(Invalid("may hold only ASCII letters, digits and `-`"));
    }
    Ok(())
}

/// A schedule's run id: a delivery id of at most 36 characters (a UUID: EventBridge's event id,
/// SQS's message id).
pub fn check_run_id(run: &str) -> Result<(), Invalid> {
    super::check_delivery_id(run)?;
    if run.len() > 36 {
        return Err(Invalid("must be at most 36 characters"));
    }
    Ok(())
}

fn check_service_part(s: &str, what: &'static str) -> Result<(), Invalid> {
    if s.is_empty() || s.len() > 63 {
        return Err(Invalid(what));
    }
    let first = s.as_bytes()[0];
    if !first.is_ascii_alphanumeric()
        || !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-')
    {
        return Err(Invalid(what));
    }
    Ok(())
}

/// A compose service as a deploy request names it: `service` or `project/service`, each part 1
/// to 63 of `A-Z a-z 0-9 _ . -` starting with a letter or digit. Anything else (shell
/// metacharacters, spaces, slashes, option-like names) is refused before anything is looked up.
pub fn check_service(name: &str) -> Result<(), Invalid> {
    const MSG: &str = "a service is `name` or `project/name`, each 1 to 63 of A-Z a-z 0-9 _ . - starting with a letter or digit";
    match name.split_once('/') {
        Some((project, service)) => {
            check_service_part(project, MSG)?;
            check_service_part(service, MSG)
        }
        None => check_service_part(name, MSG),
    }
}

/// A deploy request's nonce: 16 to 128 characters of `A-Z a-z 0-9 _ -`.
pub fn check_nonce(nonce: &str) -> Result<(), Invalid> {
    if !(16..=128).contains(&nonce.len()) {
        return Err(Invalid("a nonce must be 16 to 128 characters"));
    }
    if !nonce
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(Invalid(
            "a nonce may hold only ASCII letters, digits, `_` and `-`",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_ids() {
        assert!(check_job_id("push-72d3162e-cc78-11e3-81ab-4c9367dc0958").is_ok());
        assert!(check_job_id("schedule-w-6113728f27ae:1").is_ok());
        assert!(check_job_id("a b").is_err());
        assert!(check_job_id(&"j".repeat(129)).is_err());
    }

    /// One rule for every configured name; `slipway.toml` used to accept a leading `.` or `-`
    /// that the build environment then refused, and call targets had a limit of their own.
    #[test]
    fn configured_names() {
        for ok in ["runtime", "prod-web", "v1.2", "9lives", &"n".repeat(128)] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "-x",
            ".x",
            "_x",
            "a b",
            "a;b",
            "$(id)",
            &"n".repeat(129),
        ] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn schedules_and_runs() {
        assert!(check_schedule_name("weekly-base").is_ok());
        assert!(check_schedule_name(&"s".repeat(MAX_SCHEDULE_NAME)).is_ok());
        assert!(check_schedule_name(&"s".repeat(MAX_SCHEDULE_NAME + 1)).is_err());
        assert!(check_schedule_name("a_b").is_err());
        assert!(check_run_id("e2a1c9f0-1111-2222-3333-444455556666").is_ok());
        assert!(check_run_id(&"f".repeat(37)).is_err());
    }

    #[test]
    fn services_and_nonces() {
        for ok in ["web", "shop/api", "a.b_c-d", "9lives"] {
            assert!(check_service(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "web;rm -rf /",
            "$(id)",
            "-f",
            "a/b/c",
            "web ",
            "../x",
            "a`b`",
            &"x".repeat(64),
        ] {
            assert!(check_service(bad).is_err(), "{bad}");
        }
        assert!(check_nonce("0123456789abcdef").is_ok());
        assert!(check_nonce("short").is_err());
        assert!(check_nonce("0123456789abcdef;").is_err());
    }
}
