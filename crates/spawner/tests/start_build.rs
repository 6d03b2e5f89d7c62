//! The spawner's StartBuild requests, asserted field by field with aws-smithy-mocks, and its
//! failure handling: throttling retried with backoff, a partial failure retried only for the
//! image that failed, plan errors reported and not retried.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_lambda_events::event::sqs::SqsEvent;
use aws_sdk_codebuild::Client;
use aws_sdk_codebuild::config::retry::RetryConfig;
use aws_sdk_codebuild::types::EnvironmentVariableType;
use aws_smithy_mocks::{MockResponse, RuleMode, mock, mock_client};
use common::*;
use serde_json::json;
use slipway_aws::codebuild::CodeBuildStarter;
use slipway_core::build_env::idempotency_token;
use slipway_core::plan::{PlanError, SourceError};
use slipway_spawner::{BUILDSPEC, Outcome, Spawner};

fn spawner(
    client: Client,
    planner: FixedPlanner,
) -> Spawner<FixedPlanner, CodeBuildStarter, RecordingQueue> {
    Spawner {
        planner,
        builds: CodeBuildStarter::new(client),
        queue: RecordingQueue::default(),
        settings: settings(),
    }
}

/// A client whose SDK retries are off, as in `run`: every attempt seen is the spawner's.
macro_rules! client {
    ($mode:expr, $rules:expr) => {
        mock_client!(aws_sdk_codebuild, $mode, $rules, |c| c
            .retry_config(RetryConfig::disabled()))
    };
}

fn sqs_event(bodies: &[(&str, String)], fifo: bool) -> SqsEvent {
    let arn = if fifo {
        "arn:aws:sqs:us-east-1:123456789012:slipway-jobs.fifo"
    } else {
        "arn:aws:sqs:us-east-1:123456789012:slipway-jobs"
    };
    let records: Vec<_> = bodies
        .iter()
        .map(|(id, body)| {
            json!({
                "messageId": id, "receiptHandle": format!("rh-{id}"), "body": body,
                "attributes": {}, "messageAttributes": {}, "md5OfBody": "",
                "eventSource": "aws:sqs", "eventSourceARN": arn, "awsRegion": "us-east-1"
            })
        })
        .collect();
    serde_json::from_value(json!({ "Records": records })).unwrap()
}

