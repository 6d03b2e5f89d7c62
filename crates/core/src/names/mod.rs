//! Every identifier rule, in one place: the values that arrive from outside (webhook payloads,
//! headers, CodeBuild events, queue messages, configuration) and later reach a git command's
//! argv, an environment variable, a file path, a URL path, a registry or a tag. Each rule is
//! the one every part applies — the listener, the planner, the build environment, the notifier,
//! the scheduler and `slipway serve` — so that a value one part accepts is never refused by the
//! next.
//!
//! The rules are stricter than git's, GitHub's or Docker's only where those allow characters no
//! build needs (shell metacharacters in ref names), and say why in their message. A message
//! never repeats the value: it may be hostile or long.
//!
//! - [`git`]: object ids, refs, paths inside a repository;
//! - [`github`]: repositories, clone URLs, the `X-GitHub-Delivery` and `X-GitHub-Event` headers;
//! - [`docker`]: image names, registry hosts, namespaces, tags, digests, platforms, build
//!   arguments;
//! - [`slipway`]: slipway's own names — jobs, configured names (build stages, deploy and call
//!   targets, tag prefixes), schedules, deploy services and nonces.

use std::fmt;

pub mod docker;
pub mod git;
pub mod github;
pub mod slipway;

pub use docker::*;
pub use git::*;
pub use github::*;
pub use slipway::*;

/// Why a value was refused. The message never repeats the value itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid(pub &'static str);

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}
