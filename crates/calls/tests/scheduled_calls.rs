//! Scheduled calls against real HTTP servers on 127.0.0.1: a slow target (timeout), a failing
//! one (500), good ones, misconfigured ones; every target that can be attempted is, each gets its
//! result, and the server sees no more concurrent requests than the bound.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::routing::any;
use slipway_calls::{FileSecrets, Outcome, SendOptions, client, send_all};
use slipway_core::calls::parse_targets;

/// One `good-*` request as the server saw it: name, method, authorization, `X-Slipway-Test`, body.
type Request = (String, Method, Option<String>, Option<String>, String);

/// A target's result in short: name, outcome, attempts, last status, error code.
type Short<'a> = (&'a str, Outcome, u32, Option<u16>, Option<&'a str>);

#[derive(Default)]
struct Seen {
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    hits: Mutex<BTreeMap<String, usize>>,
    /// For each `good-*` request: method, authorization, a custom header, body.
    requests: Mutex<Vec<Request>>,
}

async fn handle(
    State(seen): State<Arc<Seen>>,
    Path(name): Path<String>,
    method: Method,
    headers: HeaderMap,
    body: String,
) -> StatusCode {
    let now = seen.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    seen.max_in_flight.fetch_max(now, Ordering::SeqCst);
    *seen.hits.lock().unwrap().entry(name.clone()).or_default() += 1;
    let status = if name == "fail" {
        tokio::time::sleep(Duration::from_millis(20)).await;
        StatusCode::INTERNAL_SERVER_ERROR
    } else if name == "gone" {
        StatusCode::NOT_FOUND
    } else {
        // Long enough that requests started together overlap.
        tokio::time::sleep(Duration::from_millis(250)).await;
        let header = |h: &str| headers.get(h).map(|v| v.to_str().unwrap().to_string());
        seen.requests.lock().unwrap().push((
            name,
            method,
            header("authorization"),
            header("x-slipway-test"),
            body,
        ));
        StatusCode::ACCEPTED
    };
    seen.in_flight.fetch_sub(1, Ordering::SeqCst);
    status
}

/// A server that accepts connections and never answers: the slow target. Counts connections
/// (one per attempt: a timed-out connection is not reused). Kept apart from the counting server
/// because a handler whose client gave up may still be running there.
async fn silent_server() -> (String, Arc<AtomicUsize>) {
    let accepted = Arc::new(AtomicUsize::new(0));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let count = accepted.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            held.push(socket);
        }
    });
    (format!("http://{addr}"), accepted)
}

async fn server() -> (String, Arc<Seen>) {
    let seen = Arc::new(Seen::default());
    let app = Router::new()
        .route("/hooks/{name}", any(handle))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), seen)
}

fn options(concurrency: usize) -> SendOptions {
    SendOptions {
        concurrency,
        backoff_base: Duration::from_millis(20),
        backoff_max: Duration::from_millis(100),
    }
}

