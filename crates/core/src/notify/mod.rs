//! Build notifications, pure: what a build's result sets in motion and how it is told. The
//! orchestration [`notify`] is generic over the [`Sinks`] port; the notifier Lambda calls it with
//! AWS adapters, `slipway serve` with its own sinks. Nothing here reads a clock or touches the
//! network.
//!
//! - [`event`]: CodeBuild's "Build State Change" event read leniently into a [`BuildOutcome`];
//! - [`render`]: subject, readable body, JSON form, Chatbot form, attributes, commit status;
//! - [`children`]: the job that rebuilds a child after its parent's success;
//! - [`deploy_targets`]: the deploy targets' configuration and the body of a deploy call.

mod children;
mod deploy_targets;
mod event;
mod render;

use std::future::Future;

use serde::Serialize;

use crate::build_env::BuildPart;
use crate::job::Job;
use crate::listener::{Enqueued, QueueError};

pub use children::{ChildrenReport, child_job, child_job_id};
pub use deploy_targets::{
    DEPLOY_DEFAULT_RETRIES, DEPLOY_DEFAULT_TIMEOUT, DeployTarget, DeployTargetError, deploy_body,
    parse_deploy_targets,
};
pub use event::{BuildOutcome, BuildStatus, EventError, FailedPhase, parse_event, parse_time};
pub use render::{
    CommitStatus, MAX_STATUS_DESCRIPTION, MAX_SUBJECT_CHARS, Notification, commit_status,
    commit_url, format_duration, render, subject,
};

pub(super) fn shorten(s: &str, max_chars: usize) -> String {
    if s.chars().count() <= max_chars {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max_chars.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// What happened to one deploy target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeployResult {
    pub target: String,
    /// `delivered`, `failed`, `not_configured`, `secret_unavailable`, `invalid`.
    pub outcome: String,
    pub attempts: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
}

impl DeployResult {
    pub fn delivered(&self) -> bool {
        self.outcome == "delivered"
    }
}

/// Everything that happened for one build, in the log, the JSON form and the invocation result.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    pub build_id: String,
    pub status: String,
    pub image: String,
    pub children: ChildrenReport,
    pub deploys: Vec<DeployResult>,
    /// `set`, `not_used` (CodeBuild reports itself or the state is not reported), or the error.
    pub commit_status: String,
    /// `published`, `not_published` (state not reported), or the error.
    pub publish: String,
}

/// What the orchestration does, beyond rendering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyConfig {
    /// Report `IN_PROGRESS` (a message and a `pending` commit status) too.
    pub in_progress: bool,
    /// Set GitHub commit statuses (off when CodeBuild's own status reporting is in use).
    pub commit_status: bool,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        Self {
            in_progress: false,
            commit_status: true,
        }
    }
}

/// A sink's failure, in one line without secrets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct SinkError {
    pub code: String,
    pub message: String,
}

impl From<QueueError> for SinkError {
    fn from(e: QueueError) -> Self {
        SinkError {
            code: e.code().into(),
            message: e.to_string(),
        }
    }
}

/// Where results go. The Lambda implements these with SNS, GitHub, signed deploy calls and the
/// jobs queue; `slipway serve` with stdout, notification calls, deploy calls and its own queue.
pub trait Sinks: Sync {
    /// Delivers the notification (every form the sink carries).
    fn publish(&self, n: &Notification) -> impl Future<Output = Result<(), SinkError>> + Send;
    /// Sets a commit status.
    fn commit_status(&self, s: &CommitStatus)
    -> impl Future<Output = Result<(), SinkError>> + Send;
    /// Calls the named deploy targets for a successful build; one result per name, in order.
    /// A target that fails never stops the others.
    fn deploy(
        &self,
        targets: &[String],
        o: &BuildOutcome,
    ) -> impl Future<Output = Vec<DeployResult>> + Send;
    /// Queues a job, deduplicated by `job.id`.
    fn enqueue(&self, job: &Job) -> impl Future<Output = Result<Enqueued, SinkError>> + Send;
}

