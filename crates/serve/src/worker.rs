//! The worker: plans queued jobs, then runs their builds through `slipway build`'s runner with a
//! concurrency limit, parents before children, and reports every finished build.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use slipway_core::Job;
use slipway_core::build_env::RegistrySettings;
use slipway_core::plan::{PlanSettings, plan_job};
use tokio::sync::{Notify, Semaphore};

use super::metrics::Metrics;
use super::notify::ServeSinks;
use super::store::{self, BuildRecord, CancelRequest, RetryRequest, Store};
use slipway_git::{CloneRules, GitError, GitRepo, Source};
use slipway_runner::{
    BuildRequest, BuildStatus, Buildspec, CancellationToken, SecretSource, run_build_until,
};

pub struct Worker {
    pub store: Arc<Store>,
    pub wake: Arc<Notify>,
    pub data_dir: PathBuf,
    pub namespace: String,
    pub concurrency: usize,
    pub cancel_superseded: bool,
    /// Which clone URLs jobs may have (`allow_file_clone_urls`).
    pub clone_rules: CloneRules,
    pub keep_builds_per_image: usize,
    pub buildspec: Buildspec,
    pub secrets: SecretSource,
    pub parameter_prefix: String,
    /// `SLIPWAY_BUILD_NETWORK` of every build.
    pub build_network: String,
    /// Finished builds to notify, in order. One notifier task drains it, so a slow webhook or
    /// deploy agent delays later notifications, never the builds.
    pub notifications: tokio::sync::mpsc::UnboundedSender<BuildRecord>,
    pub metrics: Arc<Metrics>,
    /// The running builds' cancellation tokens, by build id.
    pub running: Mutex<HashMap<i64, CancellationToken>>,
}

/// Notifies finished builds one after the other, in the order they finished.
pub async fn notifier(
    sinks: Arc<ServeSinks>,
    metrics: Arc<Metrics>,
    mut rx: tokio::sync::mpsc::UnboundedReceiver<BuildRecord>,
) {
    while let Some(b) = rx.recv().await {
        let job = sinks.store.job(&b.job_id).ok().flatten();
        let report = sinks.notify(&b, job.as_ref()).await;
        metrics.notification(&report.publish);
        tracing::debug!(build_id = b.id, publish = %report.publish, "build notified");
    }
}

pub fn log_path(data_dir: &Path, build_id: i64) -> PathBuf {
    data_dir.join("logs").join(format!("{build_id}.log"))
}

