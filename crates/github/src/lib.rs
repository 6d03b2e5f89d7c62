//! slipway's one GitHub client: the REST calls every part makes, with one HTTP client, one
//! token rule and one reading of GitHub's errors.
//!
//! - [`GitHubRepo`]: the planner's [`RepoSource`](slipway_core::plan::RepoSource) port — the tree
//!   at a commit (`git/trees?recursive=1`, walked level by level when GitHub truncates it), the
//!   change between two commits (`compare/base...head`; GitHub lists at most 300 files, past
//!   which the diff is marked incomplete), file contents (`contents`, falling back to
//!   `git/blobs` for large files), tag names (`tags`, paginated) and the default branch;
//! - [`GitHub::set_status`]: commit statuses, one per image (`slipway/<image>`).
//!
//! The token comes from the caller (the Lambdas read it from SSM) and is sent only in the
//! `Authorization` header, marked sensitive; redirects are never followed (they could carry the
//! token to another host). The base URL is configurable for GitHub Enterprise Server
//! (`https://ghe.example.com/api/v3`) and for tests.

mod repo;
mod status;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderMap, HeaderValue, USER_AGENT};
use reqwest::{RequestBuilder, Response, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use slipway_core::names::check_repository;
use slipway_core::plan::SourceError;
use url::Url;

pub use repo::GitHubRepo;
pub use status::StatusError;

/// `https://api.github.com`.
pub const DEFAULT_API_URL: &str = "https://api.github.com";

/// GitHub's compare lists at most this many files; a list this long may be cut.
pub const COMPARE_FILES_CAP: usize = 300;

/// A GitHub API (github.com or an Enterprise Server) with a token, or anonymous. Cheap to clone:
/// clones share one connection pool.
#[derive(Clone)]
pub struct GitHub {
    http: reqwest::Client,
    api: Url,
    token: Option<SecretString>,
}

impl std::fmt::Debug for GitHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitHub")
            .field("api", &self.api.as_str())
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// A setting the client cannot start with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SetupError {
    #[error("the GitHub API URL is invalid: {0}")]
    ApiUrl(String),
    #[error("the repository `{0}` is not `owner/name`: {1}")]
    Repository(String, String),
    #[error("the HTTP client could not be built: {0}")]
    Client(String),
}

impl SetupError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::ApiUrl(_) => "invalid_api_url",
            Self::Repository(..) => "invalid_repository",
            Self::Client(_) => "http_client",
        }
    }
}

impl GitHub {
    /// `api_url`: `https://api.github.com`, a GitHub Enterprise `https://host/api/v3`, or a test
    /// server. `token`: `None` reads public repositories only.
    pub fn new(api_url: &str, token: Option<SecretString>) -> Result<Self, SetupError> {
        let mut api = Url::parse(api_url).map_err(|e| SetupError::ApiUrl(e.to_string()))?;
        if !matches!(api.scheme(), "https" | "http") || api.cannot_be_a_base() {
            return Err(SetupError::ApiUrl("must be an http(s) URL".into()));
        }
        if !api.path().ends_with('/') {
            let p = format!("{}/", api.path());
            api.set_path(&p);
        }
        let mut headers = HeaderMap::new();
        headers.insert(
            ACCEPT,
            HeaderValue::from_static("application/vnd.github+json"),
        );
        headers.insert(USER_AGENT, HeaderValue::from_static("slipway"));
        headers.insert(
            "x-github-api-version",
            HeaderValue::from_static("2022-11-28"),
        );
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .connect_timeout(Duration::from_secs(10))
            // Redirects could carry the token to another host.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| SetupError::Client(e.to_string()))?;
        Ok(Self { http, api, token })
    }

    /// The repository `owner/name` on this API.
    pub fn repo(&self, repository: &str) -> Result<GitHubRepo, SetupError> {
        check_repository(repository)
            .map_err(|e| SetupError::Repository(repository.into(), e.to_string()))?;
        let (owner, name) = repository.split_once('/').expect("checked");
        Ok(GitHubRepo::on(self.clone(), owner, name))
    }

    /// `repos/{owner}/{name}/<segments...>`, each segment percent-encoded.
    fn repos_url(&self, owner: &str, name: &str, segments: &[&str], query: &[(&str, &str)]) -> Url {
        let mut u = self.api.clone();
        {
            let mut p = u.path_segments_mut().expect("checked base");
            p.pop_if_empty();
            p.extend(["repos", owner, name]);
            p.extend(segments);
        }
        if !query.is_empty() {
            u.query_pairs_mut().extend_pairs(query);
        }
        u
    }

    /// The request with the token, if any, in a sensitive `Authorization` header.
    fn authorized(&self, req: RequestBuilder) -> RequestBuilder {
        match &self.token {
            Some(t) => match HeaderValue::from_str(&format!("Bearer {}", t.expose_secret())) {
                Ok(mut v) => {
                    v.set_sensitive(true);
                    req.header(AUTHORIZATION, v)
                }
                // A token that is no header value is sent as none: GitHub then answers 401.
                Err(_) => req,
            },
            None => req,
        }
    }
}

/// The error for an unsuccessful answer. Rate limits are told apart from denials the way
/// GitHub documents them: 429, or 403 with `x-ratelimit-remaining: 0` or a `retry-after`.
pub(crate) async fn error_for(resp: Response) -> SourceError {
    let status = resp.status();
    let headers = resp.headers().clone();
    let path = resp.url().path().to_string();
    let body = resp.text().await.unwrap_or_default();
    let message = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| {
            v.get("message")
                .and_then(|m| m.as_str())
                .map(str::to_string)
        })
        .unwrap_or_else(|| status.to_string());
    let header = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let retry_after = header("retry-after").and_then(|v| v.parse::<u64>().ok());
    let remaining_zero = header("x-ratelimit-remaining").as_deref() == Some("0");
    if status == StatusCode::TOO_MANY_REQUESTS
        || (status == StatusCode::FORBIDDEN && (remaining_zero || retry_after.is_some()))
    {
        let retry_after_secs = retry_after.or_else(|| {
            let reset = header("x-ratelimit-reset")?.parse::<u64>().ok()?;
            let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?.as_secs();
            Some(reset.saturating_sub(now))
        });
        tracing::warn!(path = %path, retry_after_secs, "GitHub rate limit");
        return SourceError::RateLimited {
            message: format!("GitHub: {message}"),
            retry_after_secs,
        };
    }
    match status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
            SourceError::Denied(format!("GitHub {} on {path}: {message}", status.as_u16()))
        }
        s if s.is_redirection() => SourceError::Unavailable(format!(
            "GitHub redirected {path} (a renamed repository?): {message}"
        )),
        _ => SourceError::Unavailable(format!("GitHub {} on {path}: {message}", status.as_u16())),
    }
}
