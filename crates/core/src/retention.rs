//! Retention: which finished builds are old enough to delete. One rule for the cleanup task
//! (CodeBuild builds) and for `slipway serve` (its own history and work directories). Pure: the
//! time is passed in.

use serde::Serialize;
use time::{Duration, OffsetDateTime};

/// Retention accepted, in days: at least one day (so that a build that just ended is never
/// deleted under a notifier still reading it), at most ten years.
pub const MAX_RETENTION_DAYS: u32 = 3650;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RetentionError {
    #[error("retention must be a whole number of days from 1 to {MAX_RETENTION_DAYS}")]
    OutOfRange,
}

impl RetentionError {
    pub fn code(&self) -> &'static str {
        "invalid_retention"
    }
}

/// How long finished builds are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Retention {
    days: u32,
}

impl Retention {
    pub fn days(days: u32) -> Result<Self, RetentionError> {
        if (1..=MAX_RETENTION_DAYS).contains(&days) {
            Ok(Self { days })
        } else {
            Err(RetentionError::OutOfRange)
        }
    }

    /// From an environment variable or a flag.
    pub fn parse(raw: &str) -> Result<Self, RetentionError> {
        raw.trim()
            .parse::<u32>()
            .map_err(|_| RetentionError::OutOfRange)
            .and_then(Self::days)
    }

    pub fn in_days(&self) -> u32 {
        self.days
    }

    /// Builds that ended before this instant are expired.
    pub fn cutoff(&self, now: OffsetDateTime) -> OffsetDateTime {
        now - Duration::days(i64::from(self.days))
    }

    /// The verdict on one build.
    pub fn judge(&self, build: &BuildAge, now: OffsetDateTime) -> Verdict {
        if build.running {
            return Verdict::KeepRunning;
        }
        // A finished build is aged from its end; a build whose end was not recorded, from its
        // start; a build with neither is kept, since its age is unknown.
        match build.ended.or(build.started) {
            None => Verdict::KeepUnknownAge,
            Some(t) if t < self.cutoff(now) => Verdict::Delete,
            Some(_) => Verdict::KeepRecent,
        }
    }

    /// Sorts builds into what to delete and what to keep (and why), keeping the input order.
    pub fn select(&self, builds: &[BuildAge], now: OffsetDateTime) -> Selection {
        let mut s = Selection::default();
        for b in builds {
            match self.judge(b, now) {
                Verdict::Delete => s.expired.push(b.id.clone()),
                Verdict::KeepRunning => s.running.push(b.id.clone()),
                Verdict::KeepRecent => s.recent += 1,
                Verdict::KeepUnknownAge => s.unknown_age.push(b.id.clone()),
            }
        }
        s
    }
}

/// What retention needs to know about a build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildAge {
    pub id: String,
    /// Not finished (CodeBuild: `buildComplete` false or status `IN_PROGRESS`; serve: queued or running).
    pub running: bool,
    pub started: Option<OffsetDateTime>,
    pub ended: Option<OffsetDateTime>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Delete,
    KeepRunning,
    KeepRecent,
    KeepUnknownAge,
}

/// The outcome of [`Retention::select`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Selection {
    /// Finished before the cutoff: to delete.
    pub expired: Vec<String>,
    /// Still running: never touched.
    pub running: Vec<String>,
    /// Finished after the cutoff: kept.
    pub recent: usize,
    /// No start or end time: kept.
    pub unknown_age: Vec<String>,
}

/// A build the store refused to delete, with the store's reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NotDeleted {
    pub id: String,
    pub reason: String,
}

/// The result of one cleanup run, logged, returned by the Lambda and published when anything was
/// deleted or failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CleanupSummary {
    /// The CodeBuild project (or `slipway serve`'s history).
    pub project: String,
    pub retention_days: u32,
    #[serde(with = "time::serde::rfc3339")]
    pub cutoff: OffsetDateTime,
    pub dry_run: bool,
    /// Builds looked at.
    pub examined: usize,
    /// Deleted (empty on a dry run).
    pub deleted: Vec<String>,
    /// On a dry run: what would have been deleted.
    pub would_delete: Vec<String>,
    /// Refused by the store.
    pub not_deleted: Vec<NotDeleted>,
    /// Running builds left alone.
    pub running: Vec<String>,
    pub recent: usize,
    pub unknown_age: Vec<String>,
}

impl CleanupSummary {
    /// Whether the summary goes to SNS: something was deleted or something failed.
    pub fn worth_notifying(&self) -> bool {
        !self.deleted.is_empty() || !self.not_deleted.is_empty()
    }

