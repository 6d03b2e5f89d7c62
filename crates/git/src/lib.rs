//! The local git adapter: a repository on disk, read by running `git` with argv (never a shell)
//! under one set of rules ([`rules`]: a cleared environment, no user or system configuration,
//! the transports a source allows). Implements the planner's [`RepoSource`] port for `slipway
//! plan` and `slipway serve`, and clones, fetches and checks out for serve's mirrors and
//! schedules and for `slipway build`'s checkout.
//!
//! [`RepoSource`]: slipway_core::plan::RepoSource

use std::path::PathBuf;

use slipway_core::plan::SourceError;

mod repo;
pub mod rules;

pub use repo::GitRepo;
pub use rules::{CloneRules, Source};

/// Why git could not answer. Codes are stable.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("`{0}` is not a git repository (run `git init`, or point --repo at a clone)")]
    NotARepository(PathBuf),
    #[error("could not run git: {0} (is git installed and on PATH?)")]
    Spawn(std::io::Error),
    #[error("git {command} failed: {stderr}")]
    Failed { command: String, stderr: String },
    #[error("{0}")]
    Invalid(String),
    #[error("`{from}` cannot be cloned: {reason}")]
    SourceRefused { from: String, reason: String },
    #[error("the commit {0} is not in the source")]
    NoSuchCommit(String),
}

impl GitError {
    pub fn code(&self) -> &'static str {
        match self {
            GitError::NotARepository(_) => "not_a_repository",
            GitError::Spawn(_) => "git_unavailable",
            GitError::Failed { .. } => "git_failed",
            GitError::Invalid(_) => "git_invalid_argument",
            GitError::SourceRefused { .. } => "source_refused",
            GitError::NoSuchCommit(_) => "commit_not_found",
        }
    }
}

impl From<GitError> for SourceError {
    fn from(e: GitError) -> Self {
        match e {
            GitError::Invalid(m) => SourceError::Invalid(m),
            other => SourceError::Unavailable(other.to_string()),
        }
    }
}
