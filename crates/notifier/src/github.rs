//! GitHub commit statuses (`POST /repos/{owner}/{name}/statuses/{sha}`), one per image, with the
//! context `slipway/<image>`. The token is sent only in the `Authorization` header; the base URL
//! is configurable (GitHub Enterprise Server, tests).

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use slipway_core::names::{check_repository, check_sha};
use slipway_core::notify::{CommitStatus, SinkError};
use url::Url;

pub const DEFAULT_API_URL: &str = "https://api.github.com";

/// Sets commit statuses.
#[derive(Clone)]
pub struct StatusClient {
    http: reqwest::Client,
    api: Url,
    token: SecretString,
}

impl std::fmt::Debug for StatusClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatusClient")
            .field("api", &self.api.as_str())
            .field("token", &"<redacted>")
            .finish()
    }
}

fn fail(code: &str, message: impl Into<String>) -> SinkError {
    SinkError {
        code: code.into(),
        message: message.into(),
    }
}

impl StatusClient {
    /// `api_url`: `https://api.github.com`, `https://host/api/v3`, or a test server.
    pub fn new(api_url: &str, token: SecretString) -> Result<Self, String> {
        let api = Url::parse(api_url).map_err(|e| format!("the GitHub API URL is invalid: {e}"))?;
        if !matches!(api.scheme(), "https" | "http") || api.cannot_be_a_base() {
            return Err("the GitHub API URL must be an http(s) URL".into());
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .connect_timeout(Duration::from_secs(5))
            // A redirect could carry the token to another host.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent("slipway")
            .build()
            .map_err(|e| format!("the HTTP client could not be built: {e}"))?;
        Ok(Self { http, api, token })
    }

    fn url(&self, repository: &str, sha: &str) -> Url {
        let (owner, name) = repository.split_once('/').expect("checked");
        let mut u = self.api.clone();
        {
            let mut p = u.path_segments_mut().expect("checked base");
            p.pop_if_empty();
            p.extend(["repos", owner, name, "statuses", sha]);
        }
        u
    }

    /// Sets one status; one retry after a 5xx or a failed connection.
    pub async fn set(&self, s: &CommitStatus) -> Result<(), SinkError> {
        check_repository(&s.repository)
            .map_err(|e| fail("github_status_invalid", e.to_string()))?;
        check_sha(&s.commit).map_err(|e| fail("github_status_invalid", e.to_string()))?;
        let url = self.url(&s.repository, &s.commit);
        let body = serde_json::json!({
            "state": s.state,
            "context": s.context,
            "description": s.description,
            "target_url": s.target_url,
        });
        let mut last = fail("github_status_failed", "not attempted");
        for attempt in 1..=2 {
            if attempt > 1 {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            let sent = self
                .http
                .post(url.clone())
                .bearer_auth(self.token.expose_secret())
                .header("accept", "application/vnd.github+json")
                .header("x-github-api-version", "2022-11-28")
                .json(&body)
                .send()
                .await;
            match sent {
                Ok(resp) if resp.status().is_success() => return Ok(()),
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    last = fail(
                        "github_status_failed",
                        format!("GitHub answered {status} to the commit status"),
                    );
                    if status < 500 {
                        break;
                    }
                }
                Err(e) => {
                    last = fail(
                        "github_unreachable",
                        format!("GitHub could not be reached: {}", e.without_url()),
                    );
                }
            }
        }
        Err(last)
    }
}