#[tokio::test]
async fn one_start_build_per_startable_image_with_every_field() {
    let captured: Captured = Arc::new(Mutex::new(Vec::new()));
    let c = captured.clone();
    let rule = mock!(Client::start_build).then_compute_response(move |req| {
        c.lock().unwrap().push(req.clone());
        MockResponse::Output(started(&image_of(req).replace('/', "-")))
    });
    let s = spawner(
        client!(RuleMode::MatchAny, &[&rule]),
        FixedPlanner::new(Ok(plan())),
    );
    let outcome = s.spawn(&job(), 1).await;
    assert_eq!(
        outcome,
        Outcome::Started {
            builds: vec![
                "slipway-builds:acme-web".into(),
                "slipway-builds:ghcr.io-acme-api".into()
            ]
        }
    );
    let reqs = captured.lock().unwrap().clone();
    // The child waits for its parent: two builds, not three.
    assert_eq!(reqs.len(), 2);
    assert_eq!(rule.num_calls(), 2);

    for (req, image) in reqs.iter().zip(["acme/web", "ghcr.io/acme/api"]) {
        assert_source_of_job!(req);
        assert_eq!(req.buildspec_override(), Some(BUILDSPEC));
        assert!(BUILDSPEC.contains("version: 0.2"));
        assert_eq!(
            req.idempotency_token(),
            Some(idempotency_token(DELIVERY, image, COMMIT).as_str())
        );
        assert!(req.idempotency_token().unwrap().len() <= 64);
        assert_eq!(req.report_build_status_override(), Some(true));
        assert_eq!(
            req.build_status_config_override().and_then(|b| b.context()),
            Some(format!("slipway/{image}").as_str())
        );
    }

    let env = |i: usize| -> BTreeMap<String, (String, EnvironmentVariableType)> {
        reqs[i]
            .environment_variables_override()
            .iter()
            .map(|v| {
                (
                    v.name().to_string(),
                    (v.value().to_string(), v.r#type().unwrap().clone()),
                )
            })
            .collect()
    };
    let plain = |v: &str| (v.to_string(), EnvironmentVariableType::Plaintext);
    let param = |v: &str| (v.to_string(), EnvironmentVariableType::ParameterStore);

    let web = env(0);
    let expected_web: BTreeMap<String, (String, EnvironmentVariableType)> = [
        ("SLIPWAY_JOB_ID", plain(&format!("push-{DELIVERY}"))),
        ("SLIPWAY_DELIVERY_ID", plain(DELIVERY)),
        ("SLIPWAY_TRIGGER", plain("push")),
        ("SLIPWAY_REPOSITORY", plain("acme/site")),
        ("SLIPWAY_REF", plain("refs/heads/main")),
        ("SLIPWAY_DEFAULT_BRANCH", plain("main")),
        ("SLIPWAY_COMMIT", plain(COMMIT)),
        ("SLIPWAY_IMAGE", plain("acme/web")),
        ("SLIPWAY_TAGS", plain("main sha-6113728")),
        ("SLIPWAY_CONTEXT", plain("web")),
        ("SLIPWAY_DOCKERFILE", plain("web/Dockerfile")),
        ("SLIPWAY_TARGET", plain("")),
        ("SLIPWAY_BUILD_ARGS", plain("")),
        ("SLIPWAY_PLATFORMS", plain("")),
        ("SLIPWAY_EMULATE", plain("false")),
        ("SLIPWAY_ATTESTATIONS", plain("")),
        ("SLIPWAY_AUTOTEST", plain("false")),
        ("SLIPWAY_CACHE_TO", plain("acme/web:buildcache-main")),
        ("SLIPWAY_CACHE_FROM", plain("acme/web:buildcache-main")),
        ("SLIPWAY_SOURCE_URL", plain("https://github.com/acme/site")),
        ("SLIPWAY_REGISTRY", plain("docker.io")),
        ("SLIPWAY_REGISTRY_KIND", plain("dockerhub")),
        ("SLIPWAY_CHILDREN", plain("acme/web-debug")),
        ("SLIPWAY_DEPLOY", plain("prod-web")),
        ("SLIPWAY_README", plain("web/README.md")),
        ("SLIPWAY_README_SYNC", plain("dockerhub")),
        (
            "SLIPWAY_REGISTRY_USER",
            param("/slipway/registry/docker.io/acme/username"),
        ),
        (
            "SLIPWAY_REGISTRY_PASSWORD",
            param("/slipway/registry/docker.io/acme/password"),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(web, expected_web);

    let api = env(1);
    assert_eq!(api["SLIPWAY_IMAGE"], plain("ghcr.io/acme/api"));
    assert_eq!(api["SLIPWAY_DOCKERFILE"], plain("api/Dockerfile.prod"));
    assert_eq!(api["SLIPWAY_TARGET"], plain("runtime"));
    assert_eq!(api["SLIPWAY_AUTOTEST"], plain("true"));
    assert_eq!(api["SLIPWAY_BUILD_ARGS"], plain("FEATURES RUST_VERSION"));
    assert_eq!(api["SLIPWAY_BUILD_ARG_FEATURES"], plain("a b"));
    assert_eq!(api["SLIPWAY_BUILD_ARG_RUST_VERSION"], plain("1.94"));
    assert_eq!(api["SLIPWAY_REGISTRY"], plain("ghcr.io"));
    assert_eq!(api["SLIPWAY_REGISTRY_KIND"], plain("ghcr"));
    assert_eq!(api["SLIPWAY_CHILDREN"], plain(""));
    assert_eq!(
        api["SLIPWAY_REGISTRY_PASSWORD"],
        param("/slipway/registry/ghcr.io/acme/password")
    );
    // No secret value is ever in a request: credentials are parameter names only.
    for r in &reqs {
        for v in r.environment_variables_override() {
            if v.name().starts_with("SLIPWAY_REGISTRY_P") || v.name().ends_with("_USER") {
                assert_eq!(v.r#type(), Some(&EnvironmentVariableType::ParameterStore));
                assert!(v.value().starts_with("/slipway/registry/"));
            }
        }
    }
}

#[tokio::test]
async fn ecr_images_log_in_through_the_build_role() {
    let captured: Captured = Arc::new(Mutex::new(Vec::new()));
    let c = captured.clone();
    let rule = mock!(Client::start_build).then_compute_response(move |req| {
        c.lock().unwrap().push(req.clone());
        MockResponse::Output(started("ecr"))
    });
    let mut p = plan();
    p.images.truncate(1);
    p.images[0].name = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/acme/web".into();
    let s = spawner(
        client!(RuleMode::MatchAny, &[&rule]),
        FixedPlanner::new(Ok(p)),
    );
    assert!(matches!(s.spawn(&job(), 1).await, Outcome::Started { .. }));
    let req = &captured.lock().unwrap()[0];
    let vars = req.environment_variables_override();
    assert!(
        vars.iter()
            .all(|v| v.r#type() == Some(&EnvironmentVariableType::Plaintext))
    );
    let get = |n: &str| vars.iter().find(|v| v.name() == n).map(|v| v.value());
    assert_eq!(get("SLIPWAY_REGISTRY_KIND"), Some("ecr"));
    assert_eq!(get("SLIPWAY_REGISTRY_REGION"), Some("eu-west-1"));
    assert_eq!(get("SLIPWAY_REGISTRY_PASSWORD"), None);
}

#[tokio::test]
async fn throttling_is_retried_with_backoff() {
    let rule = mock!(Client::start_build)
        .sequence()
        .error(|| codebuild_error("ThrottlingException"))
        .error(|| codebuild_error("AccountLimitExceededException"))
        .output(|| started("web"))
        .build();
    let mut p = plan();
    p.images.truncate(1);
    let s = spawner(
        client!(RuleMode::Sequential, &[&rule]),
        FixedPlanner::new(Ok(p)),
    );
    let outcome = s.spawn(&job(), 1).await;
    assert_eq!(
        outcome,
        Outcome::Started {
            builds: vec!["slipway-builds:web".into()]
        }
    );
    assert_eq!(rule.num_calls(), 3);
    assert!(s.queue.sent.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_partial_failure_is_retried_only_for_the_image_that_failed() {
    // acme/web starts; ghcr.io/acme/api stays throttled through every retry.
    let web = mock!(Client::start_build)
        .match_requests(|r| image_of(r) == "acme/web")
        .then_output(|| started("web"));
    let api = mock!(Client::start_build)
        .match_requests(|r| image_of(r) == "ghcr.io/acme/api")
        .then_error(|| codebuild_error("ThrottlingException"));
    let s = spawner(
        client!(RuleMode::MatchAny, &[&web, &api]),
        FixedPlanner::new(Ok(plan())),
    );
    let outcome = s.spawn(&job(), 1).await;
    assert_eq!(
        outcome,
        Outcome::Requeued {
            started: vec!["slipway-builds:web".into()],
            failed: vec!["ghcr.io/acme/api".into()]
        }
    );
    assert_eq!(web.num_calls(), 1);
    assert_eq!(api.num_calls(), settings().backoff.attempts as usize);
    // The job queued again names only the image that failed, as attempt 2.
    let sent = s.queue.sent.lock().unwrap().clone();
    assert_eq!(sent.len(), 1);
    let (narrowed, attempt) = &sent[0];
    assert_eq!(attempt, &2);
    assert_eq!(narrowed.images, vec!["ghcr.io/acme/api".to_string()]);
    assert_eq!(narrowed.commit, COMMIT);
    assert_eq!(narrowed.delivery_id, DELIVERY);

    // The narrowed job, once CodeBuild recovers, starts only that image, with the same token.
    let captured: Captured = Arc::new(Mutex::new(Vec::new()));
    let c = captured.clone();
    let ok = mock!(Client::start_build).then_compute_response(move |req| {
        c.lock().unwrap().push(req.clone());
        MockResponse::Output(started("api"))
    });
    let s2 = spawner(
        client!(RuleMode::MatchAny, &[&ok]),
        FixedPlanner::new(Ok(plan())),
    );
    let outcome = s2.spawn(narrowed, *attempt).await;
    assert_eq!(
        outcome,
        Outcome::Started {
            builds: vec!["slipway-builds:api".into()]
        }
    );
    let reqs = captured.lock().unwrap();
    assert_eq!(reqs.len(), 1);
    assert_eq!(image_of(&reqs[0]), "ghcr.io/acme/api");
    assert_eq!(
        reqs[0].idempotency_token(),
        Some(idempotency_token(DELIVERY, "ghcr.io/acme/api", COMMIT).as_str())
    );
}

#[tokio::test]
async fn nothing_started_hands_the_message_back_and_attempts_are_bounded() {
    let rule = mock!(Client::start_build).then_error(|| codebuild_error("ThrottlingException"));
    let s = spawner(
        client!(RuleMode::MatchAny, &[&rule]),
        FixedPlanner::new(Ok(plan())),
    );
    let event = sqs_event(&[("m1", serde_json::to_string(&job()).unwrap())], true);
    let resp = s.handle(event).await;
    let ids: Vec<&str> = resp
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(ids, ["m1"]);
    assert!(s.queue.sent.lock().unwrap().is_empty());

    // A narrowed job at its last attempt is not queued again: the queue's redrive takes over.
    let web = mock!(Client::start_build)
        .match_requests(|r| image_of(r) == "acme/web")
        .then_output(|| started("web"));
    let api = mock!(Client::start_build)
        .match_requests(|r| image_of(r) == "ghcr.io/acme/api")
        .then_error(|| codebuild_error("ThrottlingException"));
    let s = spawner(
        client!(RuleMode::MatchAny, &[&web, &api]),
        FixedPlanner::new(Ok(plan())),
    );
    let outcome = s.spawn(&job(), settings().max_attempts).await;
    assert!(matches!(outcome, Outcome::Retry { .. }), "{outcome:?}");
    assert!(s.queue.sent.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_refused_image_is_reported_and_not_retried() {
    let web = mock!(Client::start_build)
        .match_requests(|r| image_of(r) == "acme/web")
        .then_error(|| codebuild_error("InvalidInputException"));
    let api = mock!(Client::start_build)
        .match_requests(|r| image_of(r) == "ghcr.io/acme/api")
        .then_output(|| started("api"));
    let s = spawner(
        client!(RuleMode::MatchAny, &[&web, &api]),
        FixedPlanner::new(Ok(plan())),
    );
    let outcome = s.spawn(&job(), 1).await;
    assert_eq!(
        outcome,
        Outcome::Started {
            builds: vec!["slipway-builds:api".into()]
        }
    );
    assert_eq!(web.num_calls(), 1);
    assert!(s.queue.sent.lock().unwrap().is_empty());
}

#[tokio::test]
async fn plan_errors_are_reported_not_retried_but_an_unreachable_repository_is() {
    let rule = mock!(Client::start_build).then_output(|| started("x"));
    let bad = spawner(
        client!(RuleMode::MatchAny, &[&rule]),
        FixedPlanner::new(Err(PlanError::UnknownImage("acme/nope".into()))),
    );
    let event = sqs_event(&[("m1", serde_json::to_string(&job()).unwrap())], false);
    assert!(bad.handle(event).await.batch_item_failures.is_empty());
    assert_eq!(
        bad.spawn(&job(), 1).await,
        Outcome::Dropped {
            code: "unknown_image".into()
        }
    );

    let down = spawner(
        client!(RuleMode::MatchAny, &[&rule]),
        FixedPlanner::new(Err(PlanError::Source(SourceError::Unavailable(
            "GitHub answered 502".into(),
        )))),
    );
    let event = sqs_event(&[("m2", serde_json::to_string(&job()).unwrap())], false);
    let resp = down.handle(event).await;
    assert_eq!(resp.batch_item_failures.len(), 1);
    assert_eq!(resp.batch_item_failures[0].item_identifier, "m2");
    assert_eq!(rule.num_calls(), 0);
}

#[tokio::test]
async fn a_message_that_is_not_a_job_is_dropped_and_fifo_order_is_kept() {
    let rule = mock!(Client::start_build).then_error(|| codebuild_error("ThrottlingException"));
    let s = spawner(
        client!(RuleMode::MatchAny, &[&rule]),
        FixedPlanner::new(Ok(plan())),
    );
    let job = serde_json::to_string(&job()).unwrap();
    let event = sqs_event(
        &[
            ("m1", "{not json".to_string()),
            ("m2", job.clone()),
            ("m3", job),
        ],
        true,
    );
    let resp = s.handle(event).await;
    let ids: Vec<&str> = resp
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    // m1 is dropped; m2 fails to start anything; m3 is handed back unprocessed behind it.
    assert_eq!(ids, ["m2", "m3"]);
    let planned = s.planner.jobs.lock().unwrap().len();
    assert_eq!(planned, 1, "m3 must not be planned after m2 failed");
}

#[tokio::test]
async fn a_scheduled_rebuild_builds_the_branch_head() {
    let captured: Captured = Arc::new(Mutex::new(Vec::new()));
    let c = captured.clone();
    let rule = mock!(Client::start_build).then_compute_response(move |req| {
        c.lock().unwrap().push(req.clone());
        MockResponse::Output(started("sched"))
    });
    let s = spawner(
        client!(RuleMode::MatchAny, &[&rule]),
        FixedPlanner::new(Ok(plan())),
    );
    let msg = json!({
        "kind": "scheduled_rebuild",
        "schedule": "nightly",
        "repository": "acme/site",
        "clone_url": "https://github.com/acme/site.git",
        "images": ["acme/web"],
    });
    let resp = s.handle(sqs_event(&[("m1", msg.to_string())], true)).await;
    assert!(resp.batch_item_failures.is_empty());
    let jobs = s.planner.jobs.lock().unwrap().clone();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].commit, COMMIT);
    assert_eq!(jobs[0].git_ref, "refs/heads/main");
    assert_eq!(jobs[0].images, vec!["acme/web".to_string()]);
    let reqs = captured.lock().unwrap();
    assert_eq!(reqs.len(), 1);
    let trigger = reqs[0]
        .environment_variables_override()
        .iter()
        .find(|v| v.name() == "SLIPWAY_TRIGGER")
        .map(|v| v.value().to_string());
    assert_eq!(trigger.as_deref(), Some("schedule"));
}
