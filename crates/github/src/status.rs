//! Commit statuses (`POST /repos/{owner}/{name}/statuses/{sha}`), one per image, with the context
//! `slipway/<image>` (core decides state, context and description; this sends them).

use std::time::Duration;

use slipway_core::names::{check_repository, check_sha};
use slipway_core::notify::CommitStatus;
use slipway_core::retry::{backoff, retryable_status};

use crate::GitHub;

/// Longest wait for one status request.
const STATUS_TIMEOUT: Duration = Duration::from_secs(10);
/// Attempts per status: one retry after a server error or a failed connection.
const STATUS_ATTEMPTS: u32 = 2;
const STATUS_BACKOFF: Duration = Duration::from_millis(500);

/// Why a commit status was not set. Never carries the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StatusError {
    #[error("the commit status is invalid: {0}")]
    Invalid(String),
    #[error("GitHub answered {0} to the commit status")]
    Refused(u16),
    #[error("GitHub could not be reached: {0}")]
    Unreachable(String),
}

impl StatusError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::Invalid(_) => "github_status_invalid",
            Self::Refused(_) => "github_status_failed",
            Self::Unreachable(_) => "github_unreachable",
        }
    }
}

impl GitHub {
    /// Sets one commit status; retried once after a 5xx, a 408/429 or a failed connection.
    pub async fn set_status(&self, s: &CommitStatus) -> Result<(), StatusError> {
        check_repository(&s.repository).map_err(|e| StatusError::Invalid(e.to_string()))?;
        check_sha(&s.commit).map_err(|e| StatusError::Invalid(e.to_string()))?;
        let (owner, name) = s.repository.split_once('/').expect("checked");
        let url = self.repos_url(owner, name, &["statuses", &s.commit], &[]);
        let body = serde_json::json!({
            "state": s.state,
            "context": s.context,
            "description": s.description,
            "target_url": s.target_url,
        });
        let mut last = StatusError::Unreachable("not attempted".into());
        for attempt in 1..=STATUS_ATTEMPTS {
            if attempt > 1 {
                tokio::time::sleep(backoff(attempt - 1, STATUS_BACKOFF, STATUS_BACKOFF)).await;
            }
            let req = self
                .http
                .post(url.clone())
                .timeout(STATUS_TIMEOUT)
                .json(&body);
            match self.authorized(req).send().await {
                Ok(resp) if resp.status().is_success() => return Ok(()),
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    last = StatusError::Refused(status);
                    if !retryable_status(status) {
                        break;
                    }
                }
                Err(e) => last = StatusError::Unreachable(e.without_url().to_string()),
            }
        }
        Err(last)
    }
}

/// A status that could not be set, as the notification's sinks report it.
impl From<StatusError> for slipway_core::notify::SinkError {
    fn from(e: StatusError) -> Self {
        Self {
            code: e.code().into(),
            message: e.to_string(),
        }
    }
}
