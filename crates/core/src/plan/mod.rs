//! The planner: from a job and the repository at its commit, which images to build, with which
//! tags, in which order. These types are the contract the spawner, `slipway serve` and
//! `slipway plan` share; [`plan_job`] is the one entry point, [`planner::plan`] the pure core.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub mod config;
pub mod dockerfile;
pub mod init;
pub mod naming;
pub mod planner;
pub mod source;

pub use config::{CONFIG_PATH, Config, ConfigError};
pub use planner::{PlanInput, plan};
pub use source::{Diff, RepoSource, SourceError};

use futures::StreamExt as _;

use crate::job::{Job, Trigger};
use crate::names::{check_branch, check_ref, check_sha, is_zero_sha};
use crate::refs::{RefKind, split_ref};

/// What a push builds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub repository: String,
    #[serde(rename = "ref")]
    pub git_ref: String,
    /// The commit every image is built at (for an annotated tag, the commit it points to).
    pub commit: String,
    /// Where the changed paths came from and why.
    pub changes: ChangeSource,
    /// In build order: every image comes after the images it is built `FROM`.
    pub images: Vec<PlannedImage>,
    /// Images that changed but cannot be built (a name that cannot be made valid, two contexts
    /// with one name): reported, never built.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<PlanProblem>,
    /// The repository's other images, not built, and why (nothing in their context changed, no
    /// build rule for the ref, the job names other images): the plan's whole decision, shown on
    /// serve's push page.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<SkippedImage>,
}

/// An image the plan leaves out on purpose.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkippedImage {
    /// The image name (the context when no valid name can be made).
    pub name: String,
    pub context: String,
    pub reason: String,
}

/// An image the plan could not include, and what to fix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanProblem {
    pub context: String,
    /// `invalid_name`, `duplicate_name`, `no_tags`.
    pub code: String,
    pub message: String,
}

/// How the planner learned what changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "source", rename_all = "snake_case")]
pub enum ChangeSource {
    /// The repository's own diff between `base` and the commit.
    Repository { base: String },
    /// The payload's file lists (the repository could not be diffed; said in `note`).
    Payload { note: String },
    /// Every image is built (`reason` says why: a new ref with no base, a global path, a tag...).
    All { reason: String },
    /// The job named the images (scheduled rebuilds, children of a parent).
    Named,
}

/// One image to build.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedImage {
    /// Repository reference without tag, e.g. `acme/web` or `ghcr.io/acme/web`.
    pub name: String,
    /// `[ecr]` of `slipway.toml`: how the image's ECR repository is created on its first push.
    #[serde(default, skip_serializing_if = "crate::ecr::EcrSettings::is_default")]
    pub ecr: crate::ecr::EcrSettings,
    /// Build context, relative to the repository root (`.` for the root).
    pub context: String,
    /// Dockerfile path, relative to the repository root.
    pub dockerfile: String,
    pub commit: String,
    /// Tags to push (without the name).
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub build_args: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Target platforms (empty: the builder's own). More than one makes a manifest list.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub platforms: Vec<String>,
    /// On CodeBuild, build every platform in one build under QEMU instead of one native build
    /// per platform (needed for platforms CodeBuild has no native environment for).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub emulate: bool,
    /// BuildKit attestations to attach (`provenance`); none by default.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attestations: Vec<String>,
    /// Run `docker-compose.test.yml` (service `sut`) before pushing.
    #[serde(default)]
    pub autotest: bool,
    /// Why it is built: the changed paths (or the rule) that put it in the plan.
    pub reasons: Vec<String>,
    /// Build wave: 0 first; an image's wave is after every parent's.
    pub order: u32,
    /// Images of this repository that this one is built `FROM`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parents: Vec<String>,
    /// Images of this repository built `FROM` this one: started when this one succeeds.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<String>,
    /// Scheduled rebuilds: `rate(...)` or `cron(...)` as EventBridge writes them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// Deploy targets notified when the image is pushed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deploy: Vec<String>,
    /// The README whose text becomes the repository's description after a push, relative to
    /// the repository root; `None`: `README.md` of the context ([`crate::readme`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readme: Option<String>,
    /// How the README becomes the description (`slipway.toml`'s `readme_sync`).
    #[serde(default, skip_serializing_if = "crate::readme::ReadmeSync::is_default")]
    pub readme_sync: crate::readme::ReadmeSync,
}

