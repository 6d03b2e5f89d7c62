//! Scheduled rebuilds run by `slipway serve` itself: `[[schedule]]` entries, fired with
//! `slipway_core::schedule::Schedules` (EventBridge's grammar, UTC, no backfill), each firing a
//! job for the branch head queued in the store like a webhook's.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use slipway_core::listener::Enqueued;
use slipway_core::schedule::{ScheduleExpr, ScheduledRebuild, Schedules, rebuild_job};
use time::OffsetDateTime;

use super::config::ScheduleConfig;
use super::store::Store;
use crate::git::GitRepo;

/// Serve's schedules and what they need to queue jobs.
pub struct Scheduler {
    pub store: Arc<Store>,
    pub wake: Arc<tokio::sync::Notify>,
    pub data_dir: PathBuf,
    pub entries: Vec<(ScheduleConfig, ScheduledRebuild)>,
    pub schedules: Schedules,
}

impl Scheduler {
    /// `started`: counts as the last firing, as EventBridge counts a rate from the rule's
    /// creation. Entries were validated with the configuration.
    pub fn new(
        store: Arc<Store>,
        wake: Arc<tokio::sync::Notify>,
        data_dir: PathBuf,
        configs: &[ScheduleConfig],
        started: OffsetDateTime,
    ) -> Result<Self, String> {
        let mut schedules = Schedules::new(started);
        let mut entries = Vec::new();
        for c in configs {
            let expr = ScheduleExpr::parse(&c.expression).map_err(|e| e.to_string())?;
            schedules.add(&c.name, expr, None);
            entries.push((c.clone(), c.rebuild()?));
        }
        Ok(Self {
            store,
            wake,
            data_dir,
            entries,
            schedules,
        })
    }

    /// Fires the schedules due at `now`: for each, the branch head is resolved and a job queued.
    /// Returns the queued job ids. A schedule that cannot be resolved is logged and skipped
    /// until its next firing.
    pub async fn tick(&mut self, now: OffsetDateTime) -> Vec<String> {
        let mut queued = Vec::new();
        for name in self.schedules.due(now) {
            let Some((cfg, msg)) = self.entries.iter().find(|(c, _)| c.name == name) else {
                continue;
            };
            // Unique per firing: a schedule rebuilds the same head again when it fires again.
            let mut msg = msg.clone();
            msg.run_id = Some(now.unix_timestamp().to_string());
            match self.fire(cfg, &msg).await {
                Ok((job_id, Enqueued::Queued)) => {
                    tracing::info!(schedule = %name, job_id = %job_id, "scheduled rebuild queued");
                    self.wake.notify_one();
                    queued.push(job_id);
                }
                Ok((job_id, Enqueued::Duplicate)) => {
                    tracing::info!(schedule = %name, job_id = %job_id, "scheduled rebuild already queued");
                }
                Err(e) => {
                    tracing::warn!(schedule = %name, error = %e, "scheduled rebuild not queued");
                }
            }
        }
        queued
    }

    async fn fire(
        &self,
        cfg: &ScheduleConfig,
        msg: &ScheduledRebuild,
    ) -> Result<(String, Enqueued), String> {
        let (default_branch, head) = self.resolve(cfg, msg).await?;
        let job = rebuild_job(msg, &default_branch, &head).map_err(|e| e.to_string())?;
        let store = self.store.clone();
        let j = job.clone();
        let r = tokio::task::spawn_blocking(move || store.insert_job(&j))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("the job store refused the job: {e}"))?;
        Ok((job.id, r))
    }

    /// The default branch and the head commit of the branch to build.
    async fn resolve(
        &self,
        cfg: &ScheduleConfig,
        msg: &ScheduledRebuild,
    ) -> Result<(String, String), String> {
        let url = &msg.clone_url;
        let local = url.strip_prefix("file://").map(Path::new);
        let repo = match local {
            Some(p) => GitRepo::open(p).await.map_err(|e| e.to_string())?,
            None => {
                let dir = self
                    .data_dir
                    .join("repos")
                    .join(msg.repository.to_ascii_lowercase().replace('/', "__"));
                if dir.join(".git").exists() || dir.join("HEAD").exists() {
                    GitRepo::open(&dir).await.map_err(|e| e.to_string())?
                } else {
                    GitRepo::clone_into(url, &dir)
                        .await
                        .map_err(|e| e.to_string())?
                }
            }
        };
        let default_branch = repo
            .default_branch()
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("{}: no default branch (main or master)", cfg.repository))?;
        let branch = msg.branch(&default_branch).to_string();
        let rev = if local.is_some() {
            format!("refs/heads/{branch}")
        } else {
            let remote = format!("refs/remotes/origin/{branch}");
            repo.git(&[
                "fetch",
                "--quiet",
                "--no-tags",
                "--",
                url,
                &format!("+refs/heads/{branch}:{remote}"),
            ])
            .await
            .map_err(|e| e.to_string())?;
            remote
        };
        let head = repo
            .rev_parse(&rev)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("{}: no branch {branch}", cfg.repository))?;
        Ok((default_branch, head))
    }

    /// Fires due schedules forever, sleeping until the next firing (at most a minute at a time,
    /// so that a clock change is noticed).
    pub async fn run(mut self) {
        if self.entries.is_empty() {
            return;
        }
        loop {
            let now = OffsetDateTime::now_utc();
            self.tick(now).await;
            let wait = self
                .schedules
                .next_wakeup()
                .map(|t| (t - OffsetDateTime::now_utc()).whole_milliseconds().max(0) as u64)
                .unwrap_or(60_000)
                .min(60_000);
            tokio::time::sleep(Duration::from_millis(wait.max(200))).await;
        }
    }
}
