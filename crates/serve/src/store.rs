//! The durable job queue and build history of `slipway serve`, in one SQLite file.
//!
//! Crash safety comes from state transitions committed before anything is acted on:
//! - a job is committed (`queued`) before the listener answers 202;
//! - a plan and all its builds (`queued`) are committed with the job's move to `planned`, in one
//!   transaction, so a crash while planning plans again and never half;
//! - a build is `running` while it runs; at start-up, `running` builds were interrupted and go
//!   back to `queued` (a build is only `succeeded` once its outcome is committed, so none runs
//!   again after success).

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use slipway_core::Job;
use slipway_core::listener::{Enqueued, JobQueue, QueueError};
use slipway_core::plan::{Plan, PlannedImage};

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    repository TEXT NOT NULL,
    git_ref TEXT NOT NULL,
    commit_sha TEXT NOT NULL,
    job TEXT NOT NULL,
    state TEXT NOT NULL,
    error TEXT,
    plan TEXT,
    received_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state, seq);
CREATE TABLE IF NOT EXISTS builds (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id TEXT NOT NULL,
    repository TEXT NOT NULL,
    git_ref TEXT NOT NULL,
    commit_sha TEXT NOT NULL,
    image TEXT NOT NULL,
    build_order INTEGER NOT NULL,
    planned TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    digest TEXT,
    error TEXT,
    outcome TEXT,
    queued_ms INTEGER NOT NULL,
    started_ms INTEGER,
    finished_ms INTEGER
);
CREATE INDEX IF NOT EXISTS builds_state ON builds(state, id);
CREATE INDEX IF NOT EXISTS builds_image ON builds(image, id);
CREATE INDEX IF NOT EXISTS builds_job ON builds(job_id);
"#;

/// Changes after the first schema, each applied once, in order, in one transaction with the
/// count of those applied (`PRAGMA user_version`). Append only, additive only: a store written
/// by an older slipway opens in a newer one.
const MIGRATIONS: &[&str] = &[
    // 1 (issue 19): a cancel asked of a running build is durable (a restart records it as
    // cancelled instead of running it again), and a retried build names the build it retries.
    "ALTER TABLE builds ADD COLUMN cancel_requested TEXT;
     ALTER TABLE builds ADD COLUMN retry_of INTEGER;",
];

fn migrate(conn: &mut Connection) -> DbResult<()> {
    let tx = conn.transaction()?;
    let applied: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    for (i, m) in MIGRATIONS.iter().enumerate().skip(applied.max(0) as usize) {
        tx.execute_batch(m)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tracing::info!(migration = i + 1, "job store migrated");
    }
    tx.commit()
}

/// Job states.
pub const JOB_QUEUED: &str = "queued";
pub const JOB_PLANNED: &str = "planned";
pub const JOB_DONE: &str = "done";
pub const JOB_FAILED: &str = "failed";

/// Build states.
pub const QUEUED: &str = "queued";
pub const RUNNING: &str = "running";
pub const SUCCEEDED: &str = "succeeded";
pub const FAILED: &str = "failed";
pub const SKIPPED: &str = "skipped";
pub const CANCELLED: &str = "cancelled";

pub fn is_terminal(state: &str) -> bool {
    matches!(state, SUCCEEDED | FAILED | SKIPPED | CANCELLED)
}

/// One build as `GET /builds` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct BuildRecord {
    pub id: i64,
    pub job_id: String,
    pub repository: String,
    #[serde(rename = "ref")]
    pub git_ref: String,
    pub commit: String,
    pub image: String,
    pub tags: Vec<String>,
    pub parents: Vec<String>,
    pub order: u32,
    pub state: String,
    pub attempts: u32,
    pub digest: Option<String>,
    pub error: Option<String>,
    pub queued_ms: i64,
    pub started_ms: Option<i64>,
    pub finished_ms: Option<i64>,
    pub duration_ms: Option<i64>,
    /// The runner's outcome (phases and their timings), once finished.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<serde_json::Value>,
    #[serde(skip)]
    pub planned: PlannedImage,
}

/// How a build ended.
pub struct Finished<'a> {
    pub succeeded: bool,
    /// Cancelled while it ran (recorded `cancelled`, whatever `succeeded` says).
    pub cancelled: bool,
    pub digest: Option<&'a str>,
    pub error: Option<&'a str>,
    pub outcome: &'a serde_json::Value,
}

