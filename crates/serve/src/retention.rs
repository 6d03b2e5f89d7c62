//! Retention of serve's history: finished builds older than `retention_days` (by their end,
//! `slipway_core::retention`), their logs, and leftover work directories. Never a queued or
//! running build. Runs at start, then daily.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use slipway_core::retention::Retention;
use time::OffsetDateTime;

use super::store::Store;
use super::worker::log_path;

/// What one pruning run deleted.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Pruned {
    pub builds: Vec<i64>,
    pub work_dirs: usize,
}

/// Deletes what `retention` expires at `now`.
pub fn prune(
    store: &Store,
    data_dir: &Path,
    retention: &Retention,
    now: OffsetDateTime,
) -> Result<Pruned, rusqlite::Error> {
    let builds = store.prune_expired(retention, now)?;
    for id in &builds {
        let _ = std::fs::remove_file(log_path(data_dir, *id));
    }
    // A work directory is made when its build starts: one older than both the cutoff and the
    // oldest running build belongs to no running build (it was left by a crash).
    let cutoff = retention.cutoff(now);
    let oldest_running = store.oldest_running_start_ms()?;
    let to_system = |t: OffsetDateTime| {
        SystemTime::UNIX_EPOCH + Duration::from_secs(t.unix_timestamp().max(0) as u64)
    };
    let mut limit = to_system(cutoff);
    if let Some(ms) = oldest_running {
        // A minute's margin: file times come from a coarse clock and may precede the start.
        let start = SystemTime::UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64);
        limit = limit.min(start - Duration::from_secs(60));
    }
    let mut work_dirs = 0;
    if let Ok(entries) = std::fs::read_dir(data_dir.join("work")) {
        for e in entries.flatten() {
            let old = e
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|m| m < limit);
            if old
                && e.file_name()
                    .to_string_lossy()
                    .starts_with("slipway-build-")
                && std::fs::remove_dir_all(e.path()).is_ok()
            {
                work_dirs += 1;
            }
        }
    }
    tracing::info!(
        retention_days = retention.in_days(),
        builds = builds.len(),
        work_dirs,
        "history pruned"
    );
    Ok(Pruned { builds, work_dirs })
}

/// Prunes now, then every day.
pub async fn run(store: Arc<Store>, data_dir: std::path::PathBuf, retention: Retention) {
    loop {
        let s = store.clone();
        let d = data_dir.clone();
        let r = tokio::task::spawn_blocking(move || {
            prune(&s, &d, &retention, OffsetDateTime::now_utc())
        })
        .await;
        match r {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "history not pruned"),
            Err(e) => tracing::warn!(error = %e, "history not pruned"),
        }
        tokio::time::sleep(Duration::from_secs(24 * 3600)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{self, Finished};
    use slipway_core::plan::{ChangeSource, Plan, PlannedImage};
    use slipway_core::schedule::{ScheduledRebuild, rebuild_job};

    fn set_mtime(path: &Path, t: SystemTime) {
        std::fs::File::open(path).unwrap().set_modified(t).unwrap();
    }

    #[test]
    fn old_finished_builds_go_running_and_queued_ones_stay() {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path();
        std::fs::create_dir_all(data.join("logs")).unwrap();
        std::fs::create_dir_all(data.join("work")).unwrap();
        let s = Store::open(&data.join("slipway.db")).unwrap();
        let msg = ScheduledRebuild::new("nightly", "acme/site", "file:///srv/site");
        let job = rebuild_job(&msg, "main", &"a".repeat(40)).unwrap();
        s.insert_job(&job).unwrap();
        let image = |name: &str, order| PlannedImage {
            name: name.into(),
            commit: job.commit.clone(),
            tags: vec!["main".into()],
            order,
            ..PlannedImage::default()
        };
        let plan = Plan {
            repository: job.repository.clone(),
            git_ref: job.git_ref.clone(),
            commit: job.commit.clone(),
            changes: ChangeSource::Named,
            images: vec![image("acme/a", 0), image("acme/b", 1), image("acme/c", 2)],
            errors: Vec::new(),
            skipped: Vec::new(),
        };
        s.record_plan(&job, &plan, false).unwrap();
        // a and b run; a finishes; b keeps running; c stays queued.
        let (claimed, _) = s.claim_runnable(2).unwrap();
        assert_eq!(claimed.len(), 2);
        let outcome = serde_json::Value::Null;
        let done = Finished {
            succeeded: true,
            cancelled: false,
            digest: None,
            error: None,
            outcome: &outcome,
        };
        s.finish_build(&claimed[0], &job, &done).unwrap();
        for b in s.builds(10, None).unwrap() {
            std::fs::write(log_path(data, b.id), "log\n").unwrap();
        }
        // A work directory left by a crash long ago, and one of the running build.
        let left = data.join("work/slipway-build-left");
        let live = data.join("work/slipway-build-live");
        std::fs::create_dir_all(&left).unwrap();
        std::fs::create_dir_all(&live).unwrap();
        set_mtime(&left, SystemTime::now() - Duration::from_secs(40 * 86400));

        let r = Retention::days(30).unwrap();
        let now = OffsetDateTime::now_utc();
        // 29 days later nothing finished is old enough.
        let p = prune(&s, data, &r, now + time::Duration::days(29)).unwrap();
        assert!(p.builds.is_empty(), "{p:?}");
        assert_eq!(s.builds(10, None).unwrap().len(), 3);
        // ... but the work directory left 40 days ago is.
        assert_eq!(p.work_dirs, 1);
        assert!(!left.exists(), "the leftover work directory stays");

        // 31 days later the finished build goes with its log; the others stay.
        let p = prune(&s, data, &r, now + time::Duration::days(31)).unwrap();
        assert_eq!(p.builds, [claimed[0].id]);
        assert!(!log_path(data, claimed[0].id).exists());
        let left_builds = s.builds(10, None).unwrap();
        let mut states: Vec<(String, String)> = left_builds
            .iter()
            .map(|b| (b.image.clone(), b.state.clone()))
            .collect();
        states.sort();
        assert_eq!(
            states,
            [
                ("acme/b".to_string(), store::RUNNING.to_string()),
                ("acme/c".to_string(), store::QUEUED.to_string())
            ]
        );
        for b in &left_builds {
            assert!(log_path(data, b.id).exists());
        }
        assert_eq!(p.work_dirs, 0);
        assert!(
            live.exists(),
            "the running build's work directory was deleted"
        );
    }
}
