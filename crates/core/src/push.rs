//! GitHub's `push` webhook payload, read for the listener's decision and nothing more.
//!
//! Only the fields slipway uses are read, borrowed from the body (a string is copied only when it
//! holds a JSON escape); every other value is skipped without being built. The skipping still
//! checks it: the whole body must be well-formed JSON (syntax, string escapes, numbers, nesting
//! depth, nothing after the object) and valid UTF-8, or the push is refused as `invalid_json`.
//! Once the commits list more distinct paths than a job carries ([`MAX_JOB_PATHS`](crate::job::MAX_JOB_PATHS)), the rest of
//! the commits are only counted and checked for well-formedness: their paths would be dropped
//! anyway (the job is marked `too_many_paths` and the planner diffs the repository).

use std::borrow::Cow;

use serde::Deserialize;

mod read;
use crate::names::{self, is_zero_sha};
use crate::refs::{RefKind, split_ref};

/// GitHub lists at most this many commits in a push payload; a push that reaches it may have more.
pub const COMMIT_CAP: usize = 2048;

/// A push payload as the listener's decision reads it, borrowing from the body.
#[derive(Debug, Clone)]
pub struct PushEvent<'a> {
    pub git_ref: Cow<'a, str>,
    pub before: Cow<'a, str>,
    pub after: Cow<'a, str>,
    pub created: bool,
    pub deleted: bool,
    pub forced: bool,
    /// `null` for a deleted ref.
    pub head_commit: Option<Commit<'a>>,
    pub repository: Repository<'a>,
    /// How many commits `commits` lists (GitHub lists at most [`COMMIT_CAP`]).
    pub commit_count: usize,
    /// The distinct changed paths, sorted; empty when `too_many_paths`.
    paths: Vec<Cow<'a, str>>,
    /// More distinct paths were listed than a job carries; the reader stopped collecting them.
    too_many_paths: bool,
    /// The first commit id or path that failed its rule, in document order.
    invalid: Option<PayloadError>,
}

/// A commit as the decision reads it: its id. (Its file lists are read into the push's paths.)
#[derive(Debug, Clone)]
pub struct Commit<'a> {
    pub id: Cow<'a, str>,
}

#[derive(Debug, Clone)]
pub struct Repository<'a> {
    pub full_name: Cow<'a, str>,
    pub clone_url: Cow<'a, str>,
    pub private: bool,
    /// Absent in some older payloads; `master_branch` carried it then.
    pub default_branch: Option<Cow<'a, str>>,
    pub master_branch: Option<Cow<'a, str>>,
}

/// GitHub's `ping` payload: only what the answer needs.
#[derive(Debug, Clone, Deserialize)]
pub struct PingEvent {
    #[serde(default)]
    pub hook_id: Option<u64>,
    #[serde(default)]
    pub zen: Option<String>,
}

/// A payload that could not be used, naming the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    #[error("the body is not valid JSON: {0}")]
    Json(String),
    #[error("the field `{0}` is missing")]
    MissingField(String),
    #[error("the field `{field}` is invalid: {reason}")]
    InvalidField { field: String, reason: String },
}

impl PayloadError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::Json(_) => "invalid_json",
            Self::MissingField(_) => "missing_field",
            Self::InvalidField { .. } => "invalid_field",
        }
    }

    pub fn field(&self) -> Option<&str> {
        match self {
            Self::Json(_) => None,
            Self::MissingField(f) | Self::InvalidField { field: f, .. } => Some(f),
        }
    }

    fn invalid(field: impl Into<String>, why: names::Invalid) -> Self {
        Self::InvalidField {
            field: field.into(),
            reason: why.0.to_string(),
        }
    }
}

/// Deserializes a JSON object into `T` and names the path of the first field that failed.
pub fn from_json<'de, T: Deserialize<'de>>(body: &'de [u8]) -> Result<T, PayloadError> {
    // serde would read a struct from an array too; a webhook body is always an object.
    if body.trim_ascii_start().first() != Some(&b'{') {
        return Err(PayloadError::Json("the body must be a JSON object".into()));
    }
    let de = &mut serde_json::Deserializer::from_slice(body);
    let err = match serde_path_to_error::deserialize(de) {
        Ok(v) => return Ok(v),
        Err(e) => e,
    };
    let path = err.path().to_string();
    let inner = err.into_inner();
    let msg = inner.to_string();
    let reason = msg.split(" at line ").next().unwrap_or(&msg).to_string();
    if !inner.is_data() {
        return Err(PayloadError::Json(reason));
    }
    // serde reports a missing field on its parent; name the field itself.
    if let Some(rest) = reason.strip_prefix("missing field `") {
        let name = rest.split('`').next().unwrap_or_default();
        return Err(PayloadError::MissingField(if path == "." {
            name.to_string()
        } else {
            format!("{path}.{name}")
        }));
    }
    Err(PayloadError::InvalidField {
        field: path,
        reason,
    })
}

