//! Scheduled rebuilds: the message an EventBridge schedule puts on the jobs queue and the job it
//! becomes at the branch head. The schedule expressions themselves (`cron(...)`, `rate(...)`,
//! which `slipway serve` evaluates) are [`expr`]. Pure: the head commit and the time are passed
//! in.

mod expr;

use serde::{Deserialize, Serialize};

use crate::job::{Job, Trigger};
use crate::names::{self, Invalid};

pub use expr::{Cron, ScheduleExpr, Schedules};

/// The value of the `kind` field that marks a queue message as a [`ScheduledRebuild`] (a [`Job`]
/// has no top-level `kind`).
pub const SCHEDULED_REBUILD_KIND: &str = "scheduled_rebuild";

/// What an EventBridge schedule rule puts on the jobs queue, as constant JSON:
///
/// ```json
/// {"kind": "scheduled_rebuild", "schedule": "weekly-base", "repository": "acme/images",
///  "clone_url": "https://github.com/acme/images.git", "images": ["acme/base"]}
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduledRebuild {
    /// Always [`SCHEDULED_REBUILD_KIND`].
    pub kind: String,
    /// The schedule's name: becomes the job's trigger and part of its id.
    pub schedule: String,
    /// `owner/name`.
    pub repository: String,
    pub clone_url: String,
    /// The branch to build; absent: the repository's default branch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// Images to rebuild; empty: every image marked `schedule` in `slipway.toml`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<String>,
    /// Makes the job id unique per firing when set (EventBridge's event id through an input
    /// transformer, or the queue's message id). Absent, the id is derived from schedule and
    /// commit, so a redelivered message yields the same job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
}

/// Why a scheduled rebuild (or a schedule expression) was refused. `code()` is stable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("the message is not valid JSON for a job or a scheduled rebuild: {0}")]
    Json(String),
    #[error("field `{field}` is invalid: {reason}")]
    Field {
        field: &'static str,
        reason: Invalid,
    },
    #[error("schedule expression `{expression}` is invalid: {reason}")]
    Expression { expression: String, reason: String },
}

impl ScheduleError {
    pub fn code(&self) -> &'static str {
        match self {
            ScheduleError::Json(_) => "invalid_json",
            ScheduleError::Field { .. } => "invalid_field",
            ScheduleError::Expression { .. } => "invalid_schedule_expression",
        }
    }
}

fn field(field: &'static str) -> impl FnOnce(Invalid) -> ScheduleError {
    move |reason| ScheduleError::Field { field, reason }
}

impl ScheduledRebuild {
    /// A message for `schedule` with the default branch and every scheduled image.
    pub fn new(schedule: &str, repository: &str, clone_url: &str) -> Self {
        Self {
            kind: SCHEDULED_REBUILD_KIND.to_string(),
            schedule: schedule.to_string(),
            repository: repository.to_string(),
            clone_url: clone_url.to_string(),
            branch: None,
            images: Vec::new(),
            run_id: None,
        }
    }

    /// Every field checked; the error names the field.
    pub fn validate(&self) -> Result<(), ScheduleError> {
        if self.kind != SCHEDULED_REBUILD_KIND {
            return Err(ScheduleError::Field {
                field: "kind",
                reason: Invalid("must be `scheduled_rebuild`"),
            });
        }
        names::check_schedule_name(&self.schedule).map_err(field("schedule"))?;
        names::check_repository(&self.repository).map_err(field("repository"))?;
        names::check_clone_url(&self.clone_url).map_err(field("clone_url"))?;
        if let Some(branch) = &self.branch {
            names::check_branch(branch).map_err(field("branch"))?;
        }
        for image in &self.images {
            names::check_image_name(image).map_err(field("images"))?;
        }
        if let Some(run) = &self.run_id {
            names::check_run_id(run).map_err(field("run_id"))?;
        }
        Ok(())
    }

    /// The branch to build: the message's, or the repository's default.
    pub fn branch<'a>(&'a self, default_branch: &'a str) -> &'a str {
        self.branch.as_deref().unwrap_or(default_branch)
    }
}

/// One message from the jobs queue: a job (from the listener or the notifier) or a scheduled
/// rebuild (from an EventBridge schedule) that still needs the branch head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueMessage {
    Job(Box<Job>),
    ScheduledRebuild(ScheduledRebuild),
}

