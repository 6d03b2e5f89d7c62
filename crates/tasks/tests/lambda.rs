//! The scheduled-tasks Lambda's handler end to end: SSM and SNS on the moto server (the SNS
//! summary read back through an SQS subscription), CodeBuild with `aws-smithy-mocks` (moto's
//! CodeBuild neither paginates nor deletes), call targets on a local HTTP server.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_codebuild::operation::batch_delete_builds::BatchDeleteBuildsOutput;
use aws_sdk_codebuild::operation::batch_get_builds::BatchGetBuildsOutput;
use aws_sdk_codebuild::operation::list_builds_for_project::ListBuildsForProjectOutput;
use aws_sdk_codebuild::types::{Build, BuildNotDeleted, StatusType};
use aws_smithy_mocks::{RuleMode, mock, mock_client};
use aws_smithy_types::DateTime;
use serde_json::{Value, json};
use slipway_core::settings::SettingError;
use slipway_tasks::{Context, Settings, TaskError, handle};
use slipway_testkit::moto;
use time::OffsetDateTime;
use time::macros::datetime;

const NOW: OffsetDateTime = datetime!(2026-11-25 12:00 UTC);

/// A topic with an SQS queue subscribed to it: (topic ARN, queue URL).
async fn topic_with_queue(aws: &aws_config::SdkConfig) -> (String, String) {
    let (topic, queue) = moto::topic_with_queue(aws).await;
    (topic, queue.url)
}

/// The SNS notifications that reached the queue (the SNS envelope, parsed).
async fn notifications(aws: &aws_config::SdkConfig, queue: &str) -> Vec<Value> {
    moto::drain_bodies(&aws_sdk_sqs::Client::new(aws), queue, 1)
        .await
        .iter()
        .map(|b| serde_json::from_str(b).unwrap())
        .collect()
}

fn settings(topic: Option<String>, param: Option<String>) -> Settings {
    let vars: BTreeMap<&str, String> = [
        ("SLIPWAY_PROJECT_NAME", Some("slipway".to_string())),
        ("SLIPWAY_RETENTION_DAYS", Some("14".to_string())),
        ("SLIPWAY_TOPIC_ARN", topic),
        ("SLIPWAY_CALL_TARGETS_PARAM", param),
        ("SLIPWAY_CALL_CONCURRENCY", Some("2".to_string())),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.map(|v| (k, v)))
    .collect();
    Settings::from_vars(|k| vars.get(k).cloned()).unwrap()
}

/// CodeBuild with three builds: an old one, an old one CodeBuild refuses to delete, a running
/// one. Answers the ids each delete request carried.
fn codebuild() -> (aws_sdk_codebuild::Client, Arc<Mutex<Vec<String>>>) {
    let old = NOW.unix_timestamp() - 20 * 86_400;
    let builds = vec![
        Build::builder()
            .id("slipway:a")
            .build_complete(true)
            .build_status(StatusType::Succeeded)
            .end_time(DateTime::from_secs(old))
            .build(),
        Build::builder()
            .id("slipway:b")
            .build_complete(true)
            .build_status(StatusType::Failed)
            .end_time(DateTime::from_secs(old))
            .build(),
        Build::builder()
            .id("slipway:c")
            .build_complete(false)
            .build_status(StatusType::InProgress)
            .start_time(DateTime::from_secs(old))
            .build(),
    ];
    let list = mock!(aws_sdk_codebuild::Client::list_builds_for_project).then_output(|| {
        ListBuildsForProjectOutput::builder()
            .ids("slipway:a")
            .ids("slipway:b")
            .ids("slipway:c")
            .build()
    });
    let get = mock!(aws_sdk_codebuild::Client::batch_get_builds).then_output(move || {
        BatchGetBuildsOutput::builder()
            .set_builds(Some(builds.clone()))
            .build()
    });
    let asked = Arc::new(Mutex::new(Vec::new()));
    let seen = asked.clone();
    let delete =
        mock!(aws_sdk_codebuild::Client::batch_delete_builds).then_compute_output(move |req| {
            seen.lock().unwrap().extend(req.ids().iter().cloned());
            BatchDeleteBuildsOutput::builder()
                .builds_deleted("slipway:a")
                .builds_not_deleted(
                    BuildNotDeleted::builder()
                        .id("slipway:b")
                        .status_code("ACCESS_DENIED")
                        .build(),
                )
                .build()
        });
    (
        mock_client!(
            aws_sdk_codebuild,
            RuleMode::MatchAny,
            [&list, &get, &delete]
        ),
        asked,
    )
}

