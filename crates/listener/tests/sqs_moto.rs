//! The listener against real SQS and SSM APIs (the moto server from tests/services.sh).

mod common;

use aws_sdk_sqs::types::MessageSystemAttributeName;
use common::*;
use secrecy::ExposeSecret;
use slipway_aws::sqs::SqsJobQueue;
use slipway_core::Job;
use slipway_core::webhook::WebhookSecrets;
use slipway_testkit::moto::drain;

async fn fifo_queue(sqs: &aws_sdk_sqs::Client) -> String {
    slipway_testkit::moto::fifo_queue(sqs, "slipway-jobs-")
        .await
        .url
}

#[tokio::test]
async fn signed_push_puts_exactly_one_job_on_the_fifo_queue() {
    let aws = slipway_testkit::moto::moto_config().await;
    let sqs = aws_sdk_sqs::Client::new(&aws);
    let url = fifo_queue(&sqs).await;
    let queue = SqsJobQueue::new(sqs.clone(), &url);
    let body = fixture("push-branch.json");

    let first = call(&config(), &queue, github_request("push", &body)).await;
    assert_eq!(
        (first.status, first.body["status"].as_str()),
        (202, Some("queued"))
    );
    // GitHub redelivers the same delivery: SQS drops it by its deduplication id.
    let again = call(&config(), &queue, github_request("push", &body)).await;
    assert_eq!(again.status, 202);

    let msgs = drain(&sqs, &url, 0).await;
    assert_eq!(msgs.len(), 1, "one delivery, one message");
    let m = &msgs[0];
    let attrs = m.attributes().unwrap();
    assert_eq!(
        attrs
            .get(&MessageSystemAttributeName::MessageDeduplicationId)
            .map(String::as_str),
        Some(format!("push-{DELIVERY}").as_str())
    );
    assert_eq!(
        attrs
            .get(&MessageSystemAttributeName::MessageGroupId)
            .map(String::as_str),
        Some("codertocat/hello-world")
    );
    let job: Job = serde_json::from_str(m.body().unwrap()).unwrap();
    assert_eq!(job.id, format!("push-{DELIVERY}"));
    assert_eq!(job.commit, "f95f852bd8fca8fcc58a9a2d6c842781e32a215e");
    assert_eq!(job.changed_paths.len(), 6);
}

#[tokio::test]
async fn bad_signature_puts_nothing_on_the_queue() {
    let aws = slipway_testkit::moto::moto_config().await;
    let sqs = aws_sdk_sqs::Client::new(&aws);
    let url = fifo_queue(&sqs).await;
    let queue = SqsJobQueue::new(sqs.clone(), &url);
    let body = fixture("push-branch.json");
    let req = request(
        "POST",
        &[
            ("content-type", "application/json"),
            ("x-github-event", "push"),
            ("x-github-delivery", DELIVERY),
            (
                "x-hub-signature-256",
                &slipway_core::webhook::sign(b"not-the-secret-at-all", &body),
            ),
        ],
        &body,
    );
    let a = call(&config(), &queue, req).await;
    assert_eq!(
        (a.status, a.body["error"].as_str()),
        (401, Some("signature_mismatch"))
    );
    assert!(drain(&sqs, &url, 0).await.is_empty());
}

#[tokio::test]
async fn a_missing_queue_is_503_not_accepted() {
    let aws = slipway_testkit::moto::moto_config().await;
    let sqs = aws_sdk_sqs::Client::new(&aws);
    let queue = SqsJobQueue::new(
        sqs,
        format!(
            "{}/123456789012/no-such-queue.fifo",
            slipway_testkit::moto::moto_url()
        ),
    );
    let a = call(
        &config(),
        &queue,
        github_request("push", &fixture("push-branch.json")),
    )
    .await;
    assert_eq!(
        (a.status, a.body["error"].as_str()),
        (503, Some("queue_unavailable"))
    );
}

#[tokio::test]
async fn webhook_secrets_come_from_a_secure_string_parameter() {
    let aws = slipway_testkit::moto::moto_config().await;
    let ssm = aws_sdk_ssm::Client::new(&aws);
    let name = format!(
        "/slipway/test/{}/webhook-secret",
        uuid::Uuid::new_v4().simple()
    );
    ssm.put_parameter()
        .name(&name)
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .value(format!("{SECRET}\nthe-next-secret-for-rotation"))
        .send()
        .await
        .unwrap();
    let raw = slipway_aws::ssm::get_parameter(&ssm, &name).await.unwrap();
    let secrets = WebhookSecrets::parse(raw.expose_secret()).unwrap();
    assert_eq!(secrets.len(), 2);

    let err = slipway_aws::ssm::get_parameter(&ssm, "/slipway/test/missing")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("/slipway/test/missing"), "{err}");
}

/// What the listener's metric lines counted: (answer, count) in order, each line checked as
/// EMF of the `Slipway` namespace.
fn answers(logs: &slipway_testkit::logs::LogCapture) -> Vec<(String, f64)> {
    logs.metric_lines()
        .iter()
        .map(|l| {
            assert_eq!(
                l["_aws"]["CloudWatchMetrics"][0]["Namespace"],
                slipway_core::metrics::NAMESPACE
            );
            assert_eq!(
                l["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
                serde_json::json!([["Stack", "Answer"]])
            );
            assert_eq!(l["Stack"], slipway_aws::metrics::DEFAULT_STACK_NAME);
            (
                l["Answer"].as_str().unwrap().to_string(),
                l["Webhooks"].as_f64().unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
async fn each_answer_writes_one_metric_line_with_the_answer() {
    let aws = slipway_testkit::moto::moto_config().await;
    let sqs = aws_sdk_sqs::Client::new(&aws);
    let url = fifo_queue(&sqs).await;
    let queue = SqsJobQueue::new(sqs.clone(), &url);
    let body = fixture("push-branch.json");
    let (logs, _guard) =
        slipway_testkit::logs::LogCapture::start(|w| slipway_aws::logging::subscriber(w, "info"));

    let before = slipway_aws::metrics::now_ms();
    call(&config(), &queue, github_request("push", &body)).await;
    call(&config(), &queue, github_request("projects_v2_item", &body)).await;
    let forged = request(
        "POST",
        &[
            ("content-type", "application/json"),
            ("x-github-event", "push"),
            ("x-github-delivery", DELIVERY),
            ("x-hub-signature-256", &format!("sha256={}", "0".repeat(64))),
        ],
        &body,
    );
    call(&config(), &queue, forged).await;
    call(
        &config(),
        &queue,
        github_request("ping", b"{\"zen\":\"Keep it logically awesome.\"}"),
    )
    .await;

    assert_eq!(
        answers(&logs),
        [
            ("queued".to_string(), 1.0),
            ("ignored".to_string(), 1.0),
            ("signature_mismatch".to_string(), 1.0),
            ("pong".to_string(), 1.0),
        ]
    );
    for l in logs.metric_lines() {
        let ts = l["_aws"]["Timestamp"].as_i64().unwrap();
        assert!(
            (before..=slipway_aws::metrics::now_ms()).contains(&ts),
            "{ts}"
        );
    }
    // Nothing else looks like a metric: the decision lines stay ordinary log lines.
    assert!(logs.lines().len() > 4, "{}", logs.text());
}