#[tokio::test]
async fn every_target_is_attempted_with_its_own_result_and_bounded_concurrency() {
    let (base, seen) = server().await;
    let (silent, slow_attempts) = silent_server().await;
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "s3cr3t-token\n").unwrap();
    let token = token.to_str().unwrap();
    let missing = dir.path().join("missing").to_str().unwrap().to_string();

    let config = serde_json::json!([
        {"name": "good-1", "url": format!("{base}/hooks/good-1"), "body": "{\"a\":1}",
         "headers": {"X-Slipway-Test": "one", "Content-Type": "application/json"},
         "auth": {"scheme": "bearer", "file": token}, "expected_status": 202},
        {"name": "good-2", "url": format!("{base}/hooks/good-2"), "method": "PUT",
         "auth": {"scheme": "basic", "username": "ci", "file": token}},
        {"name": "good-3", "url": format!("{base}/hooks/good-3"), "method": "GET"},
        {"name": "slow", "url": format!("{silent}/hooks/slow"), "timeout_seconds": 0.3, "retries": 1},
        {"name": "fail", "url": format!("{base}/hooks/fail"), "retries": 2},
        {"name": "broken", "url": "ftp://127.0.0.1/hooks/broken"},
        {"name": "gone", "url": format!("{base}/hooks/gone"), "retries": 3},
        {"name": "nosecret", "url": format!("{base}/hooks/nosecret"),
         "auth": {"scheme": "bearer", "file": missing}},
        {"name": "good-4", "url": format!("{base}/hooks/good-4")},
        {"name": "good-5", "url": format!("{base}/hooks/good-5")},
        {"name": "good-6", "url": format!("{base}/hooks/good-6"), "expected_status": [200]},
    ]);
    let targets = parse_targets(&config.to_string()).unwrap();
    let report = send_all(&client().unwrap(), targets, &FileSecrets, &options(3)).await;

    let summary: Vec<Short> = report
        .results
        .iter()
        .map(|r| {
            (
                r.name.as_str(),
                r.outcome,
                r.attempts,
                r.status,
                r.error_code,
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("good-1", Outcome::Delivered, 1, Some(202), None),
            ("good-2", Outcome::Delivered, 1, Some(202), None),
            ("good-3", Outcome::Delivered, 1, Some(202), None),
            ("slow", Outcome::Failed, 2, None, Some("timeout")),
            (
                "fail",
                Outcome::Failed,
                3,
                Some(500),
                Some("unexpected_status")
            ),
            ("broken", Outcome::Invalid, 0, None, Some("invalid_target")),
            // A 404 is final: not retried.
            (
                "gone",
                Outcome::Failed,
                1,
                Some(404),
                Some("unexpected_status")
            ),
            (
                "nosecret",
                Outcome::SecretUnavailable,
                0,
                None,
                Some("secret_unavailable")
            ),
            ("good-4", Outcome::Delivered, 1, Some(202), None),
            ("good-5", Outcome::Delivered, 1, Some(202), None),
            // Delivered, but not with the status it expects.
            (
                "good-6",
                Outcome::Failed,
                1,
                Some(202),
                Some("unexpected_status")
            ),
        ]
    );
    assert_eq!((report.delivered, report.failed, report.invalid), (5, 5, 1));
    assert!(!report.all_delivered());
    let broken = report.get("broken").unwrap().error.clone().unwrap();
    assert!(
        broken.contains("broken") && broken.contains("url"),
        "{broken}"
    );

    // The server saw exactly the attempts reported, nothing for targets that were not sendable.
    let hits = seen.hits.lock().unwrap().clone();
    assert_eq!(slow_attempts.load(Ordering::SeqCst), 2);
    assert_eq!(hits.get("fail"), Some(&3));
    assert_eq!(hits.get("gone"), Some(&1));
    assert_eq!(hits.get("nosecret"), None);
    assert_eq!(hits.get("broken"), None);

    // Never more than three requests at once, and three did overlap.
    assert_eq!(seen.max_in_flight.load(Ordering::SeqCst), 3);

    // Method, headers, body and auth as configured.
    let mut requests = seen.requests.lock().unwrap().clone();
    requests.sort_by(|a, b| a.0.cmp(&b.0));
    let (_, m, auth, custom, body) = &requests[0];
    assert_eq!(
        (m, auth.as_deref(), custom.as_deref(), body.as_str()),
        (
            &Method::POST,
            Some("Bearer s3cr3t-token"),
            Some("one"),
            "{\"a\":1}"
        )
    );
    let (_, m, auth, _, _) = &requests[1];
    // base64("ci:s3cr3t-token")
    assert_eq!(
        (m, auth.as_deref()),
        (&Method::PUT, Some("Basic Y2k6czNjcjN0LXRva2Vu"))
    );
    assert_eq!(requests[2].1, Method::GET);

    // The report carries no secret.
    let json = serde_json::to_string(&report).unwrap();
    assert!(!json.contains("s3cr3t"), "{json}");
}

#[tokio::test]
async fn a_concurrency_of_one_sends_one_at_a_time() {
    let (base, seen) = server().await;
    let config: Vec<_> = (1..=4)
        .map(|i| serde_json::json!({"name": format!("good-{i}"), "url": format!("{base}/hooks/good-{i}")}))
        .collect();
    let targets = parse_targets(&serde_json::Value::from(config).to_string()).unwrap();
    let report = send_all(&client().unwrap(), targets, &FileSecrets, &options(1)).await;
    assert!(report.all_delivered());
    assert_eq!(seen.max_in_flight.load(Ordering::SeqCst), 1);
    assert_eq!(seen.requests.lock().unwrap().len(), 4);
}

#[tokio::test]
async fn an_unreachable_target_is_retried_then_reported() {
    // A port nothing listens on: bind, learn the port, close.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let targets = parse_targets(
        &serde_json::json!([{"name": "down", "url": format!("http://127.0.0.1:{port}/x"), "retries": 2}])
            .to_string(),
    )
    .unwrap();
    let report = send_all(&client().unwrap(), targets, &FileSecrets, &options(2)).await;
    let r = report.get("down").unwrap();
    assert_eq!(
        (r.outcome, r.attempts, r.error_code),
        (Outcome::Failed, 3, Some("connect"))
    );
}
