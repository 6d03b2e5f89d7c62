//! A local GitHub REST API over real git repositories on disk: the endpoints slipway calls
//! (repository, commits, trees, compare, contents, blobs, tags, commit statuses, and the GitHub
//! App installation endpoints), answered from `git` itself with GitHub's shapes. Every request is
//! recorded with the credential it carried, so a test can assert who read and who wrote.
//!
//! Not a GitHub: only what slipway reads is served, one page of everything.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::{Value, json};

/// One request as the local GitHub saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    /// The `Authorization` header's credential (after `Bearer `/`token `), if any.
    pub credential: Option<String>,
    pub status: u16,
}

/// A commit status as posted.
#[derive(Debug, Clone)]
pub struct Status {
    pub repository: String,
    pub sha: String,
    pub body: Value,
    pub credential: Option<String>,
}

/// Decides whether a credential may act; installed by the GitHub App support (`app.rs`) or left
/// as the fixed token list.
pub type Authorizer = Arc<dyn Fn(&str, &str) -> bool + Send + Sync>;

#[derive(Default)]
struct Gh {
    repos: Mutex<HashMap<String, PathBuf>>,
    /// Credentials accepted (personal tokens, installation tokens).
    tokens: Mutex<Vec<String>>,
    seen: Mutex<Vec<Seen>>,
    statuses: Mutex<Vec<Status>>,
    /// Handles `/app/...` and `/repos/{o}/{n}/installation` (the GitHub App endpoints).
    app: Mutex<Option<Arc<dyn AppEndpoints>>>,
}

/// The GitHub App endpoints, served by `app::LocalApp`.
pub trait AppEndpoints: Send + Sync {
    /// Answers `method path` when it is an App endpoint; `None` otherwise.
    fn handle(&self, method: &Method, path: &str, headers: &HeaderMap) -> Option<(u16, Value)>;
    /// Whether `token` is a live installation token for `repository`'s owner.
    fn accepts(&self, token: &str, repository: &str) -> bool;
}

/// The running local GitHub API.
#[derive(Clone)]
pub struct LocalGitHub {
    pub url: String,
    gh: Arc<Gh>,
}

impl LocalGitHub {
    pub async fn start() -> LocalGitHub {
        let gh = Arc::new(Gh::default());
        let app = Router::new().fallback(serve).with_state(gh.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        LocalGitHub { url, gh }
    }

    /// Serves the git repository at `path` as `owner/name`.
    pub fn add_repo(&self, repository: &str, path: &Path) {
        self.gh
            .repos
            .lock()
            .unwrap()
            .insert(repository.to_ascii_lowercase(), path.to_path_buf());
    }

    /// Accepts `token` (a personal access token).
    pub fn add_token(&self, token: &str) {
        self.gh.tokens.lock().unwrap().push(token.to_string());
    }

    pub fn set_app(&self, app: Arc<dyn AppEndpoints>) {
        *self.gh.app.lock().unwrap() = Some(app);
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.gh.seen.lock().unwrap().clone()
    }

    pub fn statuses(&self) -> Vec<Status> {
        self.gh.statuses.lock().unwrap().clone()
    }
}

fn credential(headers: &HeaderMap) -> Option<String> {
    let v = headers.get("authorization")?.to_str().ok()?;
    v.strip_prefix("Bearer ")
        .or_else(|| v.strip_prefix("token "))
        .map(str::to_string)
}

async fn git(repo: &Path, args: &[&str]) -> Option<Vec<u8>> {
    let out = tokio::process::Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .await
        .ok()?;
    out.status.success().then_some(out.stdout)
}

async fn git_text(repo: &Path, args: &[&str]) -> Option<String> {
    git(repo, args)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim_end().to_string())
}

fn not_found() -> (u16, Value) {
    (
        404,
        json!({"message": "Not Found", "documentation_url": "https://docs.github.com/rest"}),
    )
}

/// A name git takes as a revision, never as an option.
fn safe_rev(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with('-')
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'/'))
}