/// How many Dockerfiles are read at once.
const DOCKERFILE_READS: usize = 8;

/// What the deployment decides, not the repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanSettings {
    /// Where images go: `acme` (Docker Hub), `ghcr.io/acme`, `123.dkr.ecr.eu-west-1.amazonaws.com/team`.
    pub namespace: String,
}

impl PlanSettings {
    pub fn new(namespace: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
        }
    }
}

/// Why a job could not be planned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// A job field or setting that cannot be used (not a sha, not a ref).
    #[error("{0}")]
    InvalidInput(String),
    #[error("the image namespace `{namespace}` is invalid: {reason}")]
    Namespace { namespace: String, reason: String },
    /// `slipway.toml` is malformed; names the line and the key.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The job names an image the repository does not have at the commit.
    #[error("the job names the image `{0}`, which the repository does not have at this commit")]
    UnknownImage(String),
    /// Dockerfiles build `FROM` each other in a circle.
    #[error("images are built FROM each other in a cycle: {0}")]
    Cycle(String),
    #[error("{0}")]
    Source(#[from] SourceError),
}

impl PlanError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidInput(_) => "invalid_input",
            Self::Namespace { .. } => "invalid_namespace",
            Self::Config(_) => "invalid_config",
            Self::UnknownImage(_) => "unknown_image",
            Self::Cycle(_) => "dependency_cycle",
            Self::Source(e) => e.code(),
        }
    }

    /// Whether the same job may plan later (rate limits, an unreachable source).
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Source(e) if e.is_retryable())
    }
}