/// Handles one build result: children, commit status, deploy calls, then the notification
/// that reports all of them. Returns what happened; every decision is also one log line.
pub async fn notify<S: Sinks>(o: &BuildOutcome, cfg: &NotifyConfig, sinks: &S) -> Report {
    let mut report = Report {
        build_id: o.build_id.clone(),
        status: o.status.as_str().into(),
        image: o.info.image.clone(),
        ..Report::default()
    };
    let i = &o.info;
    // The platform builds of a CodeBuild batch are parts of one image: its merge reports it (one
    // result, the list's digest), or a failed platform does; fast-fail stops the others, which
    // stay silent, and a platform's success is not yet the image's.
    if let BuildPart::Platform(platform) = &i.part
        && o.status != BuildStatus::Failed
    {
        tracing::info!(build_id = %o.build_id, image = %i.image, platform = %platform, status = o.status.as_str(), "platform build of a batch; not reported (the merge or a failed platform reports the image)");
        report.commit_status = "not_used".into();
        report.publish = "not_published".into();
        return report;
    }
    if o.status == BuildStatus::InProgress && !cfg.in_progress {
        tracing::info!(build_id = %o.build_id, image = %i.image, "build in progress; not reported (in-progress notifications are off)");
        report.commit_status = "not_used".into();
        report.publish = "not_published".into();
        return report;
    }

    let mut children: Vec<&String> = i.children.iter().collect();
    children.sort();
    children.dedup();
    match o.status {
        BuildStatus::Succeeded => {
            for child in children {
                let job = child_job(o, child);
                match sinks.enqueue(&job).await {
                    Ok(_) => {
                        tracing::info!(build_id = %o.build_id, parent = %i.image, child = %child, job_id = %job.id, "child queued");
                        report.children.queued.push((child.clone(), job.id));
                    }
                    Err(e) => {
                        tracing::error!(build_id = %o.build_id, parent = %i.image, child = %child, error = %e, "child not queued");
                        report.children.failed.push((child.clone(), e.code));
                    }
                }
            }
        }
        BuildStatus::Failed | BuildStatus::Stopped => {
            for child in children {
                tracing::info!(build_id = %o.build_id, parent = %i.image, child = %child, status = o.status.as_str(), "child skipped: parent did not succeed");
                report.children.skipped.push(child.clone());
            }
        }
        BuildStatus::InProgress => {}
    }

    report.commit_status = if cfg.commit_status {
        let status = commit_status(o);
        match sinks.commit_status(&status).await {
            Ok(()) => {
                tracing::info!(repository = %i.repository, commit = %i.commit, context = %status.context, state = status.state, "commit status set");
                "set".into()
            }
            Err(e) => {
                tracing::error!(repository = %i.repository, commit = %i.commit, context = %status.context, error = %e, "commit status not set");
                format!("failed: {}", e.code)
            }
        }
    } else {
        "not_used".into()
    };

    if o.status == BuildStatus::Succeeded && !i.deploy.is_empty() {
        report.deploys = sinks.deploy(&i.deploy, o).await;
        for d in &report.deploys {
            tracing::info!(build_id = %o.build_id, image = %i.image, target = %d.target, outcome = %d.outcome, attempts = d.attempts, status = ?d.status, error_code = ?d.error_code, "deploy call");
        }
    }

    let n = render(o, &report);
    report.publish = match sinks.publish(&n).await {
        Ok(()) => {
            tracing::info!(build_id = %o.build_id, image = %i.image, status = o.status.as_str(), subject = %n.subject, "notification published");
            "published".into()
        }
        Err(e) => {
            tracing::error!(build_id = %o.build_id, image = %i.image, error = %e, "notification not published");
            format!("failed: {}", e.code)
        }
    };
    report
}

/// A result to notify about, for the tests of every part of this module.
#[cfg(test)]
mod test_support {
    use super::{BuildOutcome, BuildStatus};
    use crate::build_env::BuildInfo;

    pub(super) fn outcome(image: &str, tag: &str, status: BuildStatus) -> BuildOutcome {
        BuildOutcome {
            status,
            build_id: "slipway:0b0c".into(),
            info: BuildInfo {
                job_id: "push-1".into(),
                delivery_id: "1".into(),
                trigger: "push".into(),
                repository: "acme/site".into(),
                git_ref: "refs/heads/main".into(),
                default_branch: "main".into(),
                commit: "6113728f27ae82c7b1a177c8d03f9e96e0adf246".into(),
                image: image.into(),
                tags: vec![tag.into()],
                children: vec![],
                deploy: vec![],
                autotest: false,
                digest: None,
                part: Default::default(),
            },
            log_url: None,
            duration: None,
            failed_phase: None,
            clone_url: None,
        }
    }
}
