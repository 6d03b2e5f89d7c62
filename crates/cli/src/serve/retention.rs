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
        limit = limit.min(SystemTime::UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64));
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
