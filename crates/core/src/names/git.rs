//! git's identifiers: object ids, refs and paths inside a repository.

use super::Invalid;

/// All-zero object id GitHub sends as `before` for a new ref and as `after` for a deleted one.
pub fn is_zero_sha(sha: &str) -> bool {
    !sha.is_empty() && sha.bytes().all(|b| b == b'0')
}

/// A git object id: 40 (SHA-1) or 64 (SHA-256) lowercase hexadecimal digits.
pub fn check_sha(sha: &str) -> Result<(), Invalid> {
    if sha.len() != 40 && sha.len() != 64 {
        return Err(Invalid("must be a 40- or 64-digit git object id"));
    }
    if !sha
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(Invalid("must be lowercase hexadecimal"));
    }
    Ok(())
}

/// A fully-qualified git ref (`refs/heads/...` or `refs/tags/...`) that is safe to hand to git as
/// one argv element and to use in a tag: git's own rules, restricted to `A-Z a-z 0-9 . _ - / +`.
pub fn check_ref(git_ref: &str) -> Result<(), Invalid> {
    if git_ref.len() > 255 {
        return Err(Invalid("must be at most 255 characters"));
    }
    if !git_ref.starts_with("refs/") {
        return Err(Invalid("must start with `refs/`"));
    }
    if !git_ref
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'/' | b'+'))
    {
        return Err(Invalid(
            "may hold only ASCII letters, digits, `.`, `_`, `-`, `+` and `/` (no spaces or shell metacharacters)",
        ));
    }
    if git_ref.ends_with('/') || git_ref.ends_with('.') || git_ref.ends_with(".lock") {
        return Err(Invalid("may not end with `/`, `.` or `.lock`"));
    }
    for component in git_ref.split('/') {
        if component.is_empty() {
            return Err(Invalid("may not contain `//`"));
        }
        if component.starts_with('.') {
            return Err(Invalid("no component may start with `.`"));
        }
    }
    if git_ref.contains("..") {
        return Err(Invalid("may not contain `..`"));
    }
    Ok(())
}

/// A branch name, as a ref under `refs/heads/`.
pub fn check_branch(branch: &str) -> Result<(), Invalid> {
    check_ref(&format!("refs/heads/{branch}"))
}

/// A path inside a repository as GitHub lists it: relative, `/`-separated, no `.` or `..`
/// components, no control characters. Spaces, quotes and non-ASCII letters are legal in git and
/// stay legal here: such paths only ever travel as data, never through a shell.
pub fn check_repo_path(path: &str) -> Result<(), Invalid> {
    if path.is_empty() || path.len() > 4096 {
        return Err(Invalid("must be 1 to 4096 bytes"));
    }
    if path.starts_with('/') {
        return Err(Invalid("must be relative to the repository root"));
    }
    if path.chars().any(char::is_control) {
        return Err(Invalid("may not contain control characters"));
    }
    if path
        .split('/')
        .any(|c| c.is_empty() || c == "." || c == "..")
    {
        return Err(Invalid("may not contain empty, `.` or `..` components"));
    }
    Ok(())
}

/// A build context or Dockerfile: a repository path, or `.` for the root. Spaces, quotes, `;`
/// and `$(...)` are allowed: they are data, passed quoted.
pub fn check_source_path(path: &str) -> Result<(), Invalid> {
    if path == "." {
        return Ok(());
    }
    check_repo_path(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shas() {
        assert!(check_sha("6113728f27ae82c7b1a177c8d03f9e96e0adf246").is_ok());
        assert!(check_sha(&"a".repeat(64)).is_ok());
        assert!(check_sha("6113728F27AE82C7B1A177C8D03F9E96E0ADF246").is_err());
        assert!(check_sha("6113728f").is_err());
        assert!(check_sha("$(id)3728f27ae82c7b1a177c8d03f9e96e0adf246").is_err());
        assert!(is_zero_sha("0000000000000000000000000000000000000000"));
        assert!(!is_zero_sha(""));
    }

    #[test]
    fn refs() {
        for ok in [
            "refs/heads/main",
            "refs/heads/feature/x-1",
            "refs/tags/v1.2.3",
            "refs/tags/api/v1.0.0+build.5",
        ] {
            assert!(check_ref(ok).is_ok(), "{ok}");
        }
        for bad in [
            "main",
            "refs/heads/a;b",
            "refs/heads/$(id)",
            "refs/heads/a b",
            "refs/heads/`x`",
            "refs/heads/../x",
            "refs/heads/a..b",
            "refs/heads/.hidden",
            "refs/heads/x.lock",
            "refs/heads/x/",
            "refs/heads//x",
            "refs/heads/ünicode",
            "refs/heads/a\nb",
        ] {
            assert!(check_ref(bad).is_err(), "{bad:?}");
        }
        assert!(check_branch("release/2").is_ok());
        assert!(check_branch("a b").is_err());
    }

    #[test]
    fn paths() {
        for ok in [
            "Dockerfile",
            "web/app/Dockerfile",
            "docs/a file.md",
            "ünï/x",
        ] {
            assert!(check_repo_path(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "/etc/passwd",
            "a/../b",
            "../x",
            "a//b",
            "a/./b",
            "a\nb",
            "a\0b",
        ] {
            assert!(check_repo_path(bad).is_err(), "{bad:?}");
        }
        assert!(check_source_path(".").is_ok());
        assert!(check_source_path("a;touch /tmp/pwned").is_ok());
        assert!(check_source_path("../etc").is_err());
    }
}
