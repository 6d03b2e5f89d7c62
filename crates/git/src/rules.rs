//! The one set of rules for running git, and for cloning and fetching a job's repository, used
//! wherever slipway clones (`slipway serve`'s mirrors and schedules, `slipway build`'s checkout):
//! - git runs with a cleared environment (only `PATH`) and neither the system's nor the user's
//!   configuration, so no `GIT_*` variable, `url.*.insteadOf` or credential helper of whoever
//!   runs slipway changes what is fetched;
//! - a source is a network URL (`https`, `http`, `ssh`, `git`, or scp-like `host:path`) or a
//!   repository on this machine (a path or `file://`), the latter only where the caller allows
//!   it ([`CloneRules::allow_local`]); remote helpers (`<transport>::<address>`, including the
//!   command-running `ext::`) never are;
//! - git itself holds a clone or fetch to the source's transports (`GIT_ALLOW_PROTOCOL`), so a
//!   redirect, an alternate or a submodule cannot reach another; every other git command may
//!   use none.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::process::Command;

use crate::GitError;

/// The transports a network source may use.
const NETWORK_TRANSPORTS: &str = "https:http:ssh:git";
/// The transport of a repository on this machine (paths and `file://` alike).
const LOCAL_TRANSPORT: &str = "file";

/// Which sources a caller accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CloneRules {
    /// Repositories on this machine (paths, `file://` URLs): `slipway build --source` always,
    /// `slipway serve` when `allow_file_clone_urls` is on.
    pub allow_local: bool,
}

/// A repository to clone or fetch from, accepted by [`CloneRules`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A repository on this machine.
    Local(PathBuf),
    /// A repository over the network: `https://`, `http://`, `ssh://`, `git://` or `host:path`.
    Remote(String),
}

impl Source {
    /// Reads a clone URL or a path under `rules`.
    pub fn parse(raw: &str, rules: CloneRules) -> Result<Self, GitError> {
        let refused = |reason: &str| GitError::SourceRefused {
            from: raw.to_string(),
            reason: reason.to_string(),
        };
        if raw.is_empty() || raw.starts_with('-') {
            return Err(refused(
                "a source is a clone URL or a path, never an option",
            ));
        }
        if raw.contains("::") {
            return Err(refused(
                "remote helpers (`<transport>::<address>`) are not allowed; use an https://, ssh:// or git:// URL",
            ));
        }
        let local = |path: &str| {
            if rules.allow_local {
                Ok(Source::Local(PathBuf::from(path)))
            } else {
                Err(refused("repositories on this machine are not allowed here"))
            }
        };
        if let Some((scheme, rest)) = raw.split_once("://") {
            return match scheme.to_ascii_lowercase().as_str() {
                "https" | "http" | "ssh" | "git" => Ok(Source::Remote(raw.to_string())),
                "file" if rest.starts_with('/') => local(rest),
                "file" => Err(refused("a file:// URL names an absolute path")),
                _ => Err(refused(
                    "the transport is not allowed (https, http, ssh, git, or a path)",
                )),
            };
        }
        // git's scp-like syntax: a colon before the first slash names a host.
        match (raw.find(':'), raw.find('/')) {
            (Some(colon), slash) if slash.is_none_or(|s| colon < s) => {
                Ok(Source::Remote(raw.to_string()))
            }
            _ => local(raw),
        }
    }

    /// What git is handed: the URL, or the path.
    pub(crate) fn arg(&self) -> Result<&str, GitError> {
        match self {
            Source::Remote(url) => Ok(url),
            Source::Local(p) => p.to_str().ok_or_else(|| GitError::SourceRefused {
                from: p.display().to_string(),
                reason: "the path must be UTF-8".into(),
            }),
        }
    }

    /// The transports a clone or fetch from this source may use.
    pub(crate) fn transports(&self) -> &'static str {
        match self {
            Source::Local(_) => LOCAL_TRANSPORT,
            Source::Remote(_) => NETWORK_TRANSPORTS,
        }
    }
}

/// Output of one git run.
pub(crate) struct Output {
    pub ok: bool,
    pub code: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

/// A git command under the rules: only `PATH` is kept; no system or global config, no prompts,
/// stable messages; `transports` are the only ones git may use (none when empty).
fn git_command(dir: Option<&Path>, transports: &str) -> Command {
    let mut c = Command::new("git");
    c.env_clear();
    if let Some(path) = std::env::var_os("PATH") {
        c.env("PATH", path);
    }
    c.env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_ASKPASS", "/bin/false")
        .env("GIT_ALLOW_PROTOCOL", transports)
        .env("LC_ALL", "C")
        // Paths print as they are, not octal-quoted.
        .args(["-c", "core.quotePath=false"])
        .stdin(Stdio::null())
        .kill_on_drop(true);
    if let Some(d) = dir {
        c.current_dir(d);
    }
    c
}

/// Runs git in `dir` with `args` as argv; `from` is the source a clone or fetch reads.
pub(crate) async fn run(
    dir: Option<&Path>,
    from: Option<&Source>,
    args: &[&str],
) -> Result<Output, GitError> {
    let out = git_command(dir, from.map_or("", Source::transports))
        .args(args)
        .output()
        .await
        .map_err(GitError::Spawn)?;
    Ok(Output {
        ok: out.status.success(),
        code: out.status.code(),
        stdout: out.stdout,
        stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ANY: CloneRules = CloneRules { allow_local: true };
    const NETWORK: CloneRules = CloneRules { allow_local: false };

    #[test]
    fn network_urls_and_scp_like_addresses_are_remote() {
        for url in [
            "https://github.com/acme/site.git",
            "http://127.0.0.1:3000/acme/site.git",
            "ssh://git@github.com/acme/site.git",
            "git://example.com/site.git",
            "git@github.com:acme/site.git",
        ] {
            assert_eq!(
                Source::parse(url, NETWORK).unwrap(),
                Source::Remote(url.into())
            );
        }
    }

    #[test]
    fn local_repositories_only_where_allowed() {
        assert_eq!(
            Source::parse("file:///srv/git/site", ANY).unwrap(),
            Source::Local("/srv/git/site".into())
        );
        assert_eq!(
            Source::parse("./site", ANY).unwrap(),
            Source::Local("./site".into())
        );
        for raw in ["file:///srv/git/site", "/srv/git/site", "site"] {
            let e = Source::parse(raw, NETWORK).unwrap_err();
            assert_eq!(e.code(), "source_refused", "{raw}");
        }
        assert!(Source::parse("file://host/srv", ANY).is_err());
    }

    #[test]
    fn helpers_options_and_other_transports_are_refused() {
        for raw in [
            "ext::sh -c touch% /tmp/x",
            "fd::3",
            "evil::payload",
            "-uhelp",
            "",
            "ftp://example.com/site.git",
        ] {
            let e = Source::parse(raw, ANY).unwrap_err();
            assert_eq!(e.code(), "source_refused", "{raw}");
        }
    }
}