impl Worker {
    pub async fn run(self: Arc<Self>) {
        let permits = Arc::new(Semaphore::new(self.concurrency));
        loop {
            if let Err(e) = self.step(&permits).await {
                tracing::error!(error = %e, "the job store failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            // Woken by a new job or a finished build; the timeout is a safety net.
            let _ = tokio::time::timeout(Duration::from_secs(2), self.wake.notified()).await;
        }
    }

    async fn step(self: &Arc<Self>, permits: &Arc<Semaphore>) -> Result<(), rusqlite::Error> {
        while let Some(q) = self.store.next_job()? {
            self.plan(q.job).await?;
        }
        let (claimed, skipped) = self.store.claim_runnable(permits.available_permits())?;
        for b in skipped {
            tracing::info!(build_id = b.id, image = %b.image, reason = b.error.as_deref(), "build skipped");
            self.report(&b);
        }
        for b in claimed {
            self.metrics
                .build_started(b.started_ms.unwrap_or(b.queued_ms) - b.queued_ms);
            let Ok(permit) = permits.clone().try_acquire_owned() else {
                // Cannot happen (claimed ≤ free permits); the restart logic would requeue it.
                tracing::error!(build_id = b.id, "no build slot for a claimed build");
                continue;
            };
            let me = self.clone();
            let cancel = CancellationToken::new();
            self.tokens().insert(b.id, cancel.clone());
            tokio::spawn(async move {
                let id = b.id;
                me.build(b, &cancel).await;
                me.tokens().remove(&id);
                drop(permit);
                me.wake.notify_one();
            });
        }
        for (job_id, state) in self.store.settle_jobs()? {
            tracing::info!(job_id = %job_id, state = %state, "job finished");
        }
        Ok(())
    }

    /// Where the planner and the builds read the repository, under the clone rules: a
    /// repository on this machine (a `file://` URL, when allowed) is read where it is; any other
    /// is mirrored under the data directory and fetched at the job's commit.
    async fn source(&self, job: &Job) -> Result<PathBuf, GitError> {
        let from = Source::parse(&job.clone_url, self.clone_rules)?;
        if let Source::Local(path) = from {
            return Ok(path);
        }
        let repo = GitRepo::mirror(&self.data_dir.join("repos"), &job.repository, &from).await?;
        repo.fetch(&from, &job.commit).await?;
        // The default branch is only needed to compare a new branch with; it may be gone.
        let _ = repo.fetch_branch(&from, &job.default_branch).await;
        Ok(repo.path().to_path_buf())
    }

    async fn plan(&self, job: Job) -> Result<(), rusqlite::Error> {
        self.metrics.job_planned(&job.trigger);
        let source = match self.source(&job).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(job_id = %job.id, code = e.code(), error = %e, "job not planned: the repository cannot be read");
                return self
                    .store
                    .fail_job(&job.id, &format!("the repository cannot be read: {e}"));
            }
        };
        let repo = match GitRepo::open(&source).await {
            Ok(r) => r,
            Err(e) => {
                return self
                    .store
                    .fail_job(&job.id, &format!("the repository cannot be read: {e}"));
            }
        };
        // The planner's future is not `Send` (it borrows across its own stream combinators):
        // it runs to completion on a blocking thread, on this runtime.
        let settings = PlanSettings::new(self.namespace.clone());
        let planned = {
            let job = job.clone();
            let handle = tokio::runtime::Handle::current();
            tokio::task::spawn_blocking(move || handle.block_on(plan_job(&repo, &job, &settings)))
                .await
        };
        let planned = match planned {
            Ok(p) => p,
            Err(e) => {
                return self
                    .store
                    .fail_job(&job.id, &format!("the planner stopped: {e}"));
            }
        };
        match planned {
            Ok(plan) => {
                let cancelled = self
                    .store
                    .record_plan(&job, &plan, self.cancel_superseded)?;
                for p in &plan.errors {
                    tracing::warn!(job_id = %job.id, context = %p.context, code = %p.code, message = %p.message, "image not built");
                }
                tracing::info!(
                    job_id = %job.id,
                    repository = %job.repository,
                    git_ref = %job.git_ref,
                    commit = %job.commit,
                    images = ?plan.images.iter().map(|i| i.name.as_str()).collect::<Vec<_>>(),
                    "job planned"
                );
                for id in cancelled {
                    if let Some(b) = self.store.build(id)? {
                        tracing::info!(build_id = id, image = %b.image, by = %job.id, "build cancelled: superseded");
                        self.report(&b);
                    }
                }
                Ok(())
            }
            Err(e) => {
                tracing::warn!(job_id = %job.id, code = e.code(), error = %e, "job not planned");
                self.store.fail_job(&job.id, &format!("{e} [{}]", e.code()))
            }
        }
    }

