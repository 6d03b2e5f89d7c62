//! Cleanup of old CodeBuild builds: list every build of the project (paginated), read them in
//! batches of 100, delete the expired ones in batches of 100 and report what CodeBuild refused.
//! Which builds are expired is `slipway_core::retention`'s rule, shared with `slipway serve`.

use aws_sdk_codebuild::error::DisplayErrorContext;
use aws_sdk_codebuild::types::{Build, SortOrderType, StatusType};
use slipway_core::retention::{BuildAge, CleanupSummary, NotDeleted, Retention};
use time::OffsetDateTime;

/// CodeBuild's limit for `BatchGetBuilds` and `BatchDeleteBuilds`.
pub const BATCH_SIZE: usize = 100;

#[derive(Debug, thiserror::Error)]
pub enum CleanupError {
    #[error("listing the builds of project {project} failed: {reason}")]
    List { project: String, reason: String },
    #[error("reading builds of project {project} failed: {reason}")]
    Get { project: String, reason: String },
}

impl CleanupError {
    pub fn code(&self) -> &'static str {
        match self {
            CleanupError::List { .. } => "list_builds_failed",
            CleanupError::Get { .. } => "get_builds_failed",
        }
    }
}

/// What one run does.
#[derive(Debug, Clone)]
pub struct CleanupRequest {
    pub project: String,
    pub retention: Retention,
    /// List what would be deleted; delete nothing.
    pub dry_run: bool,
}

/// Every build id of the project, following `nextToken` to the end.
pub async fn list_build_ids(
    client: &aws_sdk_codebuild::Client,
    project: &str,
) -> Result<Vec<String>, CleanupError> {
    let mut ids = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let out = client
            .list_builds_for_project()
            .project_name(project)
            .sort_order(SortOrderType::Ascending)
            .set_next_token(token.take())
            .send()
            .await
            .map_err(|e| CleanupError::List {
                project: project.to_string(),
                reason: DisplayErrorContext(e).to_string(),
            })?;
        ids.extend(out.ids().iter().cloned());
        match out.next_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_string()),
            _ => break,
        }
    }
    Ok(ids)
}

fn to_time(t: Option<&aws_smithy_types::DateTime>) -> Option<OffsetDateTime> {
    t.and_then(|t| OffsetDateTime::from_unix_timestamp(t.secs()).ok())
}

fn age_of(build: &Build) -> Option<BuildAge> {
    Some(BuildAge {
        id: build.id()?.to_string(),
        running: !build.build_complete() || build.build_status() == Some(&StatusType::InProgress),
        started: to_time(build.start_time()),
        ended: to_time(build.end_time()),
    })
}

/// The ages of the given builds, read in batches of 100. Builds CodeBuild no longer knows are
/// left out.
pub async fn build_ages(
    client: &aws_sdk_codebuild::Client,
    project: &str,
    ids: &[String],
) -> Result<Vec<BuildAge>, CleanupError> {
    let mut ages = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(BATCH_SIZE) {
        let out = client
            .batch_get_builds()
            .set_ids(Some(chunk.to_vec()))
            .send()
            .await
            .map_err(|e| CleanupError::Get {
                project: project.to_string(),
                reason: DisplayErrorContext(e).to_string(),
            })?;
        ages.extend(out.builds().iter().filter_map(age_of));
    }
    Ok(ages)
}

/// Deletes `ids` in batches of 100. A batch that fails as a whole is reported build by build and
/// the next batch is still tried.
pub async fn delete_builds(
    client: &aws_sdk_codebuild::Client,
    ids: &[String],
) -> (Vec<String>, Vec<NotDeleted>) {
    let (mut deleted, mut refused) = (Vec::new(), Vec::new());
    for chunk in ids.chunks(BATCH_SIZE) {
        match client
            .batch_delete_builds()
            .set_ids(Some(chunk.to_vec()))
            .send()
            .await
        {
            Ok(out) => {
                deleted.extend(out.builds_deleted().iter().cloned());
                refused.extend(out.builds_not_deleted().iter().map(|n| NotDeleted {
                    id: n.id().unwrap_or_default().to_string(),
                    reason: n.status_code().unwrap_or("unknown").to_string(),
                }));
            }
            Err(e) => {
                let reason = format!("request failed: {}", DisplayErrorContext(e));
                tracing::error!(builds = chunk.len(), %reason, "cleanup batch delete failed");
                refused.extend(chunk.iter().map(|id| NotDeleted {
                    id: id.clone(),
                    reason: reason.clone(),
                }));
            }
        }
    }
    (deleted, refused)
}

/// One cleanup run of the project at `now`.
pub async fn cleanup(
    client: &aws_sdk_codebuild::Client,
    req: &CleanupRequest,
    now: OffsetDateTime,
) -> Result<CleanupSummary, CleanupError> {
    let ids = list_build_ids(client, &req.project).await?;
    let ages = build_ages(client, &req.project, &ids).await?;
    let selection = req.retention.select(&ages, now);
    for id in &selection.running {
        tracing::info!(build = %id, "cleanup keeps a running build");
    }
    let (deleted, not_deleted, would_delete) = if req.dry_run {
        (Vec::new(), Vec::new(), selection.expired.clone())
    } else {
        let (d, n) = delete_builds(client, &selection.expired).await;
        (d, n, Vec::new())
    };
    for n in &not_deleted {
        tracing::warn!(build = %n.id, reason = %n.reason, "CodeBuild did not delete a build");
    }
    let summary = CleanupSummary {
        project: req.project.clone(),
        retention_days: req.retention.in_days(),
        cutoff: req.retention.cutoff(now),
        dry_run: req.dry_run,
        examined: ages.len(),
        deleted,
        would_delete,
        not_deleted,
        running: selection.running,
        recent: selection.recent,
        unknown_age: selection.unknown_age,
    };
    tracing::info!(
        project = %summary.project,
        dry_run = summary.dry_run,
        examined = summary.examined,
        deleted = summary.deleted.len(),
        would_delete = summary.would_delete.len(),
        not_deleted = summary.not_deleted.len(),
        running = summary.running.len(),
        recent = summary.recent,
        "cleanup finished"
    );
    Ok(summary)
}