/// A job waiting to be planned.
pub struct QueuedJob {
    pub job: Job,
}

pub struct Store {
    conn: Mutex<Connection>,
}

type DbResult<T> = Result<T, rusqlite::Error>;

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

pub(crate) const BUILD_COLUMNS: &str = "id, job_id, repository, git_ref, commit_sha, image, build_order, planned, state, attempts, digest, error, outcome, queued_ms, started_ms, finished_ms";

pub(crate) fn build_row(r: &rusqlite::Row<'_>) -> DbResult<BuildRecord> {
    let planned_text: String = r.get(7)?;
    let planned: PlannedImage = serde_json::from_str(&planned_text).unwrap_or_default();
    let outcome: Option<String> = r.get(12)?;
    let started: Option<i64> = r.get(14)?;
    let finished: Option<i64> = r.get(15)?;
    Ok(BuildRecord {
        id: r.get(0)?,
        job_id: r.get(1)?,
        repository: r.get(2)?,
        git_ref: r.get(3)?,
        commit: r.get(4)?,
        image: r.get(5)?,
        order: r.get(6)?,
        tags: planned.tags.clone(),
        parents: planned.parents.clone(),
        state: r.get(8)?,
        attempts: r.get(9)?,
        digest: r.get(10)?,
        error: r.get(11)?,
        outcome: outcome.and_then(|o| serde_json::from_str(&o).ok()),
        queued_ms: r.get(13)?,
        started_ms: started,
        finished_ms: finished,
        duration_ms: started.zip(finished).map(|(s, f)| f - s),
        planned,
    })
}

impl Store {
    /// Opens (or creates) the store and recovers from a crash: interrupted builds are queued again.
    pub fn open(path: &Path) -> DbResult<Self> {
        let mut conn = Connection::open(path)?;
        // WAL with full sync: a committed job survives a power cut, and readers never block the writer.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(SCHEMA)?;
        migrate(&mut conn)?;
        // A running build whose cancel was asked before the stop is cancelled, not run again.
        let cancelled = conn.execute(
            "UPDATE builds SET state = ?1, error = cancel_requested, finished_ms = ?2
             WHERE state = ?3 AND cancel_requested IS NOT NULL",
            params![CANCELLED, now_ms(), RUNNING],
        )?;
        if cancelled > 0 {
            tracing::warn!(
                builds = cancelled,
                "builds cancelled during a stop recorded as cancelled"
            );
        }
        let requeued = conn.execute(
            "UPDATE builds SET state = ?1, started_ms = NULL WHERE state = ?2",
            params![QUEUED, RUNNING],
        )?;
        if requeued > 0 {
            tracing::warn!(
                builds = requeued,
                "builds interrupted by a stop were queued again"
            );
        }
        Ok(Store {
            conn: Mutex::new(conn),
        })
    }

    pub(crate) fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves SQLite consistent (transactions roll back).
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Stores a job unless one with its id is stored already. Committed when it returns.
    pub fn insert_job(&self, job: &Job) -> DbResult<Enqueued> {
        let now = now_ms();
        let n = self.conn().execute(
            "INSERT INTO jobs (id, repository, git_ref, commit_sha, job, state, received_ms, updated_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7) ON CONFLICT(id) DO NOTHING",
            params![
                job.id,
                job.repository,
                job.git_ref,
                job.commit,
                slipway_core::job::to_json(job),
                JOB_QUEUED,
                now
            ],
        )?;
        Ok(if n == 1 {
            Enqueued::Queued
        } else {
            Enqueued::Duplicate
        })
    }

    /// The oldest job not yet planned.
    pub fn next_job(&self) -> DbResult<Option<QueuedJob>> {
        let text: Option<String> = self
            .conn()
            .query_row(
                "SELECT job FROM jobs WHERE state = ?1 ORDER BY seq LIMIT 1",
                params![JOB_QUEUED],
                |r| r.get(0),
            )
            .optional()?;
        Ok(text.and_then(|t| match slipway_core::job::from_json(&t) {
            Ok(job) => Some(QueuedJob { job }),
            Err(e) => {
                tracing::error!(error = %e, "a stored job cannot be read");
                None
            }
        }))
    }

