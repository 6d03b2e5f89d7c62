//! Read-only views of the store for the web pages: what runs, the last result per image, a
//! job with its plan. Reads only; every state change stays in `store`.

use rusqlite::{OptionalExtension, params};
use serde_json::Value;
use slipway_core::Job;

use super::store::{BUILD_COLUMNS, BuildRecord, Store, build_row};

type DbResult<T> = Result<T, rusqlite::Error>;

/// A job as the pages show it.
#[derive(Debug, Clone)]
pub struct JobRecord {
    pub id: String,
    pub repository: String,
    pub git_ref: String,
    pub commit: String,
    pub state: String,
    pub error: Option<String>,
    /// The plan as stored (`slipway_core::plan::Plan` in JSON), once planned.
    pub plan: Option<Value>,
    pub received_ms: i64,
    /// The job as queued (`None` if it cannot be read).
    pub job: Option<Job>,
}

fn job_row(r: &rusqlite::Row<'_>) -> DbResult<JobRecord> {
    let job: String = r.get(4)?;
    let plan: Option<String> = r.get(7)?;
    Ok(JobRecord {
        id: r.get(0)?,
        repository: r.get(1)?,
        git_ref: r.get(2)?,
        commit: r.get(3)?,
        job: slipway_core::job::from_json(&job).ok(),
        state: r.get(5)?,
        error: r.get(6)?,
        plan: plan.and_then(|p| serde_json::from_str(&p).ok()),
        received_ms: r.get(8)?,
    })
}

const JOB_COLUMNS: &str =
    "id, repository, git_ref, commit_sha, job, state, error, plan, received_ms";

impl Store {
    /// Builds queued or running, running first, oldest first.
    pub fn active_builds(&self) -> DbResult<Vec<BuildRecord>> {
        let conn = self.conn();
        let mut st = conn.prepare(&format!(
            "SELECT {BUILD_COLUMNS} FROM builds WHERE state IN ('running','queued')
             ORDER BY CASE state WHEN 'running' THEN 0 ELSE 1 END, id"
        ))?;
        st.query_map([], build_row)?.collect()
    }

    /// The newest finished build of every image, failures first, then by image.
    pub fn last_results(&self) -> DbResult<Vec<BuildRecord>> {
        let conn = self.conn();
        let mut st = conn.prepare(&format!(
            "SELECT {BUILD_COLUMNS} FROM builds b WHERE b.id = (
                 SELECT MAX(id) FROM builds x WHERE x.image = b.image
                 AND x.state IN ('succeeded','failed','skipped','cancelled'))
             ORDER BY CASE b.state WHEN 'failed' THEN 0 WHEN 'cancelled' THEN 1
                                   WHEN 'skipped' THEN 2 ELSE 3 END, b.image"
        ))?;
        st.query_map([], build_row)?.collect()
    }

    /// The newest jobs.
    pub fn recent_jobs(&self, limit: usize) -> DbResult<Vec<JobRecord>> {
        let conn = self.conn();
        let mut st = conn.prepare(&format!(
            "SELECT {JOB_COLUMNS} FROM jobs ORDER BY seq DESC LIMIT ?1"
        ))?;
        st.query_map(params![limit as i64], job_row)?.collect()
    }

    pub fn job_record(&self, id: &str) -> DbResult<Option<JobRecord>> {
        self.conn()
            .query_row(
                &format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?1"),
                params![id],
                job_row,
            )
            .optional()
    }

    /// A job's builds, in plan order.
    pub fn job_builds(&self, job_id: &str) -> DbResult<Vec<BuildRecord>> {
        let conn = self.conn();
        let mut st = conn.prepare(&format!(
            "SELECT {BUILD_COLUMNS} FROM builds WHERE job_id = ?1 ORDER BY build_order, id"
        ))?;
        st.query_map(params![job_id], build_row)?.collect()
    }

    /// The build a retried build retries, and the build that retries it, if any.
    pub fn retry_links(&self, id: i64) -> DbResult<(Option<i64>, Option<i64>)> {
        let conn = self.conn();
        let of: Option<i64> = conn
            .query_row(
                "SELECT retry_of FROM builds WHERE id = ?1",
                params![id],
                |r| r.get(0),
            )
            .optional()?
            .flatten();
        let by: Option<i64> = conn
            .query_row(
                "SELECT MIN(id) FROM builds WHERE retry_of = ?1",
                params![id],
                |r| r.get(0),
            )
            .optional()?
            .flatten();
        Ok((of, by))
    }
}