async fn serve(
    State(gh): State<Arc<Gh>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    let query: HashMap<String, String> = uri
        .query()
        .map(|q| {
            url_pairs(q)
                .into_iter()
                .collect::<HashMap<String, String>>()
        })
        .unwrap_or_default();
    let cred = credential(&headers);
    let app = gh.app.lock().unwrap().clone();
    let (status, value) = match app
        .as_ref()
        .and_then(|a| a.handle(&method, &path, &headers))
    {
        Some(answer) => answer,
        None => answer(&gh, &method, &path, &query, cred.as_deref(), &body, app).await,
    };
    gh.seen.lock().unwrap().push(Seen {
        method: method.to_string(),
        path: path.clone(),
        credential: cred,
        status,
    });
    (
        StatusCode::from_u16(status).unwrap(),
        [("content-type", "application/json; charset=utf-8")],
        value.to_string(),
    )
        .into_response()
}

fn url_pairs(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter_map(|p| {
            let (k, v) = p.split_once('=')?;
            Some((k.to_string(), v.replace("%2F", "/").replace("%2f", "/")))
        })
        .collect()
}

async fn answer(
    gh: &Gh,
    method: &Method,
    path: &str,
    query: &HashMap<String, String>,
    cred: Option<&str>,
    body: &[u8],
    app: Option<Arc<dyn AppEndpoints>>,
) -> (u16, Value) {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let ["repos", owner, name, rest @ ..] = segments.as_slice() else {
        return not_found();
    };
    let repository = format!("{owner}/{name}");
    let Some(repo) = gh
        .repos
        .lock()
        .unwrap()
        .get(&repository.to_ascii_lowercase())
        .cloned()
    else {
        return not_found();
    };
    // A credential, when sent, must be one GitHub knows; statuses need one.
    let authorized = cred.map(|c| {
        gh.tokens.lock().unwrap().iter().any(|t| t == c)
            || app.as_ref().is_some_and(|a| a.accepts(c, &repository))
    });
    if authorized == Some(false) {
        return (401, json!({"message": "Bad credentials"}));
    }
    match (method.as_str(), rest) {
        ("GET", []) => {
            let head = git_text(&repo, &["symbolic-ref", "--short", "HEAD"])
                .await
                .unwrap_or_else(|| "main".into());
            (
                200,
                json!({
                    "full_name": repository, "name": name, "private": false,
                    "default_branch": head,
                    "clone_url": format!("https://github.com/{repository}.git"),
                }),
            )
        }
        ("GET", ["commits", r @ ..]) => {
            let rev = r.join("/");
            if !safe_rev(&rev) {
                return (422, json!({"message": "No commit found for SHA"}));
            }
            match git_text(
                &repo,
                &[
                    "rev-parse",
                    "--verify",
                    "--quiet",
                    &format!("{rev}^{{commit}}"),
                ],
            )
            .await
            {
                Some(sha) => (200, json!({"sha": sha, "commit": {"message": ""}})),
                None => (
                    422,
                    json!({"message": format!("No commit found for SHA: {rev}")}),
                ),
            }
        }
        ("GET", ["git", "trees", sha]) => tree(&repo, sha, query.contains_key("recursive")).await,
        ("GET", ["compare", spec]) => compare(&repo, spec).await,
        ("GET", ["contents", p @ ..]) => {
            let rev = query.get("ref").cloned().unwrap_or_else(|| "HEAD".into());
            contents(&repo, &rev, &p.join("/")).await
        }
        ("GET", ["git", "blobs", sha]) => {
            if !safe_rev(sha) {
                return not_found();
            }
            match git(&repo, &["cat-file", "blob", sha]).await {
                Some(b) => (
                    200,
                    json!({"sha": sha, "encoding": "base64", "size": b.len(),
                           "content": base64::engine::general_purpose::STANDARD.encode(b)}),
                ),
                None => not_found(),
            }
        }
        ("GET", ["tags"]) => {
            let list = git_text(&repo, &["tag", "--list"])
                .await
                .unwrap_or_default();
            let mut tags = Vec::new();
            for t in list.lines().filter(|l| !l.is_empty()) {
                let sha = git_text(&repo, &["rev-parse", &format!("{t}^{{commit}}")])
                    .await
                    .unwrap_or_default();
                tags.push(json!({"name": t, "commit": {"sha": sha}}));
            }
            (200, Value::Array(tags))
        }
        ("POST", ["statuses", sha]) => {
            if authorized != Some(true) {
                return (401, json!({"message": "Requires authentication"}));
            }
            let Ok(v) = serde_json::from_slice::<Value>(body) else {
                return (400, json!({"message": "Problems parsing JSON"}));
            };
            if !matches!(
                v["state"].as_str(),
                Some("pending" | "success" | "failure" | "error")
            ) {
                return (422, json!({"message": "Validation Failed"}));
            }
            gh.statuses.lock().unwrap().push(Status {
                repository: repository.clone(),
                sha: sha.to_string(),
                body: v.clone(),
                credential: cred.map(str::to_string),
            });
            (
                201,
                json!({"state": v["state"], "context": v["context"], "id": 1}),
            )
        }
        _ => not_found(),
    }
}