/// Plans a job: reads the repository through `source` at the job's commit, decides what changed,
/// and calls the pure [`plan`].
///
/// What changed: a new branch is compared with its merge base with the default branch, a force
/// push with the merge base of `before` and `after`, any other push with `before`. When the
/// repository cannot list every change, the payload's paths are used if the job trusts them,
/// else every image is planned; the plan's `changes` says which.
pub async fn plan_job<S: RepoSource>(
    source: &S,
    job: &Job,
    settings: &PlanSettings,
) -> Result<Plan, PlanError> {
    crate::names::check_namespace(&settings.namespace).map_err(|reason| PlanError::Namespace {
        namespace: settings.namespace.clone(),
        reason: reason.to_string(),
    })?;
    check_ref(&job.git_ref)
        .map_err(|e| PlanError::InvalidInput(format!("the ref `{}` {e}", job.git_ref)))?;
    check_branch(&job.default_branch).map_err(|e| {
        PlanError::InvalidInput(format!("the default branch `{}` {e}", job.default_branch))
    })?;
    let rev = if job.commit.is_empty() {
        &job.after
    } else {
        &job.commit
    };
    for (field, sha) in [("commit", rev), ("before", &job.before)] {
        check_sha(sha).map_err(|e| PlanError::InvalidInput(format!("`{field}` {e}")))?;
    }
    let Some((kind, branch)) = split_ref(&job.git_ref) else {
        return Err(PlanError::InvalidInput(format!(
            "`{}` is neither a branch nor a tag",
            job.git_ref
        )));
    };

    let commit = source.resolve(rev).await?;
    let files = source.tree(&commit).await?;
    let config = if files.iter().any(|f| f == CONFIG_PATH) {
        match source.read_file(&commit, CONFIG_PATH).await? {
            Some(text) => Config::parse(&text)?,
            None => Config::zero(),
        }
    } else {
        Config::zero()
    };
    let specs = planner::discover(&config, &files, &settings.namespace, &job.repository);
    let mut paths: Vec<&str> = specs.iter().map(|s| s.dockerfile.as_str()).collect();
    paths.sort_unstable();
    paths.dedup();
    // A few reads at a time: a monorepo on GitHub has hundreds of Dockerfiles.
    let read: Vec<Result<Option<String>, SourceError>> = futures::stream::iter(&paths)
        .map(|p| source.read_file(&commit, p))
        .buffered(DOCKERFILE_READS)
        .collect()
        .await;
    let mut dockerfiles = BTreeMap::new();
    for (p, r) in paths.iter().zip(read) {
        if let Some(text) = r? {
            dockerfiles.insert(p.to_string(), text);
        }
    }
    let repo_tags = if kind == RefKind::Tag {
        source.tags().await?
    } else {
        Vec::new()
    };

    // A scheduled rebuild that names no image rebuilds every image with a `schedule`.
    let scheduled: Vec<String>;
    let only: &[String] =
        if job.images.is_empty() && matches!(job.trigger, Trigger::Schedule { .. }) {
            scheduled = crate::schedule::scheduled_images(
                job,
                specs.iter().filter_map(|s| {
                    let name = s.name.as_deref().ok()?;
                    Some((name, s.config.and_then(|c| c.schedule.as_deref())))
                }),
            );
            &scheduled
        } else {
            &job.images
        };

    let mut changed_paths: Vec<String> = Vec::new();
    let changes = if !only.is_empty() || matches!(job.trigger, Trigger::Schedule { .. }) {
        ChangeSource::Named
    } else if kind == RefKind::Tag {
        // The planner decides a tag push by its name, not its diff.
        ChangeSource::All {
            reason: "a tag push".into(),
        }
    } else {
        let base: Result<String, String> = if is_zero_sha(&job.before) || job.created {
            if branch == job.default_branch {
                Err("a new default branch: there is nothing to compare with".into())
            } else {
                match source
                    .resolve(&format!("refs/heads/{}", job.default_branch))
                    .await
                {
                    Ok(head) => match source.merge_base(&head, &commit).await {
                        Ok(Some(mb)) => Ok(mb),
                        Ok(None) | Err(SourceError::NotFound(_)) => Err(format!(
                            "a new branch that shares no history with `{}`",
                            job.default_branch
                        )),
                        Err(e) => return Err(e.into()),
                    },
                    Err(SourceError::NotFound(_)) => Err(format!(
                        "a new branch, and the default branch `{}` was not found",
                        job.default_branch
                    )),
                    Err(e) => return Err(e.into()),
                }
            }
        } else if job.forced {
            match source.merge_base(&job.before, &commit).await {
                Ok(Some(mb)) => Ok(mb),
                Ok(None) => Err("a force push that shares no history with the old head".into()),
                Err(SourceError::NotFound(_)) => {
                    Err("a force push whose old head is no longer in the repository".into())
                }
                Err(e) => return Err(e.into()),
            }
        } else {
            Ok(job.before.clone())
        };
        match base {
            Ok(base) => match source.diff(&base, &commit).await {
                Ok(d) if d.complete => {
                    changed_paths = d.paths;
                    ChangeSource::Repository { base }
                }
                Ok(_) => fallback(
                    job,
                    &mut changed_paths,
                    "the repository's diff is truncated",
                ),
                Err(SourceError::NotFound(m)) => fallback(
                    job,
                    &mut changed_paths,
                    &format!("the repository could not be diffed ({m})"),
                ),
                Err(e) => return Err(e.into()),
            },
            Err(reason) => ChangeSource::All { reason },
        }
    };
    tracing::info!(repository = %job.repository, git_ref = %job.git_ref, commit = %commit, changes = ?changes, changed = changed_paths.len(), "planning");

    plan(&PlanInput {
        repository: &job.repository,
        git_ref: &job.git_ref,
        default_branch: &job.default_branch,
        commit: &commit,
        files: &files,
        config: &config,
        dockerfiles: &dockerfiles,
        changes,
        changed_paths: &changed_paths,
        repo_tags: &repo_tags,
        only,
        namespace: &settings.namespace,
    })
}

/// The repository could not list the change: the payload's paths if the job trusts them.
fn fallback(job: &Job, paths: &mut Vec<String>, why: &str) -> ChangeSource {
    match job.changes_incomplete {
        None => {
            *paths = job.changed_paths.clone();
            ChangeSource::Payload {
                note: format!("{why}; using the payload's file lists"),
            }
        }
        Some(inc) => ChangeSource::All {
            reason: format!(
                "{why}, and the payload's lists are incomplete ({})",
                inc.describe()
            ),
        },
    }
}
