//! The `slipway-notifier` binary under a local Lambda runtime API (the endpoints a Lambda
//! sandbox serves), with SNS and SQS on moto (SLIPWAY_TEST_MOTO_URL): a malformed event is
//! answered (not reported as an error), the process lives on, and the next real event is
//! published.

use std::time::Duration;

use serde_json::{Value, json};
use slipway_testkit::lambda::{RuntimeApi, Seen};

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
    let api = RuntimeApi::start("slipway-notifier", Duration::from_secs(30)).await;
    let malformed = api.invoke(
        json!({"detail-type": "CodeBuild Build State Change", "detail": {"build-status": 42}})
            .to_string(),
    );
    let failed = api.invoke(failed);

    let mut child = api
        .command(env!("CARGO_BIN_EXE_slipway-notifier"))
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_ENDPOINT_URL", &moto)
        .env("SLIPWAY_TOPIC_ARN", &topic)
        .env("SLIPWAY_QUEUE_URL", &jobs)
        .env("SLIPWAY_CODEBUILD_REPORTS_STATUS", "true")
        .env("RUST_LOG", "info")
        .spawn()
        .expect("the notifier binary starts");

    // Both events answered and the process back asking for a third.
    for _ in 0..300 {
        if api.asked() >= 3 {
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
    // Everything the process posted: two answers, no error.
    let seen: Vec<Seen> = api
        .seen()
        .into_iter()
        .filter(|s| !matches!(s, Seen::Next { .. }))
        .collect();
    assert_eq!(seen.len(), 2, "{seen:?}");
    let Seen::Response { id, body, .. } = &seen[0] else {
        panic!("the malformed event is answered, not reported as an error: {seen:?}");
    };
    assert_eq!(id, &malformed.id, "{body}");
    let first: Value = serde_json::from_str(body).unwrap();
    assert_eq!(first["status"], "ignored");
    assert_eq!(first["code"], "event_status_unknown");
    let Seen::Response { id, body, .. } = &seen[1] else {
        panic!("the real event is answered: {seen:?}");
    };
    assert_eq!(id, &failed.id, "{body}");
    let second: Value = serde_json::from_str(body).unwrap();
    assert_eq!(second["publish"], "published");
    assert_eq!(second["status"], "FAILED");
    assert_eq!(second["commit_status"], "not_used");
}