async fn tree(repo: &Path, sha: &str, recursive: bool) -> (u16, Value) {
    if !safe_rev(sha) {
        return not_found();
    }
    let mut args = vec!["ls-tree", "-z", "--full-tree"];
    if recursive {
        args.extend(["-r", "-t"]);
    }
    args.push(sha);
    let Some(out) = git(repo, &args).await else {
        return not_found();
    };
    let entries: Vec<Value> = out
        .split(|b| *b == 0)
        .filter(|e| !e.is_empty())
        .filter_map(|e| {
            let e = String::from_utf8_lossy(e);
            let (meta, path) = e.split_once('\t')?;
            let mut m = meta.split(' ');
            let (mode, kind, obj) = (m.next()?, m.next()?, m.next()?);
            Some(json!({"path": path, "mode": mode, "type": kind, "sha": obj}))
        })
        .collect();
    (
        200,
        json!({"sha": sha, "tree": entries, "truncated": false}),
    )
}

async fn compare(repo: &Path, spec: &str) -> (u16, Value) {
    let Some((base, head)) = spec.split_once("...") else {
        return not_found();
    };
    if !safe_rev(base) || !safe_rev(head) {
        return not_found();
    }
    let Some(merge_base) = git_text(repo, &["merge-base", base, head]).await else {
        return not_found();
    };
    let Some(out) = git(
        repo,
        &[
            "diff",
            "--name-status",
            "-z",
            "-M",
            &format!("{base}...{head}"),
        ],
    )
    .await
    else {
        return not_found();
    };
    let mut parts = out
        .split(|b| *b == 0)
        .map(|p| String::from_utf8_lossy(p).to_string());
    let mut files = Vec::new();
    while let Some(status) = parts.next() {
        if status.is_empty() {
            continue;
        }
        if status.starts_with('R') || status.starts_with('C') {
            let (from, to) = (
                parts.next().unwrap_or_default(),
                parts.next().unwrap_or_default(),
            );
            files.push(json!({"filename": to, "previous_filename": from, "status": "renamed"}));
        } else {
            let f = parts.next().unwrap_or_default();
            let s = match status.as_str() {
                "A" => "added",
                "D" => "removed",
                _ => "modified",
            };
            files.push(json!({"filename": f, "status": s}));
        }
    }
    (
        200,
        json!({"status": "ahead", "merge_base_commit": {"sha": merge_base}, "files": files}),
    )
}

async fn contents(repo: &Path, rev: &str, path: &str) -> (u16, Value) {
    if !safe_rev(rev) || path.split('/').any(|s| s.is_empty() || s == "..") {
        return not_found();
    }
    let object = format!("{rev}:{path}");
    match git_text(repo, &["cat-file", "-t", &object])
        .await
        .as_deref()
    {
        Some("blob") => {
            let sha = git_text(repo, &["rev-parse", &object])
                .await
                .unwrap_or_default();
            let bytes = git(repo, &["cat-file", "blob", &object])
                .await
                .unwrap_or_default();
            (
                200,
                json!({"type": "file", "path": path, "sha": sha, "size": bytes.len(),
                       "encoding": "base64",
                       "content": base64::engine::general_purpose::STANDARD.encode(bytes)}),
            )
        }
        Some("tree") => (200, json!([])),
        _ => not_found(),
    }
}
