//! The planner: from a job and the repository at its commit, which images to build, with which
//! tags, in which order. (Issue 3 builds the logic; these types are the contract the spawner,
//! `slipway serve` and `slipway plan` share.)

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedImage {
    /// Repository reference without tag, e.g. `acme/web` or `ghcr.io/acme/web`.
    pub name: String,
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
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub platforms: Vec<String>,
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
}