/// Reads a queue message body. A scheduled rebuild is validated here; a job was validated by
/// whoever queued it.
pub fn parse_queue_message(body: &str) -> Result<QueueMessage, ScheduleError> {
    let value: serde_json::Value =
        serde_json::from_str(body).map_err(|e| ScheduleError::Json(e.to_string()))?;
    if value.get("kind").is_some() {
        let msg: ScheduledRebuild =
            serde_json::from_value(value).map_err(|e| ScheduleError::Json(e.to_string()))?;
        msg.validate()?;
        Ok(QueueMessage::ScheduledRebuild(msg))
    } else {
        let job: Job =
            serde_json::from_value(value).map_err(|e| ScheduleError::Json(e.to_string()))?;
        Ok(QueueMessage::Job(Box::new(job)))
    }
}

/// The job for a scheduled rebuild, at `head_commit` of the branch (the message's branch, or
/// `default_branch`): a normal build of that commit (same ref, same tags), restricted to the
/// named images. `before == after == commit` and the change list is complete and empty: nothing
/// changed, the images are rebuilt because the schedule says so. With no image named, `images` is
/// empty and the planner builds every image marked `schedule` in `slipway.toml`
/// (see [`scheduled_images`]).
pub fn rebuild_job(
    msg: &ScheduledRebuild,
    default_branch: &str,
    head_commit: &str,
) -> Result<Job, ScheduleError> {
    msg.validate()?;
    names::check_branch(default_branch).map_err(field("default_branch"))?;
    names::check_sha(head_commit).map_err(field("head_commit"))?;
    let branch = msg.branch(default_branch);
    let short = &head_commit[..12];
    // At most 9 + 48 + 1 + 12 + 1 + 36 = 107 characters for the id, 61 for the delivery id.
    let (id, delivery_id) = match &msg.run_id {
        Some(run) => (
            format!("schedule-{}-{short}-{run}", msg.schedule),
            run.clone(),
        ),
        None => (
            format!("schedule-{}-{short}", msg.schedule),
            format!("{}-{short}", msg.schedule),
        ),
    };
    let mut images = msg.images.clone();
    images.sort();
    images.dedup();
    Ok(Job {
        id,
        trigger: Trigger::Schedule {
            name: msg.schedule.clone(),
        },
        delivery_id,
        repository: msg.repository.clone(),
        clone_url: msg.clone_url.clone(),
        // The repository is read with the deployment's credentials either way; the flag only
        // matters for the listener's public-repository filter, which a schedule bypasses.
        private: false,
        default_branch: default_branch.to_string(),
        git_ref: format!("refs/heads/{branch}"),
        before: head_commit.to_string(),
        after: head_commit.to_string(),
        commit: head_commit.to_string(),
        created: false,
        forced: false,
        changed_paths: Vec::new(),
        changes_incomplete: None,
        images,
    })
}

