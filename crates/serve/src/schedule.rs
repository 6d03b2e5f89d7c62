//! Scheduled rebuilds run by `slipway serve` itself: `[[schedule]]` entries, fired with
//! `slipway_core::schedule::Schedules` (EventBridge's grammar, UTC, no backfill), each firing a
//! job for the branch head queued in the store like a webhook's.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use slipway_core::listener::Enqueued;
use slipway_core::schedule::{ScheduleExpr, ScheduledRebuild, Schedules, rebuild_job};
use time::OffsetDateTime;

use super::config::ScheduleConfig;
use super::store::Store;
use slipway_git::{CloneRules, GitRepo, Source};

/// Serve's schedules and what they need to queue jobs.
pub struct Scheduler {
    pub store: Arc<Store>,
    pub wake: Arc<tokio::sync::Notify>,
    pub data_dir: PathBuf,
    /// Which clone URLs schedules may name (`allow_file_clone_urls`).
    pub clone_rules: CloneRules,
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
        clone_rules: CloneRules,
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
            clone_rules,
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
        let from = Source::parse(&msg.clone_url, self.clone_rules).map_err(|e| e.to_string())?;
        let repo = match &from {
            Source::Local(p) => GitRepo::open(p).await,
            Source::Remote(_) => {
                GitRepo::mirror(&self.data_dir.join("repos"), &msg.repository, &from).await
            }
        }
        .map_err(|e| e.to_string())?;
        let default_branch = repo
            .default_branch()
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("{}: no default branch (main or master)", cfg.repository))?;
        let branch = msg.branch(&default_branch).to_string();
        let rev = match &from {
            Source::Local(_) => format!("refs/heads/{branch}"),
            Source::Remote(_) => repo
                .fetch_branch(&from, &branch)
                .await
                .map_err(|e| e.to_string())?,
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

#[cfg(test)]
mod tests {
    use super::*;
    use slipway_testkit::git::{git, init};

    #[tokio::test]
    async fn a_due_schedule_queues_a_job_at_the_branch_head() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = tmp.path().join("images");
        init(&repo);
        std::fs::write(repo.join("README"), "one\n").unwrap();
        git(&repo, &["add", "-A"]);
        git(&repo, &["commit", "--quiet", "-m", "one"]);
        git(&repo, &["checkout", "--quiet", "-b", "release"]);
        std::fs::write(repo.join("README"), "two\n").unwrap();
        git(&repo, &["commit", "--quiet", "-am", "two"]);
        let release_head = git(&repo, &["rev-parse", "HEAD"]);
        git(&repo, &["checkout", "--quiet", "main"]);
        let main_head = git(&repo, &["rev-parse", "HEAD"]);

        let store = Arc::new(Store::open(&tmp.path().join("slipway.db")).unwrap());
        let cfg: crate::config::ServeConfig = toml::from_str(&format!(
            r#"
[[schedule]]
name = "every-minute"
expression = "rate(1 minute)"
repository = "{}"
repository_name = "acme/images"

[[schedule]]
name = "release-base"
expression = "cron(30 3 * * ? *)"
repository = "{}"
branch = "release"
images = ["acme/base"]
"#,
            repo.display(),
            repo.display()
        ))
        .unwrap();
        cfg.check().unwrap();
        let started = time::macros::datetime!(2026-11-25 03:00 UTC);
        let mut s = Scheduler::new(
            store.clone(),
            Arc::new(tokio::sync::Notify::new()),
            tmp.path().to_path_buf(),
            cfg.clone_rules(),
            &cfg.schedules,
            started,
        )
        .unwrap();

        // Not due yet: nothing queued.
        assert!(
            s.tick(started + time::Duration::seconds(59))
                .await
                .is_empty()
        );
        assert!(store.next_job().unwrap().is_none());

        // A minute on: a job for main's head, of every image with a schedule in slipway.toml.
        let ids = s.tick(started + time::Duration::seconds(61)).await;
        assert_eq!(ids.len(), 1, "{ids:?}");
        let job = store.job(&ids[0]).unwrap().unwrap();
        assert_eq!(job.commit, main_head);
        assert_eq!(job.git_ref, "refs/heads/main");
        assert_eq!(job.repository, "acme/images");
        assert_eq!(job.clone_url, format!("file://{}", repo.display()));
        assert!(job.images.is_empty());
        assert_eq!(
            job.trigger,
            slipway_core::Trigger::Schedule {
                name: "every-minute".into()
            }
        );
        assert_eq!(store.next_job().unwrap().unwrap().job.id, ids[0]);

        // Fired once per due time; the next firing rebuilds the same head as a new job.
        assert!(
            s.tick(started + time::Duration::seconds(62))
                .await
                .is_empty()
        );
        let again = s.tick(started + time::Duration::seconds(122)).await;
        assert_eq!(again.len(), 1);
        assert_ne!(again[0], ids[0]);

        // The cron schedule at 03:30: the release branch's head, the named image only.
        let at = time::macros::datetime!(2026-11-25 03:30 UTC);
        let fired = s.tick(at).await;
        assert_eq!(fired.len(), 2, "{fired:?}");
        let release = fired
            .iter()
            .map(|id| store.job(id).unwrap().unwrap())
            .find(|j| j.git_ref == "refs/heads/release")
            .unwrap();
        assert_eq!(release.commit, release_head);
        assert_eq!(release.images, ["acme/base"]);
        assert_eq!(release.repository, "local/images");
    }
}