    /// Records a job's plan and queues its builds, in one transaction. When `cancel_superseded`,
    /// queued builds of the same images and ref from older jobs are cancelled. Returns the ids
    /// of the cancelled builds.
    pub fn record_plan(
        &self,
        job: &Job,
        plan: &Plan,
        cancel_superseded: bool,
    ) -> DbResult<Vec<i64>> {
        let now = now_ms();
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let mut cancelled = Vec::new();
        for im in &plan.images {
            if cancel_superseded {
                let mut st = tx.prepare(
                    "SELECT id FROM builds WHERE state = ?1 AND image = ?2 AND repository = ?3 AND git_ref = ?4 AND job_id != ?5",
                )?;
                let ids: Vec<i64> = st
                    .query_map(
                        params![QUEUED, im.name, job.repository, job.git_ref, job.id],
                        |r| r.get(0),
                    )?
                    .collect::<DbResult<_>>()?;
                for id in ids {
                    tx.execute(
                        "UPDATE builds SET state = ?1, error = ?2, finished_ms = ?3 WHERE id = ?4",
                        params![
                            CANCELLED,
                            format!(
                                "superseded by a newer push to {} ({})",
                                job.git_ref, job.commit
                            ),
                            now,
                            id
                        ],
                    )?;
                    cancelled.push(id);
                }
            }
            tx.execute(
                "INSERT INTO builds (job_id, repository, git_ref, commit_sha, image, build_order, planned, state, queued_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    job.id,
                    job.repository,
                    job.git_ref,
                    im.commit,
                    im.name,
                    im.order,
                    serde_json::to_string(im).expect("a planned image serializes"),
                    QUEUED,
                    now
                ],
            )?;
        }
        let (state, error) = if plan.images.is_empty() && !plan.errors.is_empty() {
            (
                JOB_FAILED,
                Some(
                    plan.errors
                        .iter()
                        .map(|e| format!("{}: {}", e.context, e.message))
                        .collect::<Vec<_>>()
                        .join("; "),
                ),
            )
        } else if plan.images.is_empty() {
            (JOB_DONE, None)
        } else {
            (JOB_PLANNED, None)
        };
        tx.execute(
            "UPDATE jobs SET state = ?1, plan = ?2, error = ?3, updated_ms = ?4 WHERE id = ?5",
            params![
                state,
                serde_json::to_string(plan).expect("a plan serializes"),
                error,
                now,
                job.id
            ],
        )?;
        tx.commit()?;
        Ok(cancelled)
    }

    /// A job that cannot be planned (a bad `slipway.toml`, a missing commit).
    pub fn fail_job(&self, job_id: &str, error: &str) -> DbResult<()> {
        self.conn().execute(
            "UPDATE jobs SET state = ?1, error = ?2, updated_ms = ?3 WHERE id = ?4",
            params![JOB_FAILED, error, now_ms(), job_id],
        )?;
        Ok(())
    }

    /// Skips queued builds whose parent (in the same job) failed, was skipped or cancelled, then
    /// returns up to `limit` queued builds whose parents in the same job all succeeded, oldest
    /// job first, in plan order; each is marked `running` in the same transaction.
    pub fn claim_runnable(&self, limit: usize) -> DbResult<(Vec<BuildRecord>, Vec<BuildRecord>)> {
        let now = now_ms();
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let mut claimed = Vec::new();
        let mut skipped = Vec::new();
        {
            let mut st = tx.prepare(&format!(
                "SELECT {BUILD_COLUMNS} FROM builds WHERE state = ?1 ORDER BY id"
            ))?;
            let queued: Vec<BuildRecord> = st
                .query_map(params![QUEUED], build_row)?
                .collect::<DbResult<_>>()?;
            let mut parent_state = tx.prepare(
                "SELECT state FROM builds WHERE job_id = ?1 AND image = ?2 ORDER BY id DESC LIMIT 1",
            )?;
            for mut b in queued {
                let mut wait = false;
                let mut broken: Option<String> = None;
                for p in &b.parents {
                    let s: Option<String> = parent_state
                        .query_row(params![b.job_id, p], |r| r.get(0))
                        .optional()?;
                    match s.as_deref() {
                        // Not built by this job: the registry's image is used.
                        None | Some(SUCCEEDED) => {}
                        Some(QUEUED) | Some(RUNNING) => wait = true,
                        Some(other) => broken = Some(format!("its parent {p} {other}")),
                    }
                }
                if let Some(why) = broken {
                    tx.execute(
                        "UPDATE builds SET state = ?1, error = ?2, finished_ms = ?3 WHERE id = ?4",
                        params![SKIPPED, why, now, b.id],
                    )?;
                    b.state = SKIPPED.into();
                    b.error = Some(why);
                    skipped.push(b);
                    continue;
                }
                if wait || claimed.len() >= limit {
                    continue;
                }
                tx.execute(
                    "UPDATE builds SET state = ?1, attempts = attempts + 1, started_ms = ?2 WHERE id = ?3",
                    params![RUNNING, now, b.id],
                )?;
                b.state = RUNNING.into();
                b.attempts += 1;
                b.started_ms = Some(now);
                claimed.push(b);
            }
        }
        tx.commit()?;
        Ok((claimed, skipped))
    }

    /// Records a finished build. In the same transaction, the image's children that its job does
    /// not build are queued as a new job (`Trigger::Parent`) when it succeeded, or recorded as
    /// skipped when it failed: a crash never loses nor doubles them.
    pub fn finish_build(&self, b: &BuildRecord, job: &Job, result: &Finished<'_>) -> DbResult<()> {
        let now = now_ms();
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let n = tx.execute(
            "UPDATE builds SET state = ?1, digest = ?2, error = ?3, outcome = ?4, finished_ms = ?5 WHERE id = ?6 AND state = ?7",
            params![
                if result.cancelled {
                    CANCELLED
                } else if result.succeeded {
                    SUCCEEDED
                } else {
                    FAILED
                },
                result.digest,
                result.error,
                result.outcome.to_string(),
                now,
                b.id,
                RUNNING
            ],
        )?;
        if n == 1 {
            let mut outside = Vec::new();
            for child in &b.planned.children {
                let in_job: Option<i64> = tx
                    .query_row(
                        "SELECT id FROM builds WHERE job_id = ?1 AND image = ?2 LIMIT 1",
                        params![b.job_id, child],
                        |r| r.get(0),
                    )
                    .optional()?;
                if in_job.is_none() {
                    outside.push(child.clone());
                }
            }
            if !outside.is_empty() && result.succeeded {
                outside.sort();
                outside.dedup();
                // One job per child, the one the notifier decides: the same parent build and
                // child always make the same id, so nothing is ever queued twice.
                let mut parent = b.clone();
                parent.state = SUCCEEDED.into();
                let parent = crate::outcome::outcome(&parent, Some(job), outside.clone());
                for child in outside {
                    let follow = slipway_core::notify::child_job(&parent, &child);
                    tx.execute(
                        "INSERT INTO jobs (id, repository, git_ref, commit_sha, job, state, received_ms, updated_ms)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7) ON CONFLICT(id) DO NOTHING",
                        params![
                            follow.id,
                            follow.repository,
                            follow.git_ref,
                            follow.commit,
                            slipway_core::job::to_json(&follow),
                            JOB_QUEUED,
                            now
                        ],
                    )?;
                }
            } else if !outside.is_empty() {
                for child in outside {
                    let planned = PlannedImage {
                        name: child.clone(),
                        commit: b.commit.clone(),
                        parents: vec![b.image.clone()],
                        ..PlannedImage::default()
                    };
                    tx.execute(
                        "INSERT INTO builds (job_id, repository, git_ref, commit_sha, image, build_order, planned, state, error, queued_ms, finished_ms)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10)",
                        params![
                            b.job_id,
                            b.repository,
                            b.git_ref,
                            b.commit,
                            child,
                            b.order + 1,
                            serde_json::to_string(&planned).expect("a planned image serializes"),
                            SKIPPED,
                            format!(
                                "its parent {} {}",
                                b.image,
                                if result.cancelled { CANCELLED } else { FAILED }
                            ),
                            now
                        ],
                    )?;
                }
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// The children a finished build's notification reports: after a success, those its own
    /// job does not build (queued as jobs of their own by `finish_build`); otherwise all of them
    /// (skipped).
    pub fn children_outside_job(&self, b: &BuildRecord) -> DbResult<Vec<String>> {
        if b.state != SUCCEEDED {
            return Ok(b.planned.children.clone());
        }
        let conn = self.conn();
        let mut st =
            conn.prepare("SELECT 1 FROM builds WHERE job_id = ?1 AND image = ?2 LIMIT 1")?;
        let mut out = Vec::new();
        for child in &b.planned.children {
            if !st.exists(params![b.job_id, child])? {
                out.push(child.clone());
            }
        }
        Ok(out)
    }

    /// Deletes the builds `retention` expires at `now` (never a queued or running one) and the
    /// finished jobs left without builds that are as old; returns the deleted build ids (their
    /// logs go too).
    pub fn prune_expired(
        &self,
        retention: &slipway_core::retention::Retention,
        now: time::OffsetDateTime,
    ) -> DbResult<Vec<i64>> {
        let at = |ms: Option<i64>| {
            ms.and_then(|ms| {
                time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()
            })
        };
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let ages: Vec<slipway_core::retention::BuildAge> = {
            let mut st = tx.prepare("SELECT id, state, started_ms, finished_ms FROM builds")?;
            st.query_map([], |r| {
                let id: i64 = r.get(0)?;
                let state: String = r.get(1)?;
                Ok(slipway_core::retention::BuildAge {
                    id: id.to_string(),
                    running: !is_terminal(&state),
                    started: at(r.get(2)?),
                    ended: at(r.get(3)?),
                })
            })?
            .collect::<DbResult<_>>()?
        };
        let selection = retention.select(&ages, now);
        let mut deleted = Vec::new();
        for id in selection
            .expired
            .iter()
            .filter_map(|i| i.parse::<i64>().ok())
        {
            // Checked again in the statement: a build claimed since the read stays.
            let n = tx.execute(
                "DELETE FROM builds WHERE id = ?1 AND state IN ('succeeded','failed','skipped','cancelled')",
                params![id],
            )?;
            if n == 1 {
                deleted.push(id);
            }
        }
        let cutoff_ms = (retention.cutoff(now).unix_timestamp_nanos() / 1_000_000) as i64;
        tx.execute(
            "DELETE FROM jobs WHERE state IN (?1, ?2) AND updated_ms < ?3
             AND NOT EXISTS (SELECT 1 FROM builds b WHERE b.job_id = jobs.id)",
            params![JOB_DONE, JOB_FAILED, cutoff_ms],
        )?;
        tx.commit()?;
        Ok(deleted)
    }

    /// When the oldest running build started, if any runs.
    pub fn oldest_running_start_ms(&self) -> DbResult<Option<i64>> {
        self.conn().query_row(
            "SELECT MIN(started_ms) FROM builds WHERE state = ?1",
            params![RUNNING],
            |r| r.get(0),
        )
    }

    /// Builds of a job recorded as skipped after `after_id` (children of a failed parent).
    pub fn skipped_children(&self, job_id: &str, after_id: i64) -> DbResult<Vec<BuildRecord>> {
        let conn = self.conn();
        let mut st = conn.prepare(&format!(
            "SELECT {BUILD_COLUMNS} FROM builds WHERE job_id = ?1 AND id > ?2 AND state = ?3 ORDER BY id"
        ))?;
        st.query_map(params![job_id, after_id, SKIPPED], build_row)?
            .collect()
    }

    /// Marks planned jobs whose builds are all finished as done (or failed). Returns their ids.
    pub fn settle_jobs(&self) -> DbResult<Vec<(String, String)>> {
        let now = now_ms();
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let settled: Vec<(String, bool)> = {
            let mut st = tx.prepare(
                "SELECT j.id, SUM(CASE WHEN b.state IN ('failed','skipped') THEN 1 ELSE 0 END) > 0
                 FROM jobs j JOIN builds b ON b.job_id = j.id
                 WHERE j.state = ?1
                 AND NOT EXISTS (SELECT 1 FROM builds r WHERE r.retry_of = b.id)
                 GROUP BY j.id
                 HAVING SUM(CASE WHEN b.state IN ('queued','running') THEN 1 ELSE 0 END) = 0",
            )?;
            st.query_map(params![JOB_PLANNED], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<DbResult<_>>()?
        };
        let mut out = Vec::new();
        for (id, failed) in settled {
            let state = if failed { JOB_FAILED } else { JOB_DONE };
            tx.execute(
                "UPDATE jobs SET state = ?1, updated_ms = ?2 WHERE id = ?3",
                params![state, now, id],
            )?;
            out.push((id, state.to_string()));
        }
        tx.commit()?;
        Ok(out)
    }

    pub fn build(&self, id: i64) -> DbResult<Option<BuildRecord>> {
        self.conn()
            .query_row(
                &format!("SELECT {BUILD_COLUMNS} FROM builds WHERE id = ?1"),
                params![id],
                build_row,
            )
            .optional()
    }

    /// Newest first.
    pub fn builds(&self, limit: usize, image: Option<&str>) -> DbResult<Vec<BuildRecord>> {
        let conn = self.conn();
        let limit = limit as i64;
        let rows = match image {
            Some(i) => {
                let mut st = conn.prepare(&format!(
                    "SELECT {BUILD_COLUMNS} FROM builds WHERE image = ?1 ORDER BY id DESC LIMIT ?2"
                ))?;
                st.query_map(params![i, limit], build_row)?
                    .collect::<DbResult<Vec<_>>>()?
            }
            None => {
                let mut st = conn.prepare(&format!(
                    "SELECT {BUILD_COLUMNS} FROM builds ORDER BY id DESC LIMIT ?1"
                ))?;
                st.query_map(params![limit], build_row)?
                    .collect::<DbResult<Vec<_>>>()?
            }
        };
        Ok(rows)
    }

    /// The newest finished (succeeded or failed) build of an image.
    pub fn last_finished(&self, image: &str) -> DbResult<Option<BuildRecord>> {
        self.conn()
            .query_row(
                &format!(
                    "SELECT {BUILD_COLUMNS} FROM builds WHERE image = ?1 AND state IN ('succeeded','failed') ORDER BY finished_ms DESC, id DESC LIMIT 1"
                ),
                params![image],
                build_row,
            )
            .optional()
    }

    /// Jobs by state, for `/healthz`.
    pub fn counts(&self) -> DbResult<serde_json::Value> {
        let conn = self.conn();
        let mut out = serde_json::Map::new();
        let mut st = conn.prepare("SELECT state, COUNT(*) FROM jobs GROUP BY state")?;
        let jobs: serde_json::Map<String, serde_json::Value> = st
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?
            .collect::<DbResult<Vec<_>>>()?
            .into_iter()
            .map(|(k, v)| (k, v.into()))
            .collect();
        out.insert("jobs".into(), jobs.into());
        let mut st = conn.prepare("SELECT state, COUNT(*) FROM builds GROUP BY state")?;
        let builds: serde_json::Map<String, serde_json::Value> = st
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?
            .collect::<DbResult<Vec<_>>>()?
            .into_iter()
            .map(|(k, v)| (k, v.into()))
            .collect();
        out.insert("builds".into(), builds.into());
        Ok(out.into())
    }

    /// Deletes finished builds of `image` beyond the newest `keep`; returns the deleted ids
    /// (their logs go too).
    pub fn prune(&self, image: &str, keep: usize) -> DbResult<Vec<i64>> {
        let conn = self.conn();
        let mut st = conn.prepare(
            "SELECT id FROM builds WHERE image = ?1 AND state IN ('succeeded','failed','skipped','cancelled')
             ORDER BY id DESC LIMIT -1 OFFSET ?2",
        )?;
        let ids: Vec<i64> = st
            .query_map(params![image, keep as i64], |r| r.get(0))?
            .collect::<DbResult<_>>()?;
        for id in &ids {
            conn.execute("DELETE FROM builds WHERE id = ?1", params![id])?;
        }
        Ok(ids)
    }
}

/// The listener's queue port on SQLite: the job is committed before `enqueue` returns.
pub struct SqliteQueue {
    pub store: std::sync::Arc<Store>,
    pub wake: std::sync::Arc<tokio::sync::Notify>,
}

impl JobQueue for SqliteQueue {
    async fn enqueue(&self, job: &Job) -> Result<Enqueued, QueueError> {
        let store = self.store.clone();
        let job = job.clone();
        // SQLite's fsync blocks: keep it off the async workers.
        let r = tokio::task::spawn_blocking(move || store.insert_job(&job))
            .await
            .map_err(|e| QueueError::Unavailable(format!("the store task failed: {e}")))?
            .map_err(|e| QueueError::Unavailable(format!("the job store failed: {e}")))?;
        if r == Enqueued::Queued {
            self.wake.notify_one();
        }
        Ok(r)
    }
}

impl Store {
    /// A stored job by id.
    pub fn job(&self, id: &str) -> DbResult<Option<Job>> {
        let text: Option<String> = self
            .conn()
            .query_row("SELECT job FROM jobs WHERE id = ?1", params![id], |r| {
                r.get(0)
            })
            .optional()?;
        Ok(text.and_then(|t| slipway_core::job::from_json(&t).ok()))
    }

    /// A job's state, error and plan, for the history.
    pub fn job_state(&self, id: &str) -> DbResult<Option<(String, Option<String>)>> {
        self.conn()
            .query_row(
                "SELECT state, error FROM jobs WHERE id = ?1",
                params![id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
    }
}

/// What a cancel did.
#[derive(Debug, Clone)]
pub enum CancelRequest {
    /// It was queued: recorded `cancelled` now, it never runs.
    Queued(Box<BuildRecord>),
    /// It runs: the request is recorded; the worker stops it and records it `cancelled`.
    Running,
    /// It had ended already (its state).
    Finished(String),
    NotFound,
}

/// What a retry did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RetryRequest {
    /// A new build of the same job and image is queued (its id).
    Queued(i64),
    /// It has not ended (its state): cancel it first.
    NotFinished(String),
    NotFound,
}

impl Store {
    /// Cancels a build: a queued one at once, a running one by recording the request (durable:
    /// a restart records it cancelled instead of running it again) for the worker to act on.
    pub fn request_cancel(&self, id: i64, reason: &str) -> DbResult<CancelRequest> {
        let now = now_ms();
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let state: Option<String> = tx
            .query_row("SELECT state FROM builds WHERE id = ?1", params![id], |r| {
                r.get(0)
            })
            .optional()?;
        let out = match state.as_deref() {
            None => CancelRequest::NotFound,
            Some(QUEUED) => {
                tx.execute(
                    "UPDATE builds SET state = ?1, error = ?2, finished_ms = ?3 WHERE id = ?4",
                    params![CANCELLED, reason, now, id],
                )?;
                let b = tx.query_row(
                    &format!("SELECT {BUILD_COLUMNS} FROM builds WHERE id = ?1"),
                    params![id],
                    build_row,
                )?;
                CancelRequest::Queued(Box::new(b))
            }
            Some(RUNNING) => {
                tx.execute(
                    "UPDATE builds SET cancel_requested = COALESCE(cancel_requested, ?1) WHERE id = ?2",
                    params![reason, id],
                )?;
                CancelRequest::Running
            }
            Some(other) => CancelRequest::Finished(other.to_string()),
        };
        tx.commit()?;
        Ok(out)
    }

    /// Why a running build was asked to stop, if it was.
    pub fn cancel_requested(&self, id: i64) -> DbResult<Option<String>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT cancel_requested FROM builds WHERE id = ?1",
                params![id],
                |r| r.get::<_, Option<String>>(0),
            )
            .optional()?
            .flatten())
    }

    /// Queues the same job's image again as a new build (the old one stays in the history); the
    /// job is open again until it settles.
    pub fn retry(&self, id: i64) -> DbResult<RetryRequest> {
        let now = now_ms();
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let old = tx
            .query_row(
                &format!("SELECT {BUILD_COLUMNS} FROM builds WHERE id = ?1"),
                params![id],
                build_row,
            )
            .optional()?;
        let out = match old {
            None => RetryRequest::NotFound,
            Some(b) if !is_terminal(&b.state) => RetryRequest::NotFinished(b.state),
            Some(b) => {
                tx.execute(
                    "INSERT INTO builds (job_id, repository, git_ref, commit_sha, image, build_order, planned, state, queued_ms, retry_of)
                     SELECT job_id, repository, git_ref, commit_sha, image, build_order, planned, ?1, ?2, id FROM builds WHERE id = ?3",
                    params![QUEUED, now, id],
                )?;
                let new_id = tx.last_insert_rowid();
                tx.execute(
                    "UPDATE jobs SET state = ?1, updated_ms = ?2 WHERE id = ?3 AND state IN (?4, ?5)",
                    params![JOB_PLANNED, now, b.job_id, JOB_DONE, JOB_FAILED],
                )?;
                RetryRequest::Queued(new_id)
            }
        };
        tx.commit()?;
        Ok(out)
    }
}
