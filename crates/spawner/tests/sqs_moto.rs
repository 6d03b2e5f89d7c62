//! The spawner against a real SQS API (the moto server of tests/services.sh): it consumes real
//! messages of a FIFO jobs queue, reports the batch item failures, and queues the narrowed job for
//! the image that failed to start, which a second invocation then builds. CodeBuild is mocked
//! (moto's CodeBuild is a stub).

mod common;

use std::sync::{Arc, Mutex};

use aws_lambda_events::event::sqs::SqsEvent;
use aws_sdk_codebuild::Client;
use aws_sdk_codebuild::config::retry::RetryConfig;
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use aws_smithy_mocks::{MockResponse, RuleMode, mock, mock_client};
use common::*;
use serde_json::json;
use slipway_aws::codebuild::CodeBuildStarter;
use slipway_aws::sqs::{ATTEMPT_ATTRIBUTE, SqsJobQueue};
use slipway_spawner::Spawner;

/// What the Lambda event source mapping would hand the function for these messages.
fn lambda_event(messages: &[aws_sdk_sqs::types::Message], queue_arn: &str) -> SqsEvent {
    let records: Vec<_> = messages
        .iter()
        .map(|m| slipway_testkit::lambda::sqs_record(m, queue_arn))
        .collect();
    serde_json::from_value(json!({ "Records": records })).unwrap()
}

async fn receive(sqs: &aws_sdk_sqs::Client, url: &str) -> Vec<aws_sdk_sqs::types::Message> {
    sqs.receive_message()
        .queue_url(url)
        .max_number_of_messages(10)
        .message_system_attribute_names(MessageSystemAttributeName::All)
        .message_attribute_names("All")
        .wait_time_seconds(0)
        .send()
        .await
        .expect("receive from moto")
        .messages
        .unwrap_or_default()
}

fn repository_of(req: &aws_sdk_codebuild::operation::start_build::StartBuildInput) -> String {
    req.environment_variables_override()
        .iter()
        .find(|v| v.name() == "SLIPWAY_REPOSITORY")
        .map(|v| v.value().to_string())
        .unwrap_or_default()
}

