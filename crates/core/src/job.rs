//! The job: what the listener (or a schedule, or a parent build) hands to the planner. Small, so
//! that it fits a queue message with room to spare, and self-contained, so that the planner needs
//! nothing from the webhook payload.

use serde::{Deserialize, Serialize};

use crate::push::{Incomplete, PushEvent};

/// A job carries at most this many of the payload's changed paths; past it the planner lists the
/// changes from the repository itself.
pub const MAX_JOB_PATHS: usize = 2000;

/// What caused the job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Trigger {
    /// A GitHub push webhook.
    Push,
    /// A scheduled rebuild (`name` is the schedule's).
    Schedule { name: String },
    /// A parent image built successfully; its children follow.
    Parent { image: String, build_id: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    /// Unique per job; for pushes, `push-<delivery id>`.
    pub id: String,
    pub trigger: Trigger,
    /// `X-GitHub-Delivery` for pushes; for other jobs the id of what caused them.
    pub delivery_id: String,
    /// `owner/name` as GitHub spells it.
    pub repository: String,
    pub clone_url: String,
    pub private: bool,
    pub default_branch: String,
    #[serde(rename = "ref")]
    pub git_ref: String,
    /// The ref's previous commit; all zeros for a new ref.
    pub before: String,
    /// What the ref points to now (for an annotated tag, the tag object).
    pub after: String,
    /// The commit to build (for an annotated tag, the commit the tag points to).
    pub commit: String,
    #[serde(default)]
    pub created: bool,
    #[serde(default)]
    pub forced: bool,
    /// The payload's changed paths, sorted.
    #[serde(default)]
    pub changed_paths: Vec<String>,
    /// Why `changed_paths` cannot be trusted to list every change (`None`: it can).
    #[serde(default)]
    pub changes_incomplete: Option<Incomplete>,
    /// When not empty, build only these images (scheduled rebuilds and children).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<String>,
}

impl Job {
    /// The job for a validated push.
    pub fn from_push(push: &PushEvent<'_>, delivery_id: &str) -> Self {
        let changes = push.changes(MAX_JOB_PATHS);
        Job {
            id: format!("push-{delivery_id}"),
            trigger: Trigger::Push,
            delivery_id: delivery_id.to_string(),
            repository: push.repository.full_name.to_string(),
            clone_url: push.repository.clone_url.to_string(),
            private: push.repository.private,
            default_branch: push.default_branch().to_string(),
            git_ref: push.git_ref.to_string(),
            before: push.before.to_string(),
            after: push.after.to_string(),
            commit: push.commit().to_string(),
            created: push.created,
            forced: push.forced,
            changed_paths: changes.paths,
            changes_incomplete: changes.incomplete,
            images: Vec::new(),
        }
    }

    /// Whether the payload's paths can be used as the whole change.
    pub fn changes_complete(&self) -> bool {
        self.changes_incomplete.is_none()
    }

    /// The queue's ordering group: jobs of one repository are handled in order.
    pub fn group_id(&self) -> String {
        self.repository.to_ascii_lowercase()
    }
}

/// The job as the queue carries it.
pub fn to_json(job: &Job) -> String {
    serde_json::to_string(job).expect("a job always serializes")
}

/// A job read off the queue.
pub fn from_json(s: &str) -> Result<Job, serde_json::Error> {
    serde_json::from_str(s)
}
