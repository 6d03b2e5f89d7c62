//! The `slipway-notifier` binary under a local Lambda runtime API (the endpoints a Lambda
//! sandbox serves), with SNS and SQS on moto (SLIPWAY_TEST_MOTO_URL): a malformed event is
//! answered (not reported as an error), the process lives on, and the next real event is
//! published.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use serde_json::{Value, json};

#[derive(Clone, Default)]
struct Runtime {
    events: Arc<Mutex<Vec<String>>>,
    /// ("response" | "error", request id, body), in order.
    seen: Arc<Mutex<Vec<(String, String, String)>>>,
    asked: Arc<Mutex<usize>>,
}

async fn next(State(rt): State<Runtime>) -> (HeaderMap, String) {
    let n = {
        let mut asked = rt.asked.lock().unwrap();
        *asked += 1;
        *asked
    };
    let event = {
        let mut events = rt.events.lock().unwrap();
        (!events.is_empty()).then(|| events.remove(0))
    };
    let Some(event) = event else {
        // No more events: the process waits here until the test ends it.
        tokio::time::sleep(Duration::from_secs(3600)).await;
        unreachable!()
    };
    let h = slipway_testkit::lambda::invocation_headers(&format!("req-{n}"), "slipway-notifier");
    (h, event)
}

async fn response(State(rt): State<Runtime>, Path(id): Path<String>, body: String) -> StatusCode {
    rt.seen.lock().unwrap().push(("response".into(), id, body));
    StatusCode::ACCEPTED
}

async fn error(State(rt): State<Runtime>, Path(id): Path<String>, body: String) -> StatusCode {
    rt.seen.lock().unwrap().push(("error".into(), id, body));
    StatusCode::ACCEPTED
}

#[tokio::test]
async fn the_binary_acknowledges_a_malformed_event_and_goes_on_to_the_next() {
    let moto = slipway_testkit::moto::moto_url();
    let aws = slipway_testkit::moto::moto_config().await;
    let topic = slipway_testkit::moto::topic(&aws_sdk_sns::Client::new(&aws), "slipway-bin-").await;
    let jobs = slipway_testkit::moto::fifo_queue(&aws_sdk_sqs::Client::new(&aws), "jobs-bin-")
        .await
        .url;

    let failed = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/codebuild/failed.json"
    ))
    .unwrap();
    let rt = Runtime::default();
    *rt.events.lock().unwrap() = vec![
        json!({"detail-type": "CodeBuild Build State Change", "detail": {"build-status": 42}})
            .to_string(),
        failed,
    ];
    let app = Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route(
            "/2018-06-01/runtime/invocation/{id}/response",
            post(response),
        )
        .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
        .with_state(rt.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_slipway-notifier"))
        .env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", "slipway-notifier")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "test")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "test")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_ENDPOINT_URL", &moto)
        .env("SLIPWAY_TOPIC_ARN", &topic)
        .env("SLIPWAY_QUEUE_URL", &jobs)
        .env("SLIPWAY_CODEBUILD_REPORTS_STATUS", "true")
        .env("RUST_LOG", "info")
        .kill_on_drop(true)
        .spawn()
        .expect("the notifier binary starts");

    // Both events answered and the process back asking for a third.
    for _ in 0..300 {
        if *rt.asked.lock().unwrap() >= 3 {
            break;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the notifier exited: {status}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        child.try_wait().unwrap().is_none(),
        "the notifier is still running"
    );
    child.kill().await.unwrap();
    let seen = rt.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "{seen:?}");
    let (kind, id, body) = &seen[0];
    assert_eq!(
        (kind.as_str(), id.as_str()),
        ("response", "req-1"),
        "{body}"
    );
    let first: Value = serde_json::from_str(body).unwrap();
    assert_eq!(first["status"], "ignored");
    assert_eq!(first["code"], "event_status_unknown");
    let (kind, _, body) = &seen[1];
    assert_eq!(kind, "response", "{body}");
    let second: Value = serde_json::from_str(body).unwrap();
    assert_eq!(second["publish"], "published");
    assert_eq!(second["status"], "FAILED");
    assert_eq!(second["commit_status"], "not_used");
}