fn context(aws: &aws_config::SdkConfig, settings: Settings) -> (Context, Arc<Mutex<Vec<String>>>) {
    let (codebuild, asked) = codebuild();
    let mut ctx = Context::new(settings, aws).unwrap();
    ctx.codebuild = codebuild;
    ctx.call_backoff = (Duration::from_millis(10), Duration::from_millis(50));
    (ctx, asked)
}

#[tokio::test]
async fn weekly_cleanup_deletes_reports_and_publishes_its_summary() {
    let aws = moto::moto_config().await;
    let (topic, queue) = topic_with_queue(&aws).await;
    let (ctx, asked) = context(&aws, settings(Some(topic), None));

    let out = handle(&ctx, json!({"task": "cleanup"}), NOW).await.unwrap();
    assert_eq!(*asked.lock().unwrap(), vec!["slipway:a", "slipway:b"]);
    assert_eq!(out["deleted"], json!(["slipway:a"]));
    assert_eq!(
        out["not_deleted"],
        json!([{"id": "slipway:b", "reason": "ACCESS_DENIED"}])
    );
    assert_eq!(out["running"], json!(["slipway:c"]));
    assert_eq!(out["retention_days"], json!(14));
    assert_eq!(out["notified"], json!(true));

    let notes = notifications(&aws, &queue).await;
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert_eq!(
        notes[0]["Subject"],
        "slipway cleanup: 1 deleted, 1 NOT deleted from slipway"
    );
    let message = notes[0]["Message"].as_str().unwrap();
    assert!(message.contains("slipway:b: ACCESS_DENIED"), "{message}");
    assert_eq!(
        notes[0]["MessageAttributes"]["slipway_event"]["Value"],
        "cleanup"
    );
}

#[tokio::test]
async fn a_dry_run_deletes_nothing_and_publishes_nothing() {
    let aws = moto::moto_config().await;
    let (topic, queue) = topic_with_queue(&aws).await;
    let (ctx, asked) = context(&aws, settings(Some(topic), None));
    let out = handle(&ctx, json!({"task": "cleanup", "dry_run": true}), NOW)
        .await
        .unwrap();
    assert!(asked.lock().unwrap().is_empty());
    assert_eq!(out["would_delete"], json!(["slipway:a", "slipway:b"]));
    assert_eq!(out["deleted"], json!([]));
    assert!(out.get("notified").is_none());
    assert!(notifications(&aws, &queue).await.is_empty());
}

