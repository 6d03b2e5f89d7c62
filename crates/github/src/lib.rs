//! The GitHub REST adapter for the planner's [`RepoSource`] port: the tree at a commit
//! (`git/trees?recursive=1`, walked level by level when GitHub truncates it), the change between
//! two commits (`compare/base...head`; GitHub lists at most 300 files, past which the diff is
//! marked incomplete), file contents (`contents`, falling back to `git/blobs` for large files)
//! and tag names (`tags`, paginated).
//!
//! The token comes from the caller (the spawner reads it from SSM) and is sent only in the
//! `Authorization` header; the base URL is configurable for GitHub Enterprise Server
//! (`https://ghe.example.com/api/v3`) and for tests.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderMap, HeaderValue, USER_AGENT};
use reqwest::{Response, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use slipway_core::names::{check_ref, check_repo_path, check_repository, check_sha};
use slipway_core::plan::{Diff, RepoSource, SourceError};
use url::Url;

/// `https://api.github.com`.
pub const DEFAULT_API_URL: &str = "https://api.github.com";

/// GitHub's compare lists at most this many files; a list this long may be cut.
pub const COMPARE_FILES_CAP: usize = 300;

/// At most this many pages of 100 tags are read (10,000 tags).
const MAX_TAG_PAGES: usize = 100;

/// A repository on GitHub (or GitHub Enterprise Server), read through the REST API.
#[derive(Clone)]
pub struct GitHubRepo {
    http: reqwest::Client,
    api: Url,
    owner: String,
    name: String,
    token: Option<SecretString>,
}

impl std::fmt::Debug for GitHubRepo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitHubRepo")
            .field("api", &self.api.as_str())
            .field("repository", &format!("{}/{}", self.owner, self.name))
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// A setting the adapter cannot start with.
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

impl GitHubRepo {
    /// `api_url`: `https://api.github.com`, a GitHub Enterprise `https://host/api/v3`, or a test
    /// server. `token`: a token with read access to contents (`None` for public repositories).
    pub fn new(
        api_url: &str,
        repository: &str,
        token: Option<SecretString>,
    ) -> Result<Self, SetupError> {
        let mut api = Url::parse(api_url).map_err(|e| SetupError::ApiUrl(e.to_string()))?;
        if !matches!(api.scheme(), "https" | "http") || api.cannot_be_a_base() {
            return Err(SetupError::ApiUrl("must be an http(s) URL".into()));
        }
        if !api.path().ends_with('/') {
            let p = format!("{}/", api.path());
            api.set_path(&p);
        }
        check_repository(repository)
            .map_err(|e| SetupError::Repository(repository.into(), e.to_string()))?;
        let (owner, name) = repository.split_once('/').expect("checked");
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
            .timeout(Duration::from_secs(30))
            .connect_timeout(Duration::from_secs(10))
            // Redirects could carry the token to another host.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| SetupError::Client(e.to_string()))?;
        Ok(Self {
            http,
            api,
            owner: owner.into(),
            name: name.into(),
            token,
        })
    }

    /// `repos/{owner}/{name}/<segments...>`, each segment percent-encoded.
    fn url(&self, segments: &[&str], query: &[(&str, &str)]) -> Url {
        let mut u = self.api.clone();
        {
            let mut p = u.path_segments_mut().expect("checked base");
            p.pop_if_empty();
            p.extend(["repos", &self.owner, &self.name]);
            p.extend(segments);
        }
        if !query.is_empty() {
            u.query_pairs_mut().extend_pairs(query);
        }
        u
    }

    async fn get(&self, url: Url) -> Result<Response, SourceError> {
        let mut req = self.http.get(url.clone());
        if let Some(t) = &self.token {
            let mut v =
                HeaderValue::from_str(&format!("Bearer {}", t.expose_secret())).map_err(|_| {
                    SourceError::Invalid("the GitHub token is not a valid header".into())
                })?;
            v.set_sensitive(true);
            req = req.header(AUTHORIZATION, v);
        }
        let resp = req.send().await.map_err(|e| {
            SourceError::Unavailable(format!(
                "GitHub did not answer {}: {}",
                url.path(),
                e.without_url()
            ))
        })?;
        tracing::debug!(path = url.path(), status = resp.status().as_u16(), "github");
        Ok(resp)
    }

    /// GET and decode JSON; `Ok(None)` on 404 (and 422, GitHub's "no such commit").
    async fn get_json<T: for<'de> Deserialize<'de>>(
        &self,
        url: Url,
    ) -> Result<Option<(T, HeaderMap)>, SourceError> {
        let resp = self.get(url.clone()).await?;
        let status = resp.status();
        if status == StatusCode::NOT_FOUND || status == StatusCode::UNPROCESSABLE_ENTITY {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(error_for(resp).await);
        }
        let headers = resp.headers().clone();
        let body = resp.bytes().await.map_err(|e| {
            SourceError::Unavailable(format!("reading {}: {}", url.path(), e.without_url()))
        })?;
        let value = serde_json::from_slice(&body).map_err(|e| {
            SourceError::Unavailable(format!(
                "GitHub answered {} with an unexpected shape: {e}",
                url.path()
            ))
        })?;
        Ok(Some((value, headers)))
    }

    /// One level of a tree.
    async fn tree_level(&self, sha: &str, recursive: bool) -> Result<TreeResponse, SourceError> {
        let q: &[(&str, &str)] = if recursive {
            &[("recursive", "1")]
        } else {
            &[]
        };
        self.get_json::<TreeResponse>(self.url(&["git", "trees", sha], q))
            .await?
            .map(|(t, _)| t)
            .ok_or_else(|| SourceError::NotFound(format!("the tree `{sha}`")))
    }

    async fn compare(&self, base: &str, head: &str) -> Result<Compare, SourceError> {
        for s in [base, head] {
            check_sha(s).map_err(|e| SourceError::Invalid(format!("`{s}` {e}")))?;
        }
        let spec = format!("{base}...{head}");
        self.get_json::<Compare>(self.url(&["compare", &spec], &[("per_page", "100")]))
            .await?
            .map(|(c, _)| c)
            .ok_or_else(|| {
                SourceError::NotFound(format!(
                    "the comparison {base}...{head} (a commit may be gone)"
                ))
            })
    }
}

#[derive(Deserialize)]
struct CommitResponse {
    sha: String,
}

#[derive(Deserialize)]
struct TreeResponse {
    #[serde(default)]
    tree: Vec<TreeEntry>,
    #[serde(default)]
    truncated: bool,
}

#[derive(Deserialize)]
struct TreeEntry {
    path: String,
    #[serde(rename = "type")]
    kind: String,
    sha: String,
}

#[derive(Deserialize)]
struct Compare {
    #[serde(default)]
    merge_base_commit: Option<CommitResponse>,
    #[serde(default)]
    files: Option<Vec<CompareFile>>,
}

#[derive(Deserialize)]
struct CompareFile {
    filename: String,
    #[serde(default)]
    previous_filename: Option<String>,
}

#[derive(Deserialize)]
struct Contents {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    encoding: Option<String>,
    #[serde(default)]
    content: Option<String>,
    sha: String,
}

#[derive(Deserialize)]
struct Blob {
    content: String,
    encoding: String,
}

#[derive(Deserialize)]
struct Tag {
    name: String,
}

fn decode(encoding: Option<&str>, content: &str) -> Result<String, SourceError> {
    match encoding {
        Some("base64") => {
            let compact: String = content.chars().filter(|c| !c.is_whitespace()).collect();
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(compact)
                .map_err(|e| SourceError::Unavailable(format!("GitHub sent bad base64: {e}")))?;
            Ok(String::from_utf8_lossy(&bytes).into_owned())
        }
        Some("utf-8") | None => Ok(content.to_string()),
        Some(other) => Err(SourceError::Unavailable(format!(
            "GitHub sent content in the unknown encoding `{other}`"
        ))),
    }
}

/// The error for an unsuccessful answer. Rate limits are told apart from denials the way
/// GitHub documents them: 429, or 403 with `x-ratelimit-remaining: 0` or a `retry-after`.
async fn error_for(resp: Response) -> SourceError {
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

impl RepoSource for GitHubRepo {
    async fn resolve(&self, rev: &str) -> Result<String, SourceError> {
        let short = if check_sha(rev).is_ok() {
            rev
        } else if check_ref(rev).is_ok() {
            rev.strip_prefix("refs/heads/")
                .or_else(|| rev.strip_prefix("refs/tags/"))
                .unwrap_or(rev)
        } else {
            return Err(SourceError::Invalid(format!(
                "`{rev}` is neither a sha nor a ref"
            )));
        };
        let segments: Vec<&str> = std::iter::once("commits").chain(short.split('/')).collect();
        // `commits/{ref}` answers with the commit, peeling tags.
        match self
            .get_json::<CommitResponse>(self.url(&segments, &[]))
            .await?
        {
            Some((c, _)) => {
                check_sha(&c.sha).map_err(|e| {
                    SourceError::Unavailable(format!("GitHub answered a bad sha: {e}"))
                })?;
                Ok(c.sha)
            }
            None => Err(SourceError::NotFound(format!(
                "`{rev}` in {}/{}",
                self.owner, self.name
            ))),
        }
    }

    async fn tree(&self, commit: &str) -> Result<Vec<String>, SourceError> {
        check_sha(commit).map_err(|e| SourceError::Invalid(format!("`{commit}` {e}")))?;
        let top = self.tree_level(commit, true).await?;
        if !top.truncated {
            return Ok(top
                .tree
                .into_iter()
                .filter(|e| e.kind == "blob")
                .map(|e| e.path)
                .collect());
        }
        // Truncated (over 100,000 entries or 7 MB): walk it one level at a time.
        tracing::info!(
            commit,
            "GitHub truncated the recursive tree; walking it level by level"
        );
        let mut files = Vec::new();
        let mut pending = vec![(String::new(), commit.to_string())];
        while let Some((prefix, sha)) = pending.pop() {
            for e in self.tree_level(&sha, false).await?.tree {
                let path = if prefix.is_empty() {
                    e.path
                } else {
                    format!("{prefix}/{}", e.path)
                };
                match e.kind.as_str() {
                    "blob" => files.push(path),
                    "tree" => pending.push((path, e.sha)),
                    _ => {}
                }
            }
        }
        files.sort();
        Ok(files)
    }

    async fn read_file(&self, commit: &str, path: &str) -> Result<Option<String>, SourceError> {
        check_sha(commit).map_err(|e| SourceError::Invalid(format!("`{commit}` {e}")))?;
        check_repo_path(path)
            .map_err(|e| SourceError::Invalid(format!("the path `{path}` {e}")))?;
        let segments: Vec<&str> = std::iter::once("contents").chain(path.split('/')).collect();
        let Some((c, _)) = self
            .get_json::<Contents>(self.url(&segments, &[("ref", commit)]))
            .await?
        else {
            return Ok(None);
        };
        if c.kind != "file" {
            return Ok(None);
        }
        match (c.encoding.as_deref(), c.content.as_deref()) {
            // Over 1 MB the contents API sends no content: read the blob.
            (Some("none"), _) | (_, None) => {
                let (b, _) = self
                    .get_json::<Blob>(self.url(&["git", "blobs", &c.sha], &[]))
                    .await?
                    .ok_or_else(|| SourceError::NotFound(format!("the blob of `{path}`")))?;
                decode(Some(&b.encoding), &b.content).map(Some)
            }
            (enc, Some(content)) => decode(enc, content).map(Some),
        }
    }

    async fn diff(&self, base: &str, head: &str) -> Result<Diff, SourceError> {
        let c = self.compare(base, head).await?;
        let files = c.files.unwrap_or_default();
        // The file list is on the first page only and capped for the whole comparison.
        let complete = files.len() < COMPARE_FILES_CAP;
        let mut paths: Vec<String> = files
            .into_iter()
            .flat_map(|f| std::iter::once(f.filename).chain(f.previous_filename))
            .filter(|p| check_repo_path(p).is_ok())
            .collect();
        paths.sort();
        paths.dedup();
        if !complete {
            tracing::info!(
                base,
                head,
                "GitHub's compare lists its cap of 300 files; the diff is incomplete"
            );
        }
        Ok(Diff { paths, complete })
    }

    async fn merge_base(&self, a: &str, b: &str) -> Result<Option<String>, SourceError> {
        match self.compare(a, b).await {
            Ok(c) => Ok(c
                .merge_base_commit
                .map(|m| m.sha)
                .filter(|s| check_sha(s).is_ok())),
            Err(e) => Err(e),
        }
    }

    async fn tags(&self) -> Result<Vec<String>, SourceError> {
        let mut out = Vec::new();
        for page in 1..=MAX_TAG_PAGES {
            let p = page.to_string();
            let Some((tags, headers)) = self
                .get_json::<Vec<Tag>>(self.url(&["tags"], &[("per_page", "100"), ("page", &p)]))
                .await?
            else {
                break;
            };
            let n = tags.len();
            out.extend(tags.into_iter().map(|t| t.name));
            let has_next = headers
                .get("link")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|l| l.contains("rel=\"next\""));
            if !has_next || n == 0 {
                break;
            }
        }
        Ok(out)
    }
}