/// What the payload says changed, and whether it can be trusted to list every change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayloadChanges {
    /// Sorted, without duplicates: every added, modified and removed path of every listed commit.
    pub paths: Vec<String>,
    /// `None` when the list is complete; otherwise why it cannot be trusted.
    pub incomplete: Option<Incomplete>,
}

/// Why a payload's file lists are not the whole change. The planner then diffs the repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Incomplete {
    /// A new branch or tag: the commits are relative to nothing the payload names.
    NewRef,
    /// A force push: commits that left the branch are not listed.
    Forced,
    /// The payload holds GitHub's maximum of 2048 commits; there may be more.
    CommitCap,
    /// `before` and `after` differ but no commit is listed (for example a push of commits that
    /// were already on another branch).
    NoCommits,
    /// More paths than a job carries; the planner lists them from the repository.
    TooManyPaths,
}

impl Incomplete {
    pub fn describe(self) -> &'static str {
        match self {
            Self::NewRef => "a new ref: the payload lists no base to compare with",
            Self::Forced => {
                "a force push: the payload does not list the commits that were replaced"
            }
            Self::CommitCap => "the payload holds GitHub's cap of 2048 commits; there may be more",
            Self::NoCommits => "the payload lists no commits although the ref moved",
            Self::TooManyPaths => "the payload lists more changed paths than a job carries",
        }
    }
}

impl<'a> PushEvent<'a> {
    /// Reads and checks a push payload: every field slipway uses is present, of the right type and
    /// safe to use; the error names the first bad one (type and missing-field errors first, then
    /// `ref`, `before`, `after`, the repository, the head commit, then commit ids and paths in
    /// document order).
    pub fn parse(body: &'a [u8]) -> Result<Self, PayloadError> {
        // serde would read a struct from an array too; a webhook body is always an object.
        if body.trim_ascii_start().first() != Some(&b'{') {
            return Err(PayloadError::Json("the body must be a JSON object".into()));
        }
        let push = read::read(body)?;
        push.validate()?;
        Ok(push)
    }

    pub fn ref_kind(&self) -> Option<RefKind> {
        split_ref(&self.git_ref).map(|(k, _)| k)
    }

    /// The repository's default branch as the payload names it.
    pub fn default_branch(&self) -> &str {
        self.repository
            .default_branch
            .as_deref()
            .or(self.repository.master_branch.as_deref())
            .unwrap_or("main")
    }

    /// The commit to build: for an annotated tag `after` is the tag object and `head_commit.id` the
    /// commit it points to; otherwise they are the same.
    pub fn commit(&self) -> &str {
        match &self.head_commit {
            Some(c) if !self.deleted => &c.id,
            _ => &self.after,
        }
    }

    /// Checks every field slipway uses; the error names the first bad one. A deleted ref has an
    /// all-zero `after` and no head commit, which is valid.
    fn validate(&self) -> Result<(), PayloadError> {
        names::check_ref(&self.git_ref).map_err(|e| PayloadError::invalid("ref", e))?;
        names::check_sha(&self.before).map_err(|e| PayloadError::invalid("before", e))?;
        names::check_sha(&self.after).map_err(|e| PayloadError::invalid("after", e))?;
        names::check_repository(&self.repository.full_name)
            .map_err(|e| PayloadError::invalid("repository.full_name", e))?;
        names::check_clone_url(&self.repository.clone_url)
            .map_err(|e| PayloadError::invalid("repository.clone_url", e))?;
        if let Some(b) = self
            .repository
            .default_branch
            .as_deref()
            .or(self.repository.master_branch.as_deref())
        {
            names::check_branch(b)
                .map_err(|e| PayloadError::invalid("repository.default_branch", e))?;
        }
        if let Some(h) = &self.head_commit {
            names::check_sha(&h.id).map_err(|e| PayloadError::invalid("head_commit.id", e))?;
        } else if !self.deleted && !is_zero_sha(&self.after) {
            return Err(PayloadError::MissingField("head_commit".into()));
        }
        match &self.invalid {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }

    /// The payload's changed paths (added, modified and removed, sorted, once each) and whether
    /// they are complete. At most `max_paths` are kept (and never more than [`MAX_JOB_PATHS`](crate::job::MAX_JOB_PATHS):
    /// the parser stops collecting there); past that the list is dropped and marked incomplete.
    pub fn changes(&self, max_paths: usize) -> PayloadChanges {
        let mut incomplete = if self.created || is_zero_sha(&self.before) {
            Some(Incomplete::NewRef)
        } else if self.forced {
            Some(Incomplete::Forced)
        } else if self.commit_count >= COMMIT_CAP {
            Some(Incomplete::CommitCap)
        } else if self.commit_count == 0 && self.before != self.after {
            Some(Incomplete::NoCommits)
        } else {
            None
        };
        let paths = if self.too_many_paths || self.paths.len() > max_paths {
            incomplete.get_or_insert(Incomplete::TooManyPaths);
            Vec::new()
        } else {
            self.paths.iter().map(|p| p.to_string()).collect()
        };
        PayloadChanges { paths, incomplete }
    }
}
