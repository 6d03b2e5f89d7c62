//! The scheduled tasks' own costs: schedule evaluation (what `slipway serve` does every tick),
//! the retention rule over a large history, a cleanup run over 1000 builds (10 pages) with
//! CodeBuild mocked, and 100 scheduled calls to a local server.

use std::hint::black_box;

use aws_sdk_codebuild::operation::batch_delete_builds::BatchDeleteBuildsOutput;
use aws_sdk_codebuild::operation::batch_get_builds::BatchGetBuildsOutput;
use aws_sdk_codebuild::operation::list_builds_for_project::ListBuildsForProjectOutput;
use aws_sdk_codebuild::types::{Build, StatusType};
use aws_smithy_mocks::{RuleMode, mock, mock_client};
use criterion::{Criterion, criterion_group, criterion_main};
use slipway_aws::cleanup::{CleanupRequest, cleanup};
use slipway_core::calls::parse_targets;
use slipway_core::retention::{BuildAge, Retention};
use slipway_core::schedule::ScheduleExpr;
use time::Duration;
use time::macros::datetime;

fn schedules(c: &mut Criterion) {
    let now = datetime!(2026-11-25 13:36:10 UTC);
    for (name, expr) in [
        ("weekly", "cron(0 3 ? * MON *)"),
        ("last_friday", "cron(0 9 ? * 6L *)"),
        ("rate", "rate(7 days)"),
        // Never matches: the scan runs to the last year EventBridge allows.
        ("never", "cron(0 0 31 FEB ? *)"),
    ] {
        let e = ScheduleExpr::parse(expr).unwrap();
        c.bench_function(&format!("schedule next_after {name}"), |b| {
            b.iter(|| black_box(e.next_after(black_box(now))))
        });
    }
}

fn retention(c: &mut Criterion) {
    let now = datetime!(2026-11-25 12:00 UTC);
    let builds: Vec<BuildAge> = (0..10_000)
        .map(|i| BuildAge {
            id: format!("slipway:{i}"),
            running: i % 50 == 0,
            started: Some(now - Duration::hours(i)),
            ended: Some(now - Duration::hours(i) + Duration::minutes(5)),
        })
        .collect();
    let r = Retention::days(30).unwrap();
    c.bench_function("retention select 10k builds", |b| {
        b.iter(|| black_box(r.select(black_box(&builds), now)))
    });
}

fn cleanup_run(c: &mut Criterion) {
    let now = datetime!(2026-11-25 12:00 UTC);
    let ids: Vec<String> = (0..1000).map(|i| format!("slipway:{i:04}")).collect();
    let page_ids = ids.clone();
    let list =
        mock!(aws_sdk_codebuild::Client::list_builds_for_project).then_compute_output(move |req| {
            let start: usize = req.next_token().map_or(0, |t| t.parse().unwrap());
            let mut out = ListBuildsForProjectOutput::builder()
                .set_ids(Some(page_ids[start..start + 100].to_vec()));
            if start + 100 < page_ids.len() {
                out = out.next_token((start + 100).to_string());
            }
            out.build()
        });
    let old = aws_smithy_types::DateTime::from_secs(now.unix_timestamp() - 40 * 86_400);
    let get = mock!(aws_sdk_codebuild::Client::batch_get_builds).then_compute_output(move |req| {
        BatchGetBuildsOutput::builder()
            .set_builds(Some(
                req.ids()
                    .iter()
                    .map(|i| {
                        Build::builder()
                            .id(i)
                            .build_complete(true)
                            .build_status(StatusType::Succeeded)
                            .end_time(old)
                            .build()
                    })
                    .collect(),
            ))
            .build()
    });
    let delete = mock!(aws_sdk_codebuild::Client::batch_delete_builds).then_compute_output(|req| {
        BatchDeleteBuildsOutput::builder()
            .set_builds_deleted(Some(req.ids().to_vec()))
            .build()
    });
    let client = mock_client!(
        aws_sdk_codebuild,
        RuleMode::MatchAny,
        [&list, &get, &delete]
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let req = CleanupRequest {
        project: "slipway".into(),
        retention: Retention::days(30).unwrap(),
        dry_run: false,
    };
    c.bench_function("cleanup 1000 builds mocked", |b| {
        b.iter(|| {
            let s = rt.block_on(cleanup(&client, &req, now)).unwrap();
            assert_eq!(s.deleted.len(), 1000);
        })
    });
}

fn calls(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let base = rt.block_on(async {
        let app = axum::Router::new().route(
            "/{name}",
            axum::routing::post(|| async { axum::http::StatusCode::NO_CONTENT }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        base
    });
    let config = serde_json::Value::from(
        (0..100)
            .map(|i| serde_json::json!({"name": format!("t{i}"), "url": format!("{base}/t{i}")}))
            .collect::<Vec<_>>(),
    )
    .to_string();
    let client = slipway_calls::client().unwrap();
    let mut group = c.benchmark_group("calls 100 targets");
    group.sample_size(20);
    for concurrency in [1, 8] {
        let opts = slipway_calls::SendOptions {
            concurrency,
            ..Default::default()
        };
        group.bench_function(format!("concurrency {concurrency}"), |b| {
            b.iter(|| {
                let targets = parse_targets(&config).unwrap();
                let report = rt.block_on(slipway_calls::send_all(
                    &client,
                    targets,
                    &slipway_calls::FileSecrets,
                    &opts,
                ));
                assert_eq!(report.delivered, 100);
            })
        });
    }
    group.finish();
}

criterion_group!(benches, schedules, retention, cleanup_run, calls);
criterion_main!(benches);
