//! The port the planner reads a repository through: a local git repository (`slipway plan`,
//! `slipway serve`) or the GitHub REST API (the spawner).

use std::future::Future;

/// What changed between two commits.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Diff {
    /// Every added, modified and removed path, and both sides of every rename; sorted, unique.
    pub paths: Vec<String>,
    /// `false` when the source could not list every change (GitHub's compare caps its file list
    /// at 300); the planner then falls back (payload paths if complete, else every image).
    pub complete: bool,
}

/// A repository at a commit, read through whatever holds it.
pub trait RepoSource: Send + Sync {
    /// The commit a revision names: a full sha (a tag object is peeled to its commit) or a
    /// fully-qualified ref (`refs/heads/main`, `refs/tags/v1`). `NotFound` when it names none.
    fn resolve(&self, rev: &str) -> impl Future<Output = Result<String, SourceError>> + Send;

    /// Every file (blob and symlink) path of the tree at `commit`, relative to the root.
    fn tree(&self, commit: &str) -> impl Future<Output = Result<Vec<String>, SourceError>> + Send;

    /// The content of the file at `path` at `commit`; `None` when there is no such file.
    fn read_file(
        &self,
        commit: &str,
        path: &str,
    ) -> impl Future<Output = Result<Option<String>, SourceError>> + Send;

    /// The changed paths between `base` and `head` (what `head` has that `base` has not).
    fn diff(
        &self,
        base: &str,
        head: &str,
    ) -> impl Future<Output = Result<Diff, SourceError>> + Send;

    /// The best common ancestor of two commits; `None` when they share no history.
    fn merge_base(
        &self,
        a: &str,
        b: &str,
    ) -> impl Future<Output = Result<Option<String>, SourceError>> + Send;

    /// The repository's tag names (without `refs/tags/`), for "newest stable version" decisions.
    fn tags(&self) -> impl Future<Output = Result<Vec<String>, SourceError>> + Send;
}

/// Why the repository could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    /// The repository, a commit or a ref does not exist (or is not visible with these credentials).
    #[error("not found: {0}")]
    NotFound(String),
    /// The source refused for lack of (valid) credentials.
    #[error("access denied: {0}")]
    Denied(String),
    /// A rate limit was hit; retry after `retry_after_secs` (when known).
    #[error("rate limited{}: {message}", retry_after_secs.map(|s| format!(" (retry in {s} s)")).unwrap_or_default())]
    RateLimited {
        message: String,
        retry_after_secs: Option<u64>,
    },
    /// The source could not be reached or answered something unusable; retrying may help.
    #[error("repository unavailable: {0}")]
    Unavailable(String),
    /// A value handed to the source was refused before use (not a sha, not a ref).
    #[error("invalid input: {0}")]
    Invalid(String),
}

impl SourceError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotFound(_) => "not_found",
            Self::Denied(_) => "access_denied",
            Self::RateLimited { .. } => "rate_limited",
            Self::Unavailable(_) => "source_unavailable",
            Self::Invalid(_) => "invalid_input",
        }
    }

    /// Whether trying again later may succeed (the spawner leaves the job on the queue).
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::RateLimited { .. } | Self::Unavailable(_))
    }
}