#[tokio::test]
async fn consumes_real_messages_and_reports_batch_item_failures() {
    let aws = slipway_testkit::moto::moto_config().await;
    let sqs = aws_sdk_sqs::Client::new(&aws);
    let slipway_testkit::moto::Queue { url, arn } = slipway_testkit::moto::queue(
        &sqs,
        "slipway-spawner-.fifo",
        &[
            (QueueAttributeName::FifoQueue, "true"),
            (QueueAttributeName::VisibilityTimeout, "60"),
        ],
    )
    .await;

    // Two jobs, two repositories (two message groups): acme/site half starts, acme/other
    // cannot start anything.
    let site = job();
    let mut other = job();
    other.id = "push-other-1".into();
    other.delivery_id = "other-1".into();
    other.repository = "acme/other".into();
    for j in [&site, &other] {
        sqs.send_message()
            .queue_url(&url)
            .message_body(serde_json::to_string(j).unwrap())
            .message_group_id(j.group_id())
            .message_deduplication_id(&j.id)
            .send()
            .await
            .unwrap();
    }
    let batch = receive(&sqs, &url).await;
    assert_eq!(batch.len(), 2, "both jobs are on the queue");
    let other_id = batch
        .iter()
        .find(|m| m.body().unwrap().contains("acme/other"))
        .and_then(|m| m.message_id())
        .unwrap()
        .to_string();

    let site_web = mock!(Client::start_build)
        .match_requests(|r| repository_of(r) == "acme/site" && image_of(r) == "acme/web")
        .then_output(|| started("site-web"));
    let throttled = mock!(Client::start_build)
        .match_requests(|r| !(repository_of(r) == "acme/site" && image_of(r) == "acme/web"))
        .then_error(|| codebuild_error("ThrottlingException"));
    let spawner = Spawner {
        planner: FixedPlanner::new(Ok(plan())),
        builds: CodeBuildStarter::new(mock_client!(
            aws_sdk_codebuild,
            RuleMode::MatchAny,
            &[&site_web, &throttled],
            |c| c.retry_config(RetryConfig::disabled())
        )),
        queue: SqsJobQueue::new(sqs.clone(), &url),
        settings: settings(),
    };
    let (logs, guard) =
        slipway_testkit::logs::LogCapture::start(|w| slipway_aws::logging::subscriber(w, "info"));
    let sent_before = slipway_aws::metrics::now_ms();
    let response = spawner.handle(lambda_event(&batch, &arn)).await;
    drop(guard);
    // One metric line per planned job (EMF, checked by `metric_lines`): acme/site started one
    // build and failed to start one, acme/other failed to start both; each waited on the real
    // queue from its SentTimestamp, a few seconds at most here.
    let mut counted: Vec<(f64, f64)> = logs
        .metric_lines()
        .iter()
        .map(|l| {
            assert_eq!(
                (&l["JobsPlanned"], &l["Trigger"]),
                (&json!(1.0), &json!("push"))
            );
            let wait = l["QueueWait"].as_f64().expect("a queued job has a wait");
            assert!((0.0..60.0).contains(&wait), "{l}");
            let ts = l["_aws"]["Timestamp"].as_i64().unwrap();
            assert!(ts >= sent_before, "{l}");
            (
                l["BuildsStarted"].as_f64().unwrap(),
                l["BuildsStartFailed"].as_f64().unwrap(),
            )
        })
        .collect();
    counted.sort_by(|a, b| a.partial_cmp(b).unwrap());
    assert_eq!(counted, [(0.0, 2.0), (1.0, 1.0)], "{}", logs.text());
    let failed: Vec<&str> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(
        failed,
        [other_id.as_str()],
        "only acme/other is retried whole"
    );
    assert_eq!(site_web.num_calls(), 1);

    // As the event source mapping does: the messages not reported are deleted.
    for m in &batch {
        if m.message_id() != Some(other_id.as_str()) {
            sqs.delete_message()
                .queue_url(&url)
                .receipt_handle(m.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
        }
    }

    // The queue now holds the acme/site job narrowed to the image that failed, attempt 2
    // (acme/other stays invisible until its visibility timeout).
    let again = receive(&sqs, &url).await;
    assert_eq!(again.len(), 1, "{again:?}");
    let narrowed: slipway_core::Job = serde_json::from_str(again[0].body().unwrap()).unwrap();
    assert_eq!(narrowed.repository, "acme/site");
    assert_eq!(narrowed.images, vec!["ghcr.io/acme/api".to_string()]);
    assert_eq!(narrowed.commit, COMMIT);
    let attempt = again[0]
        .message_attributes()
        .and_then(|a| a.get(ATTEMPT_ATTRIBUTE))
        .and_then(|v| v.string_value())
        .map(str::to_string);
    assert_eq!(attempt.as_deref(), Some("2"));
    assert_eq!(
        again[0]
            .attributes()
            .and_then(|a| a.get(&MessageSystemAttributeName::MessageGroupId))
            .map(String::as_str),
        Some("acme/site")
    );

    // CodeBuild recovered: the narrowed job starts only the image that had failed.
    let captured: Captured = Arc::new(Mutex::new(Vec::new()));
    let c = captured.clone();
    let ok = mock!(Client::start_build).then_compute_response(move |req| {
        c.lock().unwrap().push(req.clone());
        MockResponse::Output(started("site-api"))
    });
    let spawner = Spawner {
        planner: FixedPlanner::new(Ok(plan())),
        builds: CodeBuildStarter::new(mock_client!(
            aws_sdk_codebuild,
            RuleMode::MatchAny,
            &[&ok],
            |c| c.retry_config(RetryConfig::disabled())
        )),
        queue: SqsJobQueue::new(sqs.clone(), &url),
        settings: settings(),
    };
    let response = spawner.handle(lambda_event(&again, &arn)).await;
    assert!(response.batch_item_failures.is_empty());
    let reqs = captured.lock().unwrap();
    assert_eq!(reqs.len(), 1);
    assert_eq!(image_of(&reqs[0]), "ghcr.io/acme/api");
}
