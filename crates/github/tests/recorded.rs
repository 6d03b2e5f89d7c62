//! The GitHub adapter against recorded answers of the documented shapes, served by a local HTTP
//! server on 127.0.0.1.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{Response, StatusCode};
use secrecy::SecretString;
use serde_json::{Value, json};
use slipway_core::Job;
use slipway_core::plan::{ChangeSource, PlanSettings, RepoSource, SourceError, plan_job};
use slipway_github::GitHubRepo;

const BEFORE: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const COMMIT: &str = "cccccccccccccccccccccccccccccccccccccccc";
const WEB_TREE: &str = "1111111111111111111111111111111111111111";

type Headers = Vec<(&'static str, String)>;
/// (`path?query`, status, headers, body)
type Answer = (String, u16, Headers, Value);
/// (`path?query`, Authorization) of every request.
type Seen = Arc<Mutex<Vec<(String, Option<String>)>>>;

#[derive(Clone, Default)]
struct Recorded {
    /// `path?query` → (status, headers, body)
    answers: Arc<HashMap<String, (u16, Headers, String)>>,
    /// (path?query, Authorization) of every request.
    seen: Seen,
}

async fn answer(State(r): State<Recorded>, req: Request) -> Response<Body> {
    let key = match req.uri().query() {
        Some(q) => format!("{}?{q}", req.uri().path()),
        None => req.uri().path().to_string(),
    };
    let auth = req
        .headers()
        .get("authorization")
        .map(|v| v.to_str().unwrap().to_string());
    r.seen.lock().unwrap().push((key.clone(), auth));
    let (status, headers, body) = r.answers.get(&key).cloned().unwrap_or((
        404,
        vec![],
        json!({"message": "Not Found", "documentation_url": "https://docs.github.com/rest"})
            .to_string(),
    ));
    let mut resp = Response::builder()
        .status(StatusCode::from_u16(status).unwrap())
        .header("content-type", "application/json; charset=utf-8");
    for (k, v) in headers {
        resp = resp.header(k, v);
    }
    resp.body(Body::from(body)).unwrap()
}

struct Server {
    url: String,
    seen: Seen,
}

async fn serve(answers: Vec<Answer>) -> Server {
    let map = answers
        .into_iter()
        .map(|(k, s, h, b)| (k, (s, h, b.to_string())))
        .collect();
    let state = Recorded {
        answers: Arc::new(map),
        seen: Arc::default(),
    };
    let seen = state.seen.clone();
    let app = axum::Router::new().fallback(answer).with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/api/v3", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Server { url, seen }
}

fn ok(key: &str, body: Value) -> Answer {
    (format!("/api/v3/repos/acme/shop{key}"), 200, vec![], body)
}

fn b64(s: &str) -> String {
    use base64::Engine as _;
    // GitHub wraps base64 content at 60 characters with `\n`.
    let enc = base64::engine::general_purpose::STANDARD.encode(s);
    enc.as_bytes()
        .chunks(60)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

fn blob(path: &str) -> Value {
    json!({"path": path, "mode": "100644", "type": "blob", "sha": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "size": 10,
           "url": "https://api.github.com/repos/acme/shop/git/blobs/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"})
}

fn contents(path: &str, text: &str) -> Value {
    json!({"type": "file", "encoding": "base64", "size": text.len(), "name": path.rsplit('/').next(),
           "path": path, "content": b64(text), "sha": "dddddddddddddddddddddddddddddddddddddddd",
           "url": "", "git_url": "", "html_url": "", "download_url": "", "_links": {}})
}

fn job(changed: &[&str], incomplete: Option<&str>) -> Job {
    serde_json::from_value(json!({
        "id": "push-1", "trigger": {"kind": "push"}, "delivery_id": "1",
        "repository": "acme/shop", "clone_url": "https://github.com/acme/shop.git",
        "private": true, "default_branch": "main", "ref": "refs/heads/main",
        "before": BEFORE, "after": COMMIT, "commit": COMMIT,
        "changed_paths": changed, "changes_incomplete": incomplete
    }))
    .unwrap()
}

fn repo_answers(files: Value) -> Vec<Answer> {
    vec![
        ok(
            &format!("/commits/{COMMIT}"),
            json!({"sha": COMMIT, "node_id": "x", "commit": {"message": "m"}}),
        ),
        ok(
            &format!("/git/trees/{COMMIT}?recursive=1"),
            json!({"sha": COMMIT, "url": "", "truncated": false, "tree": [
                {"path": "web", "mode": "040000", "type": "tree", "sha": WEB_TREE},
                blob("web/Dockerfile"), blob("web/index.html"),
                blob("api/Dockerfile"), blob("api/new.go"),
                blob("base/Dockerfile"),
                {"path": "vendor/lib", "mode": "160000", "type": "commit", "sha": WEB_TREE}
            ]}),
        ),
        ok(
            &format!("/contents/web/Dockerfile?ref={COMMIT}"),
            contents(
                "web/Dockerfile",
                "FROM ghcr.io/acme/base:latest\nCOPY . /srv\n",
            ),
        ),
        ok(
            &format!("/contents/base/Dockerfile?ref={COMMIT}"),
            contents("base/Dockerfile", "FROM scratch\n"),
        ),
        // Over 1 MB: no content, read the blob.
        ok(
            &format!("/contents/api/Dockerfile?ref={COMMIT}"),
            json!({"type": "file", "encoding": "none", "content": "", "size": 2_000_000,
                   "path": "api/Dockerfile", "sha": "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee"}),
        ),
        ok(
            "/git/blobs/eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee",
            json!({"sha": "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee", "size": 13, "encoding": "base64",
                   "content": b64("FROM ghcr.io/acme/base\n")}),
        ),
        ok(
            &format!("/compare/{BEFORE}...{COMMIT}?per_page=100"),
            json!({"status": "ahead", "ahead_by": 1, "behind_by": 0, "total_commits": 1,
                   "merge_base_commit": {"sha": BEFORE}, "commits": [],
                   "files": files}),
        ),
    ]
}

#[tokio::test]
async fn plans_a_push_from_tree_compare_and_contents() {
    let server = serve(repo_answers(json!([
        {"sha": "x", "filename": "web/index.html", "status": "modified", "additions": 1, "deletions": 1, "changes": 2},
        {"sha": "y", "filename": "api/new.go", "previous_filename": "old/new.go", "status": "renamed"}
    ])))
    .await;
    let gh = GitHubRepo::new(
        &server.url,
        "acme/shop",
        Some(SecretString::from("ghs_secret")),
    )
    .unwrap();
    let plan = plan_job(&gh, &job(&[], None), &PlanSettings::new("ghcr.io/acme"))
        .await
        .unwrap();
    assert_eq!(
        plan.changes,
        ChangeSource::Repository {
            base: BEFORE.into()
        }
    );
    let got: Vec<_> = plan
        .images
        .iter()
        .map(|i| {
            (
                i.name.as_str(),
                i.reasons.clone(),
                i.parents.clone(),
                i.order,
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (
                "ghcr.io/acme/api",
                vec!["api/new.go".to_string()],
                vec!["ghcr.io/acme/base".to_string()],
                0
            ),
            (
                "ghcr.io/acme/web",
                vec!["web/index.html".to_string()],
                vec!["ghcr.io/acme/base".to_string()],
                0
            ),
        ]
    );
    assert_eq!(plan.images[0].tags, vec!["main", "latest", "sha-ccccccc"]);
    let seen = server.seen.lock().unwrap();
    assert!(
        seen.iter()
            .all(|(_, auth)| auth.as_deref() == Some("Bearer ghs_secret")),
        "{seen:?}"
    );
    // No slipway.toml in the tree: it is not asked for.
    assert!(!seen.iter().any(|(k, _)| k.contains("slipway.toml")));
    // Debug output never shows the token.
    assert!(!format!("{gh:?}").contains("ghs_secret"));
}

#[tokio::test]
async fn a_compare_at_the_300_file_cap_falls_back() {
    let files: Vec<Value> = (0..300)
        .map(|i| json!({"filename": format!("docs/{i}.md"), "status": "added"}))
        .collect();
    let server = serve(repo_answers(Value::Array(files))).await;
    let gh = GitHubRepo::new(&server.url, "acme/shop", None).unwrap();

    let diff = gh.diff(BEFORE, COMMIT).await.unwrap();
    assert!(!diff.complete);
    assert_eq!(diff.paths.len(), 300);

    // The payload's lists are complete: they are used, and the plan says so.
    let plan = plan_job(
        &gh,
        &job(&["web/index.html"], None),
        &PlanSettings::new("acme"),
    )
    .await
    .unwrap();
    assert!(matches!(plan.changes, ChangeSource::Payload { .. }));
    assert_eq!(plan.images.len(), 1);
    assert_eq!(plan.images[0].name, "acme/web");

    // They are not: every image is built.
    let plan = plan_job(
        &gh,
        &job(&[], Some("commit_cap")),
        &PlanSettings::new("ghcr.io/acme"),
    )
    .await
    .unwrap();
    match &plan.changes {
        ChangeSource::All { reason } => assert!(reason.contains("truncated"), "{reason}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(plan.images.len(), 3);
}

#[tokio::test]
async fn a_truncated_tree_is_walked_level_by_level() {
    let server = serve(vec![
        ok(
            &format!("/git/trees/{COMMIT}?recursive=1"),
            json!({"sha": COMMIT, "truncated": true, "tree": [blob("README.md")]}),
        ),
        ok(
            &format!("/git/trees/{COMMIT}"),
            json!({"sha": COMMIT, "truncated": false, "tree": [
                blob("README.md"),
                {"path": "web", "mode": "040000", "type": "tree", "sha": WEB_TREE}
            ]}),
        ),
        ok(
            &format!("/git/trees/{WEB_TREE}"),
            json!({"sha": WEB_TREE, "truncated": false, "tree": [blob("Dockerfile")]}),
        ),
    ])
    .await;
    let gh = GitHubRepo::new(&server.url, "acme/shop", None).unwrap();
    assert_eq!(
        gh.tree(COMMIT).await.unwrap(),
        vec!["README.md", "web/Dockerfile"]
    );
}

#[tokio::test]
async fn rate_limits_and_refusals_are_typed() {
    let reset = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 120;
    let server = serve(vec![
        (
            format!("/api/v3/repos/acme/shop/git/trees/{COMMIT}?recursive=1"),
            403,
            vec![
                ("x-ratelimit-limit", "5000".into()),
                ("x-ratelimit-remaining", "0".into()),
                ("x-ratelimit-reset", reset.to_string()),
            ],
            json!({"message": "API rate limit exceeded for installation ID 1.", "documentation_url": "https://docs.github.com/rest/overview/resources-in-the-rest-api#rate-limiting"}),
        ),
        (
            format!("/api/v3/repos/acme/shop/commits/{COMMIT}"),
            429,
            vec![("retry-after", "60".into())],
            json!({"message": "You have exceeded a secondary rate limit."}),
        ),
        (
            "/api/v3/repos/acme/shop/tags?per_page=100&page=1".into(),
            401,
            vec![],
            json!({"message": "Bad credentials"}),
        ),
        (
            format!("/api/v3/repos/acme/shop/compare/{BEFORE}...{COMMIT}?per_page=100"),
            502,
            vec![],
            json!({"message": "Server Error"}),
        ),
    ])
    .await;
    let gh = GitHubRepo::new(&server.url, "acme/shop", None).unwrap();

    match gh.tree(COMMIT).await.unwrap_err() {
        SourceError::RateLimited {
            retry_after_secs: Some(s),
            message,
        } => {
            assert!((100..=120).contains(&s), "{s}");
            assert!(message.contains("API rate limit exceeded"));
        }
        other => panic!("{other:?}"),
    }
    let e = gh.resolve(COMMIT).await.unwrap_err();
    assert_eq!(
        e,
        SourceError::RateLimited {
            message: "GitHub: You have exceeded a secondary rate limit.".into(),
            retry_after_secs: Some(60)
        }
    );
    assert!(e.is_retryable());
    let e = gh.tags().await.unwrap_err();
    assert_eq!(e.code(), "access_denied");
    assert!(e.to_string().contains("Bad credentials"));
    let e = gh.diff(BEFORE, COMMIT).await.unwrap_err();
    assert_eq!(e.code(), "source_unavailable");
    // 404: a missing file is `None`, a missing commit is `not_found`.
    assert_eq!(gh.read_file(COMMIT, "nope/Dockerfile").await.unwrap(), None);
    let e = gh.resolve(BEFORE).await.unwrap_err();
    assert_eq!(e.code(), "not_found");
    // Values that would change the URL are refused before any request.
    assert_eq!(
        gh.read_file(COMMIT, "../x").await.unwrap_err().code(),
        "invalid_input"
    );
    assert_eq!(
        gh.tree("main?x=1").await.unwrap_err().code(),
        "invalid_input"
    );

    // A rate limit fails the plan with a retryable error.
    let e = plan_job(&gh, &job(&[], None), &PlanSettings::new("acme"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), "rate_limited");
    assert!(e.is_retryable());
}

#[tokio::test]
async fn tags_follow_pagination_and_paths_are_encoded() {
    let server = serve(vec![
        (
            "/api/v3/repos/acme/shop/tags?per_page=100&page=1".into(),
            200,
            vec![(
                "link",
                "<https://api.github.com/repositories/1/tags?per_page=100&page=2>; rel=\"next\", <https://api.github.com/repositories/1/tags?per_page=100&page=2>; rel=\"last\"".into(),
            )],
            json!([{"name": "v1.0.0", "commit": {"sha": COMMIT}}, {"name": "v1.1.0", "commit": {"sha": COMMIT}}]),
        ),
        (
            "/api/v3/repos/acme/shop/tags?per_page=100&page=2".into(),
            200,
            vec![],
            json!([{"name": "v2.0.0", "commit": {"sha": COMMIT}}]),
        ),
        ok(
            &format!("/contents/My%20App/Dockerfile?ref={COMMIT}"),
            contents("My App/Dockerfile", "FROM scratch\n"),
        ),
    ])
    .await;
    let gh = GitHubRepo::new(&server.url, "acme/shop", None).unwrap();
    assert_eq!(gh.tags().await.unwrap(), vec!["v1.0.0", "v1.1.0", "v2.0.0"]);
    assert_eq!(
        gh.read_file(COMMIT, "My App/Dockerfile")
            .await
            .unwrap()
            .as_deref(),
        Some("FROM scratch\n")
    );
    assert!(GitHubRepo::new("ftp://x", "acme/shop", None).is_err());
    assert!(GitHubRepo::new(&server.url, "acme/shop/x", None).is_err());
}
