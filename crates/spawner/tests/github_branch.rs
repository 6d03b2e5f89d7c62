//! A scheduled rebuild resolves to the head of the repository's default branch through the
//! GitHub API (a local HTTP server stands in for api.github.com).

use axum::Json;
use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use secrecy::SecretString;
use serde_json::json;
use slipway_spawner::{GitHubPlanner, Planner};

const HEAD: &str = "8f3c2a1b9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a";

fn authorized(h: &HeaderMap) -> bool {
    h.get("authorization").and_then(|v| v.to_str().ok()) == Some("Bearer test-token")
}

async fn server() -> String {
    let app = Router::new()
        .route(
            "/repos/acme/site",
            get(|h: HeaderMap| async move {
                if !authorized(&h) {
                    return (StatusCode::UNAUTHORIZED, Json(json!({})));
                }
                (StatusCode::OK, Json(json!({"default_branch": "trunk"})))
            }),
        )
        .route(
            "/repos/acme/site/commits/{*rev}",
            get(
                |axum::extract::Path(rev): axum::extract::Path<String>| async move {
                    match rev.as_str() {
                        "trunk" => (StatusCode::OK, Json(json!({"sha": HEAD}))),
                        _ => (StatusCode::NOT_FOUND, Json(json!({}))),
                    }
                },
            ),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

#[tokio::test]
async fn the_default_branch_and_its_head_come_from_github() {
    let url = server().await;
    let planner = GitHubPlanner::new(&url, "acme", Some(SecretString::from("test-token"))).unwrap();
    let (branch, head) = planner
        .branch_head("acme/site", "https://github.com/acme/site.git", None)
        .await
        .unwrap();
    assert_eq!((branch.as_str(), head.as_str()), ("trunk", HEAD));

    // A branch the repository does not have is not retried forever.
    let err = planner
        .branch_head(
            "acme/site",
            "https://github.com/acme/site.git",
            Some("gone"),
        )
        .await
        .unwrap_err();
    assert!(!err.is_retryable(), "{err}");

    // Without the token GitHub refuses; an unknown repository is a plain not-found.
    let anonymous = GitHubPlanner::new(&url, "acme", None).unwrap();
    let err = anonymous
        .branch_head("acme/site", "https://github.com/acme/site.git", None)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "access_denied");
    assert!(!err.is_retryable());
    let err = planner
        .branch_head("acme/nope", "https://github.com/acme/nope.git", None)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "not_found");
}