    /// An SNS subject: at most 100 characters, one line.
    pub fn subject(&self) -> String {
        let mut s = if self.not_deleted.is_empty() {
            format!(
                "slipway cleanup: {} builds deleted from {}",
                self.deleted.len(),
                self.project
            )
        } else {
            format!(
                "slipway cleanup: {} deleted, {} NOT deleted from {}",
                self.deleted.len(),
                self.not_deleted.len(),
                self.project
            )
        };
        if s.len() > 100 {
            let mut end = 97;
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            s.truncate(end);
            s.push_str("...");
        }
        s
    }

    /// A readable body for email and chat.
    pub fn body(&self) -> String {
        let mut out = format!(
            "Project: {}\nRetention: {} days (builds ended before {})\nExamined: {}\n",
            self.project,
            self.retention_days,
            self.cutoff
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
            self.examined
        );
        if self.dry_run {
            out.push_str(&format!(
                "Dry run: {} builds would be deleted\n",
                self.would_delete.len()
            ));
        }
        out.push_str(&format!(
            "Deleted: {}\nKept: {} running, {} recent, {} of unknown age\n",
            self.deleted.len(),
            self.running.len(),
            self.recent,
            self.unknown_age.len()
        ));
        if !self.not_deleted.is_empty() {
            out.push_str("\nNot deleted:\n");
            for n in &self.not_deleted {
                out.push_str(&format!("  {}: {}\n", n.id, n.reason));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-11-25 12:00 UTC);

    fn build(id: &str, running: bool, ended: Option<OffsetDateTime>) -> BuildAge {
        BuildAge {
            id: id.into(),
            running,
            started: ended.map(|e| e - Duration::minutes(5)),
            ended,
        }
    }

    #[test]
    fn parse_and_range() {
        assert_eq!(Retention::parse(" 7 ").unwrap().in_days(), 7);
        for bad in ["0", "-1", "x", "", "3651", "1.5"] {
            assert_eq!(
                Retention::parse(bad).unwrap_err().code(),
                "invalid_retention"
            );
        }
    }

    #[test]
    fn selects_only_finished_old_builds() {
        let r = Retention::days(7).unwrap();
        assert_eq!(r.cutoff(NOW), datetime!(2026-11-18 12:00 UTC));
        let builds = vec![
            build("old", false, Some(datetime!(2026-11-01 00:00 UTC))),
            build("just-old", false, Some(datetime!(2026-11-18 11:59 UTC))),
            build("at-cutoff", false, Some(datetime!(2026-11-18 12:00 UTC))),
            build("recent", false, Some(datetime!(2026-11-24 00:00 UTC))),
            // Started a month ago and still running: never deleted.
            BuildAge {
                id: "running".into(),
                running: true,
                started: Some(datetime!(2026-10-01 00:00 UTC)),
                ended: None,
            },
            // Finished but the end time was lost: aged from its start.
            BuildAge {
                id: "no-end".into(),
                running: false,
                started: Some(datetime!(2026-10-01 00:00 UTC)),
                ended: None,
            },
            build("no-times", false, None),
        ];
        let s = r.select(&builds, NOW);
        assert_eq!(s.expired, vec!["old", "just-old", "no-end"]);
        assert_eq!(s.running, vec!["running"]);
        assert_eq!(s.recent, 2);
        assert_eq!(s.unknown_age, vec!["no-times"]);
    }

    #[test]
    fn summary_texts() {
        let mut s = CleanupSummary {
            project: "slipway".into(),
            retention_days: 7,
            cutoff: datetime!(2026-11-18 12:00 UTC),
            dry_run: false,
            examined: 3,
            deleted: vec!["slipway:1".into()],
            would_delete: vec![],
            not_deleted: vec![],
            running: vec!["slipway:3".into()],
            recent: 1,
            unknown_age: vec![],
        };
        assert!(s.worth_notifying());
        assert_eq!(
            s.subject(),
            "slipway cleanup: 1 builds deleted from slipway"
        );
        s.not_deleted.push(NotDeleted {
            id: "slipway:2".into(),
            reason: "BUILD_IN_PROGRESS".into(),
        });
        assert!(s.subject().contains("1 NOT deleted"));
        assert!(s.body().contains("  slipway:2: BUILD_IN_PROGRESS\n"));
        s.project = "p".repeat(200);
        assert_eq!(s.subject().len(), 100);
        s.deleted.clear();
        s.not_deleted.clear();
        assert!(!s.worth_notifying());
    }
}