    async fn build(&self, b: BuildRecord, cancel: &CancellationToken) {
        let path = log_path(&self.data_dir, b.id);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path);
        let file = match file {
            Ok(f) => std::sync::Mutex::new(f),
            Err(e) => {
                let msg = format!("cannot write the build log {}: {e}", path.display());
                self.finish(
                    &b,
                    None,
                    false,
                    None,
                    Some(&msg),
                    serde_json::Value::Null,
                    false,
                );
                return;
            }
        };
        let log = |line: &str| {
            use std::io::Write;
            let mut f = file.lock().unwrap_or_else(|p| p.into_inner());
            let _ = writeln!(f, "{line}");
        };
        if b.attempts > 1 {
            log(&format!(
                "[slipway] attempt {}: the previous one was interrupted by a stop of slipway serve",
                b.attempts
            ));
        }
        let Some(job) = self.store.job(&b.job_id).ok().flatten() else {
            tracing::error!(build_id = b.id, "the build's job is not in the store");
            return;
        };
        let source = match self.source(&job).await {
            Ok(s) => s,
            Err(e) => {
                let e = e.to_string();
                log(&format!("[slipway] {e}"));
                self.finish(
                    &b,
                    Some(&job),
                    false,
                    None,
                    Some(&e),
                    serde_json::Value::Null,
                    cancel.is_cancelled(),
                );
                return;
            }
        };
        tracing::info!(build_id = b.id, image = %b.image, commit = %b.commit, attempt = b.attempts, "build started");
        let req = BuildRequest {
            job: job.clone(),
            image: b.planned.clone(),
            // Serve's own checkout (a mirror, or a local repository the rules allowed).
            source: Source::Local(source),
            buildspec: self.buildspec.clone(),
            registry: RegistrySettings {
                parameter_prefix: self.parameter_prefix.clone(),
            },
            secrets: self.secrets.clone(),
            work_root: self.data_dir.join("work"),
            keep_work_dir: false,
            build_number: b.id as u64,
            build_network: self.build_network.clone(),
        };
        let outcome = run_build_until(&req, &log, cancel).await;
        let ok = outcome.status == BuildStatus::Succeeded;
        let stopped = outcome.status == BuildStatus::Stopped;
        let digest = outcome.exported.get("SLIPWAY_DIGEST").cloned();
        let value = serde_json::to_value(&outcome).unwrap_or_default();
        // A cancelled build's error is why it was cancelled (who asked).
        let reason = if stopped {
            self.store.cancel_requested(b.id).ok().flatten()
        } else {
            None
        };
        if let Some(r) = &reason {
            log(&format!("[slipway] {r}"));
        }
        self.finish(
            &b,
            Some(&job),
            ok,
            digest.as_deref(),
            reason.as_deref().or(outcome.error.as_deref()),
            value,
            stopped,
        );
    }

    fn tokens(&self) -> std::sync::MutexGuard<'_, HashMap<i64, CancellationToken>> {
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Cancels a build, for the API and the page alike: a queued build is recorded cancelled
    /// and notified at once; a running one is stopped (its processes, its buildx and compose
    /// work), then recorded cancelled and notified, and nothing is pushed after.
    pub fn cancel(&self, id: i64, reason: &str) -> Result<CancelRequest, rusqlite::Error> {
        let r = self.store.request_cancel(id, reason)?;
        match &r {
            CancelRequest::Queued(b) => {
                tracing::info!(build_id = id, image = %b.image, reason, "build cancelled while queued");
                self.report(b);
                self.wake.notify_one();
            }
            CancelRequest::Running => {
                tracing::info!(build_id = id, reason, "stopping a running build");
                if let Some(t) = self.tokens().get(&id) {
                    t.cancel();
                }
            }
            CancelRequest::Finished(_) | CancelRequest::NotFound => {}
        }
        Ok(r)
    }

    /// Queues the build's job and image again as a new build.
    pub fn retry(&self, id: i64) -> Result<RetryRequest, rusqlite::Error> {
        let r = self.store.retry(id)?;
        if let RetryRequest::Queued(new_id) = r {
            tracing::info!(build_id = new_id, retry_of = id, "build queued again");
            self.wake.notify_one();
        }
        Ok(r)
    }

    #[allow(clippy::too_many_arguments)]
    fn finish(
        &self,
        b: &BuildRecord,
        job: Option<&Job>,
        ok: bool,
        digest: Option<&str>,
        error: Option<&str>,
        outcome: serde_json::Value,
        cancelled: bool,
    ) {
        let fallback;
        let job = match job {
            Some(j) => j,
            None => match self.store.job(&b.job_id) {
                Ok(Some(j)) => {
                    fallback = j;
                    &fallback
                }
                _ => {
                    tracing::error!(build_id = b.id, "the build's job is not in the store");
                    return;
                }
            },
        };
        let result = store::Finished {
            succeeded: ok,
            cancelled,
            digest,
            error,
            outcome: &outcome,
        };
        if let Err(e) = self.store.finish_build(b, job, &result) {
            // The build stays `running` and runs again after a restart.
            tracing::error!(build_id = b.id, error = %e, "the build's outcome could not be stored");
            return;
        }
        let state = if cancelled {
            store::CANCELLED
        } else if ok {
            store::SUCCEEDED
        } else {
            store::FAILED
        };
        tracing::info!(build_id = b.id, image = %b.image, status = state, digest, error, "build finished");
        if let Ok(Some(rec)) = self.store.build(b.id) {
            let status = match state {
                store::SUCCEEDED => slipway_core::notify::BuildStatus::Succeeded,
                store::FAILED => slipway_core::notify::BuildStatus::Failed,
                _ => slipway_core::notify::BuildStatus::Stopped,
            };
            self.metrics
                .build_finished(status, rec.duration_ms.unwrap_or_default());
            self.report(&rec);
        }
        if let Ok(skipped) = self.store.skipped_children(&b.job_id, b.id) {
            for s in skipped.iter().filter(|s| s.parents.contains(&b.image)) {
                tracing::info!(build_id = s.id, image = %s.image, reason = s.error.as_deref(), "build skipped");
                self.report(s);
            }
        }
        match self.store.prune(&b.image, self.keep_builds_per_image) {
            Ok(ids) => {
                for id in ids {
                    let _ = std::fs::remove_file(log_path(&self.data_dir, id));
                }
            }
            Err(e) => tracing::warn!(error = %e, "old builds not pruned"),
        }
    }

    /// Deploy agents are called by the notification (`ServeSinks`), after the success is
    /// committed: a crash between the two loses the calls (redeploy with `slipway deliver`).
    fn report(&self, b: &BuildRecord) {
        if self.notifications.send(b.clone()).is_err() {
            tracing::error!(build_id = b.id, "the notifier stopped; build not notified");
        }
    }
}