#[tokio::test]
async fn scheduled_calls_use_targets_and_secrets_from_ssm() {
    use axum::http::{HeaderMap, StatusCode};
    let aws = moto::moto_config().await;
    let ssm = aws_sdk_ssm::Client::new(&aws);
    let (topic, queue) = topic_with_queue(&aws).await;

    let seen: Arc<Mutex<Vec<Option<String>>>> = Arc::default();
    let s = seen.clone();
    let app = axum::Router::new()
        .route(
            "/ok",
            axum::routing::post(move |h: HeaderMap| async move {
                s.lock().unwrap().push(
                    h.get("authorization")
                        .map(|v| v.to_str().unwrap().to_string()),
                );
                StatusCode::NO_CONTENT
            }),
        )
        .route(
            "/fail",
            axum::routing::post(|| async { StatusCode::BAD_GATEWAY }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let prefix = format!("/slipway-test/{}", uuid::Uuid::new_v4().simple());
    let token_param = format!("{prefix}/token");
    ssm.put_parameter()
        .name(&token_param)
        .value("tok-from-ssm")
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .send()
        .await
        .unwrap();
    let targets = json!([
        {"name": "ok", "url": format!("{base}/ok"), "auth": {"scheme": "bearer", "parameter": token_param}},
        {"name": "fail", "url": format!("{base}/fail"), "retries": 1},
        {"name": "file-auth", "url": format!("{base}/ok"), "auth": {"scheme": "bearer", "file": "/etc/hostname"}},
        {"name": "no-param", "url": format!("{base}/ok"), "auth": {"scheme": "bearer", "parameter": format!("{prefix}/missing")}},
        {"name": "bad url", "url": "nope"}
    ]);
    let targets_param = format!("{prefix}/targets");
    ssm.put_parameter()
        .name(&targets_param)
        .value(targets.to_string())
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .send()
        .await
        .unwrap();

    let (ctx, _) = context(&aws, settings(Some(topic), Some(targets_param)));
    let out = handle(&ctx, json!({"task": "calls"}), NOW).await.unwrap();
    let got: Vec<(String, String, u64)> = out["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap().to_string(),
                r["outcome"].as_str().unwrap().to_string(),
                r["attempts"].as_u64().unwrap(),
            )
        })
        .collect();
    let expect = [
        ("ok", "delivered", 1),
        ("fail", "failed", 2),
        ("file-auth", "secret_unavailable", 0),
        ("no-param", "secret_unavailable", 0),
        ("#5", "invalid", 0),
    ];
    assert_eq!(
        got,
        expect
            .iter()
            .map(|(a, b, c)| (a.to_string(), b.to_string(), *c))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        *seen.lock().unwrap(),
        vec![Some("Bearer tok-from-ssm".to_string())]
    );
    assert!(!out.to_string().contains("tok-from-ssm"));

    let notes = notifications(&aws, &queue).await;
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert_eq!(
        notes[0]["Subject"],
        "slipway scheduled calls: 4 of 5 not delivered"
    );
    assert!(
        notes[0]["Message"]
            .as_str()
            .unwrap()
            .contains("fail: Failed after 2 attempt(s), last status 502")
    );
}

#[tokio::test]
async fn bad_input_and_settings_are_named() {
    let aws = moto::moto_config().await;
    let (ctx, asked) = context(&aws, settings(None, None));
    let err = handle(&ctx, json!({"task": "vacuum"}), NOW)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "invalid_input");
    let err = handle(&ctx, json!({"task": "calls"}), NOW)
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        TaskError::Setting(SettingError::Missing("SLIPWAY_CALL_TARGETS_PARAM"))
    ));
    let err = handle(&ctx, json!({"task": "cleanup", "retention_days": 0}), NOW)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "invalid_retention");
    assert!(asked.lock().unwrap().is_empty());

    let vars = |pairs: &'static [(&'static str, &'static str)]| {
        move |k: &str| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    };
    assert!(matches!(
        Settings::from_vars(vars(&[])),
        Err(TaskError::Setting(SettingError::Missing(
            "SLIPWAY_PROJECT_NAME"
        )))
    ));
    let err = Settings::from_vars(vars(&[
        ("SLIPWAY_PROJECT_NAME", "p"),
        ("SLIPWAY_RETENTION_DAYS", "0"),
    ]))
    .unwrap_err();
    assert!(err.to_string().contains("SLIPWAY_RETENTION_DAYS"), "{err}");
    let err = Settings::from_vars(vars(&[
        ("SLIPWAY_PROJECT_NAME", "p"),
        ("SLIPWAY_DRY_RUN", "yes"),
    ]))
    .unwrap_err();
    assert!(err.to_string().contains("SLIPWAY_DRY_RUN"), "{err}");
    let s = Settings::from_vars(vars(&[("SLIPWAY_PROJECT_NAME", "p")])).unwrap();
    assert_eq!(
        (s.retention.in_days(), s.dry_run, s.call_concurrency),
        (30, false, 4)
    );
}