/// For a scheduled job that names no image: the images marked with a schedule in
/// `slipway.toml`, given as `(name, schedule)` pairs (sorted, unique). A job that names images
/// keeps exactly those.
pub fn scheduled_images<'a>(
    job: &Job,
    configured: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
) -> Vec<String> {
    let mut out: Vec<String> = if job.images.is_empty() {
        configured
            .into_iter()
            .filter(|(_, schedule)| schedule.is_some())
            .map(|(name, _)| name.to_string())
            .collect()
    } else {
        job.images.clone()
    };
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str = "6113728f27ae82c7b1a177c8d03f9e96e0adf246";

    #[test]
    fn rebuild_job_is_a_build_of_the_head() {
        let mut msg = ScheduledRebuild::new(
            "weekly",
            "acme/images",
            "https://github.com/acme/images.git",
        );
        msg.images = vec!["acme/web".into(), "acme/base".into(), "acme/web".into()];
        let job = rebuild_job(&msg, "main", HEAD).unwrap();
        assert_eq!(job.id, "schedule-weekly-6113728f27ae");
        assert_eq!(job.delivery_id, "weekly-6113728f27ae");
        assert_eq!(
            job.trigger,
            Trigger::Schedule {
                name: "weekly".into()
            }
        );
        assert_eq!(job.git_ref, "refs/heads/main");
        assert_eq!(
            (&*job.before, &*job.after, &*job.commit),
            (HEAD, HEAD, HEAD)
        );
        assert_eq!(job.images, vec!["acme/base", "acme/web"]);
        assert!(job.changes_complete() && job.changed_paths.is_empty());
        assert_eq!(job.group_id(), "acme/images");

        msg.branch = Some("release/2".into());
        msg.run_id = Some("e2a1c9f0-1111-2222-3333-444455556666".into());
        let job = rebuild_job(&msg, "main", HEAD).unwrap();
        assert_eq!(job.git_ref, "refs/heads/release/2");
        assert_eq!(job.default_branch, "main");
        assert_eq!(job.delivery_id, "e2a1c9f0-1111-2222-3333-444455556666");
        assert!(job.id.ends_with("-e2a1c9f0-1111-2222-3333-444455556666"));

        // The longest names still make ids SQS and the spawner accept.
        msg.schedule = "s".repeat(names::MAX_SCHEDULE_NAME);
        msg.run_id = Some("f".repeat(36));
        let job = rebuild_job(&msg, "main", HEAD).unwrap();
        assert!(job.id.len() <= 128, "{}", job.id.len());
        msg.run_id = None;
        let job = rebuild_job(&msg, "main", HEAD).unwrap();
        assert!(names::check_delivery_id(&job.delivery_id).is_ok());
        msg.schedule.push('s');
        assert!(rebuild_job(&msg, "main", HEAD).is_err());
        msg.schedule = "weekly".into();
        msg.run_id = Some("f".repeat(37));
        assert!(rebuild_job(&msg, "main", HEAD).is_err());
    }

    #[test]
    fn rebuild_refuses_bad_fields() {
        let ok = ScheduledRebuild::new("w", "acme/images", "https://github.com/acme/images.git");
        let cases: Vec<(ScheduledRebuild, &str)> = vec![
            (
                ScheduledRebuild {
                    schedule: "a_b".into(),
                    ..ok.clone()
                },
                "schedule",
            ),
            (
                ScheduledRebuild {
                    repository: "acme/$(id)".into(),
                    ..ok.clone()
                },
                "repository",
            ),
            (
                ScheduledRebuild {
                    clone_url: "http://github.com/x".into(),
                    ..ok.clone()
                },
                "clone_url",
            ),
            (
                ScheduledRebuild {
                    branch: Some("a b".into()),
                    ..ok.clone()
                },
                "branch",
            ),
            (
                ScheduledRebuild {
                    images: vec!["acme/web;rm".into()],
                    ..ok.clone()
                },
                "images",
            ),
            // Image names follow the planner's rule: lower case only (`names::check_image_name`).
            (
                ScheduledRebuild {
                    images: vec!["Acme/Web".into()],
                    ..ok.clone()
                },
                "images",
            ),
            (
                ScheduledRebuild {
                    kind: "job".into(),
                    ..ok.clone()
                },
                "kind",
            ),
        ];
        for (msg, name) in cases {
            match rebuild_job(&msg, "main", HEAD) {
                Err(ScheduleError::Field { field, .. }) => assert_eq!(field, name),
                other => panic!("{name}: {other:?}"),
            }
        }
        assert!(matches!(
            rebuild_job(&ok, "main", "abc"),
            Err(ScheduleError::Field {
                field: "head_commit",
                ..
            })
        ));
        assert!(matches!(
            rebuild_job(&ok, "$(x)", HEAD),
            Err(ScheduleError::Field {
                field: "default_branch",
                ..
            })
        ));
    }

    #[test]
    fn queue_messages_of_both_kinds() {
        let body = r#"{"kind":"scheduled_rebuild","schedule":"nightly","repository":"acme/images",
            "clone_url":"https://github.com/acme/images.git"}"#;
        let QueueMessage::ScheduledRebuild(msg) = parse_queue_message(body).unwrap() else {
            panic!("not a scheduled rebuild");
        };
        assert_eq!(msg.schedule, "nightly");
        assert!(msg.images.is_empty() && msg.branch.is_none());

        let job = rebuild_job(&msg, "main", HEAD).unwrap();
        let QueueMessage::Job(back) =
            parse_queue_message(&serde_json::to_string(&job).unwrap()).unwrap()
        else {
            panic!("not a job");
        };
        assert_eq!(*back, job);

        let err = parse_queue_message(r#"{"kind":"scheduled_rebuild","schedule":"x"}"#);
        assert_eq!(err.unwrap_err().code(), "invalid_json");
        let err = parse_queue_message(
            r#"{"kind":"scheduled_rebuild","schedule":"x y","repository":"a/b","clone_url":"https://h/x"}"#,
        );
        assert_eq!(err.unwrap_err().code(), "invalid_field");
    }

    #[test]
    fn scheduled_images_from_config() {
        let msg = ScheduledRebuild::new("w", "acme/images", "https://github.com/acme/images.git");
        let job = rebuild_job(&msg, "main", HEAD).unwrap();
        let config = [
            ("acme/web", None),
            ("acme/base", Some("cron(0 3 ? * MON *)")),
            ("acme/tools", Some("rate(7 days)")),
        ];
        assert_eq!(
            scheduled_images(&job, config),
            vec!["acme/base", "acme/tools"]
        );
        let named = rebuild_job(
            &ScheduledRebuild {
                images: vec!["acme/web".into()],
                ..msg
            },
            "main",
            HEAD,
        )
        .unwrap();
        assert_eq!(scheduled_images(&named, config), vec!["acme/web"]);
    }
}
