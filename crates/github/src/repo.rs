//! A repository read through the REST API: the planner's [`RepoSource`] port.

use base64::Engine as _;
use reqwest::header::HeaderMap;
use reqwest::{Response, StatusCode};
use serde::Deserialize;
use slipway_core::names::{check_ref, check_repo_path, check_sha};
use slipway_core::plan::{Diff, RepoSource, SourceError};
use url::Url;

use crate::{COMPARE_FILES_CAP, GitHub, SetupError, error_for};

/// At most this many pages of 100 tags are read (10,000 tags).
const MAX_TAG_PAGES: usize = 100;

/// Longest wait for one read.
const READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// A repository on GitHub (or GitHub Enterprise Server), read through the REST API.
#[derive(Clone, Debug)]
pub struct GitHubRepo {
    gh: GitHub,
    owner: String,
    name: String,
}

impl GitHubRepo {
    /// `api_url`: `https://api.github.com`, a GitHub Enterprise `https://host/api/v3`, or a test
    /// server. `token`: a token with read access to contents (`None` for public repositories).
    pub fn new(
        api_url: &str,
        repository: &str,
        token: Option<secrecy::SecretString>,
    ) -> Result<Self, SetupError> {
        GitHub::new(api_url, token)?.repo(repository)
    }

    pub(crate) fn on(gh: GitHub, owner: &str, name: &str) -> Self {
        Self {
            gh,
            owner: owner.into(),
            name: name.into(),
        }
    }

    /// `repos/{owner}/{name}/<segments...>`, each segment percent-encoded.
    fn url(&self, segments: &[&str], query: &[(&str, &str)]) -> Url {
        self.gh.repos_url(&self.owner, &self.name, segments, query)
    }

    async fn get(&self, url: Url) -> Result<Response, SourceError> {
        let req = self
            .gh
            .authorized(self.gh.http.get(url.clone()).timeout(READ_TIMEOUT));
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

    /// `GET /repos/{owner}/{name}`: the repository's default branch.
    pub async fn default_branch(&self) -> Result<String, SourceError> {
        let (r, _) = self
            .get_json::<RepoResponse>(self.url(&[], &[]))
            .await?
            .ok_or_else(|| {
                SourceError::NotFound(format!("the repository {}/{}", self.owner, self.name))
            })?;
        check_ref(&format!("refs/heads/{}", r.default_branch)).map_err(|e| {
            SourceError::Unavailable(format!("GitHub answered a bad default branch: {e}"))
        })?;
        Ok(r.default_branch)
    }
}

#[derive(Deserialize)]
struct RepoResponse {
    default_branch: String,
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
