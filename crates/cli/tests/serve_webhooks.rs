//! Webhook targets of `slipway serve`: every finished build's notification (its JSON form) is
//! POSTed to each `[[webhook]]`; a failing target is retried and reported, and never holds up
//! the builds that follow.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::Value;
use slipway_testkit::git::{commit_all, init};
use slipway_testkit::registry::{busybox_dockerfile, docker, registry};
use slipway_testkit::serve_setup;
use slipway_testkit::unique;

#[derive(Default)]
struct Seen {
    good: Vec<(HeaderMap, String)>,
    bad: usize,
}

/// A webhook receiver on 127.0.0.1: `/good` records and answers 200, `/bad` answers 500 after
/// `bad_delay`.
fn receiver(bad_delay: Duration) -> (u16, Arc<Mutex<Seen>>) {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let (g, b) = (seen.clone(), seen.clone());
    let app = axum::Router::new()
        .route(
            "/good",
            post(move |h: HeaderMap, body: String| async move {
                g.lock().unwrap().good.push((h, body));
                StatusCode::OK
            }),
        )
        .route(
            "/bad",
            post(move || async move {
                b.lock().unwrap().bad += 1;
                tokio::time::sleep(bad_delay).await;
                StatusCode::INTERNAL_SERVER_ERROR
            }),
        );
    let port = slipway_testkit::stand_in::serve(app);
    (port, seen)
}

#[test]
fn webhook_targets_get_the_notification_and_a_failing_one_is_retried_without_blocking_builds() {
    let r = registry();
    let tmp = tempfile::tempdir().unwrap();
    let ns_path = unique("hooks");
    let namespace = format!("{}/{ns_path}", r.host);
    let (one, two) = (format!("{namespace}/one"), format!("{namespace}/two"));

    // Two independent images; one build at a time, so `two` starts after `one` is notified.
    let repo = tmp.path().join("site");
    init(&repo);
    for ctx in ["one", "two"] {
        r.busybox_context(&repo, ctx, &busybox_dockerfile(0, ""));
    }
    let c1 = commit_all(&repo, "two images");

    // The failing target answers 500 after 1 s: 3 attempts plus backoff hold its notification
    // for about 4 s.
    let (port, seen) = receiver(Duration::from_secs(1));
    let token = tmp.path().join("hook-token");
    std::fs::write(&token, "hook-token-0123456789\n").unwrap();
    let signing = tmp.path().join("hook-signing");
    std::fs::write(&signing, "hook-signing-secret-abcdef\n").unwrap();
    let extra = format!(
        r#"concurrency = 1
[[webhook]]
name = "good"
url = "http://127.0.0.1:{port}/good"
headers = {{ "X-Team" = "platform" }}
auth = {{ scheme = "bearer", file = "{}" }}
secret_file = "{}"

[[webhook]]
name = "bad"
url = "http://127.0.0.1:{port}/bad"
retries = 2
timeout_seconds = 5
"#,
        token.display(),
        signing.display()
    );
    let serve = serve_setup!(&r, tmp.path(), &ns_path, &extra);
    let server = serve.start(1);
    server.push(&repo, None, &c1, "hooks-1");
    let builds = server.wait_settled(2, Duration::from_secs(240));
    for b in &builds {
        assert_eq!(b["state"], "succeeded", "{b:#}\n{}", server.log());
    }

    // The good target: one notification per build, the JSON form with the exact subject,
    // status, image and tags, with the configured header and the bearer token.
    let t = std::time::Instant::now();
    while seen.lock().unwrap().good.len() < 2 {
        assert!(t.elapsed() < Duration::from_secs(60), "{}", server.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    let short = format!("sha-{}", &c1[..7]);
    let s = seen.lock().unwrap();
    assert_eq!(s.good.len(), 2);
    let mut images = Vec::new();
    for (headers, body) in &s.good {
        // Signed like GitHub signs its webhooks, with the secret file's content.
        assert_eq!(
            headers["x-slipway-signature-256"],
            slipway_core::webhook::sign(b"hook-signing-secret-abcdef", body.as_bytes()).as_str()
        );
        let n: Value = serde_json::from_str(body).expect("a JSON body");
        let image = n["image"].as_str().unwrap().to_string();
        assert_eq!(n["subject"], format!("✔ {image}:main built"), "{n:#}");
        assert_eq!(n["status"], "SUCCEEDED");
        assert_eq!(n["state"], "succeeded");
        assert_eq!(n["commit"], c1.as_str());
        assert_eq!(n["ref"], "refs/heads/main");
        assert_eq!(
            n["tags"],
            serde_json::json!(["main", "latest", short.as_str()]),
            "{n:#}"
        );
        let build = builds
            .iter()
            .find(|b| b["image"] == image.as_str())
            .unwrap();
        assert_eq!(n["build_id"], build["id"].to_string().as_str());
        assert_eq!(n["digest"], build["digest"], "{n:#}");
        assert_eq!(headers["x-team"], "platform");
        assert_eq!(headers["authorization"], "Bearer hook-token-0123456789");
        assert_eq!(headers["content-type"], "application/json");
        images.push(image);
    }
    images.sort();
    assert_eq!(images, [one.clone(), two.clone()]);
    drop(s);

    // The failing target: tried 3 times for each build, reported in the log.
    let t = std::time::Instant::now();
    while seen.lock().unwrap().bad < 6
        || server.log().matches("notification not published").count() < 2
    {
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "bad target hit {} times\n{}",
            seen.lock().unwrap().bad,
            server.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        seen.lock().unwrap().bad,
        6,
        "1 attempt + 2 retries per build"
    );
    let log = server.log();
    assert_eq!(
        log.matches("notification not published").count(),
        2,
        "{log}"
    );
    assert!(log.contains("webhook_failed"), "{log}");
    assert!(
        !log.contains("hook-signing-secret"),
        "the signing secret leaked: {log}"
    );
    assert!(
        !log.contains("hook-token-0123456789"),
        "the token leaked: {log}"
    );

    // Not blocking: the second build started well before the first one's notification gave up.
    let first = builds.iter().min_by_key(|b| b["id"].as_i64()).unwrap();
    let second = builds.iter().max_by_key(|b| b["id"].as_i64()).unwrap();
    let gap = second["started_ms"].as_i64().unwrap() - first["finished_ms"].as_i64().unwrap();
    assert!(
        gap < 3000,
        "the second build waited {gap} ms for the first one's notification"
    );

    // Standard output carries the same notifications, one JSON line per build.
    let events = server.events();
    assert_eq!(events.len(), 2, "{events:#?}");
    assert!(events.iter().all(|e| e["status"] == "SUCCEEDED"));
    for i in [one, two] {
        for tag in ["main", "latest", short.as_str()] {
            let _ = docker(&["rmi", "--force", &format!("{i}:{tag}")], None);
        }
    }
}
