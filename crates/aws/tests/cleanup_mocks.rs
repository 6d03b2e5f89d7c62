//! Cleanup against CodeBuild's API shapes with `aws-smithy-mocks` (moto's CodeBuild neither
//! paginates nor deletes builds). The mocks hold a project of 250 builds in memory: listing pages
//! through them 100 at a time, deleting removes them, and every request is recorded.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_sdk_codebuild::Client;
use aws_sdk_codebuild::operation::batch_delete_builds::{
    BatchDeleteBuildsError, BatchDeleteBuildsOutput,
};
use aws_sdk_codebuild::operation::batch_get_builds::BatchGetBuildsOutput;
use aws_sdk_codebuild::operation::list_builds_for_project::ListBuildsForProjectOutput;
use aws_sdk_codebuild::types::error::InvalidInputException;
use aws_sdk_codebuild::types::{Build, BuildNotDeleted, StatusType};
use aws_smithy_mocks::{MockResponse, RuleMode, mock, mock_client};
use aws_smithy_types::DateTime;
use slipway_aws::cleanup::{CleanupRequest, cleanup};
use slipway_core::retention::Retention;
use time::OffsetDateTime;
use time::macros::datetime;

const NOW: OffsetDateTime = datetime!(2026-11-25 12:00 UTC);
const PROJECT: &str = "slipway";
const PAGE: usize = 100;

fn id(i: usize) -> String {
    format!("{PROJECT}:{i:04}")
}

/// Builds 1..=250: every tenth still running (started 60 days ago); 1..=200 ended 40 days ago;
/// 201..=250 ended yesterday.
fn project() -> BTreeMap<String, Build> {
    (1..=250)
        .map(|i| {
            let days_ago = if i <= 200 { 40 } else { 1 };
            let end = NOW.unix_timestamp() - days_ago * 86_400;
            let b = if i % 10 == 0 {
                Build::builder()
                    .id(id(i))
                    .build_complete(false)
                    .build_status(StatusType::InProgress)
                    .start_time(DateTime::from_secs(NOW.unix_timestamp() - 60 * 86_400))
            } else {
                Build::builder()
                    .id(id(i))
                    .build_complete(true)
                    .build_status(if i % 3 == 0 {
                        StatusType::Failed
                    } else {
                        StatusType::Succeeded
                    })
                    .start_time(DateTime::from_secs(end - 300))
                    .end_time(DateTime::from_secs(end))
            };
            (id(i), b.build())
        })
        .collect()
}

#[derive(Default)]
struct Calls {
    list_tokens: Vec<Option<String>>,
    get_sizes: Vec<usize>,
    delete_batches: Vec<Vec<String>>,
}

struct Fake {
    client: Client,
    store: Arc<Mutex<BTreeMap<String, Build>>>,
    calls: Arc<Mutex<Calls>>,
}

/// The mocked CodeBuild. `refuse` lists builds CodeBuild answers as not deleted (with a status
/// code); `fail_batch` makes that delete request (0-based) fail as a whole.
fn fake(refuse: &[(usize, &str)], fail_batch: Option<usize>) -> Fake {
    let store = Arc::new(Mutex::new(project()));
    let calls = Arc::new(Mutex::new(Calls::default()));
    let refuse: BTreeMap<String, String> = refuse
        .iter()
        .map(|(i, code)| (id(*i), code.to_string()))
        .collect();

    let (s, c) = (store.clone(), calls.clone());
    let list = mock!(Client::list_builds_for_project).then_compute_output(move |req| {
        assert_eq!(req.project_name(), Some(PROJECT));
        c.lock()
            .unwrap()
            .list_tokens
            .push(req.next_token().map(str::to_string));
        let start: usize = req
            .next_token()
            .map(|t| t.strip_prefix("page-").unwrap().parse().unwrap())
            .unwrap_or(0);
        let ids: Vec<String> = s.lock().unwrap().keys().cloned().collect();
        let page: Vec<String> = ids.iter().skip(start).take(PAGE).cloned().collect();
        let mut out = ListBuildsForProjectOutput::builder().set_ids(Some(page));
        if start + PAGE < ids.len() {
            out = out.next_token(format!("page-{}", start + PAGE));
        }
        out.build()
    });

    let (s, c) = (store.clone(), calls.clone());
    let get = mock!(Client::batch_get_builds).then_compute_output(move |req| {
        assert!(
            req.ids().len() <= 100,
            "BatchGetBuilds takes at most 100 ids"
        );
        c.lock().unwrap().get_sizes.push(req.ids().len());
        let store = s.lock().unwrap();
        BatchGetBuildsOutput::builder()
            .set_builds(Some(
                req.ids()
                    .iter()
                    .filter_map(|i| store.get(i).cloned())
                    .collect(),
            ))
            .build()
    });

    let (s, c) = (store.clone(), calls.clone());
    let delete = mock!(Client::batch_delete_builds).then_compute_response(move |req| {
        assert!(
            req.ids().len() <= 100,
            "BatchDeleteBuilds takes at most 100 ids"
        );
        let batch = {
            let mut calls = c.lock().unwrap();
            calls.delete_batches.push(req.ids().to_vec());
            calls.delete_batches.len() - 1
        };
        if fail_batch == Some(batch) {
            return MockResponse::Error(BatchDeleteBuildsError::InvalidInputException(
                InvalidInputException::builder()
                    .message("simulated failure")
                    .build(),
            ));
        }
        let mut store = s.lock().unwrap();
        let mut out = BatchDeleteBuildsOutput::builder();
        for i in req.ids() {
            match refuse.get(i) {
                Some(code) => {
                    out = out.builds_not_deleted(
                        BuildNotDeleted::builder()
                            .id(i)
                            .status_code(code.as_str())
                            .build(),
                    )
                }
                None => {
                    store.remove(i);
                    out = out.builds_deleted(i);
                }
            }
        }
        MockResponse::Output(out.build())
    });

    let client = mock_client!(
        aws_sdk_codebuild,
        RuleMode::MatchAny,
        [&list, &get, &delete]
    );
    Fake {
        client,
        store,
        calls,
    }
}

fn request(dry_run: bool) -> CleanupRequest {
    CleanupRequest {
        project: PROJECT.into(),
        retention: Retention::days(30).unwrap(),
        dry_run,
    }
}

/// Builds 1..=200 that are not running: the ones 30-day retention expires.
fn expired() -> Vec<String> {
    (1..=200).filter(|i| i % 10 != 0).map(id).collect()
}

fn running() -> Vec<String> {
    (1..=250).filter(|i| i % 10 == 0).map(id).collect()
}

#[tokio::test]
async fn deletes_expired_builds_across_pages_and_reports_refusals() {
    let f = fake(&[(7, "BUILD_IN_PROGRESS"), (123, "ACCESS_DENIED")], None);
    let summary = cleanup(&f.client, &request(false), NOW).await.unwrap();

    // Every page was read, every build examined, in batches of at most 100.
    let calls = f.calls.lock().unwrap();
    assert_eq!(
        calls.list_tokens,
        vec![None, Some("page-100".into()), Some("page-200".into())]
    );
    assert_eq!(calls.get_sizes, vec![100, 100, 50]);
    assert_eq!(summary.examined, 250);

    // Exactly the expired builds were asked to be deleted, in batches of 100; no running build.
    let asked: Vec<String> = calls.delete_batches.concat();
    assert_eq!(
        calls
            .delete_batches
            .iter()
            .map(Vec::len)
            .collect::<Vec<_>>(),
        vec![100, 80]
    );
    assert_eq!(asked, expired());
    assert!(running().iter().all(|r| !asked.contains(r)));

    // Reported: what CodeBuild deleted, and what it refused with its reason.
    let mut deleted = expired();
    deleted.retain(|i| i != &id(7) && i != &id(123));
    assert_eq!(summary.deleted, deleted);
    let refused: Vec<(&str, &str)> = summary
        .not_deleted
        .iter()
        .map(|n| (n.id.as_str(), n.reason.as_str()))
        .collect();
    assert_eq!(
        refused,
        vec![
            ("slipway:0007", "BUILD_IN_PROGRESS"),
            ("slipway:0123", "ACCESS_DENIED")
        ]
    );
    assert_eq!(summary.running, running());
    assert_eq!(summary.recent, 45);
    assert!(summary.would_delete.is_empty());
    assert!(summary.worth_notifying());
    assert!(summary.subject().contains("178 deleted, 2 NOT deleted"));

    // What is left in the project: the running, the recent and the refused builds.
    let left: Vec<String> = f.store.lock().unwrap().keys().cloned().collect();
    let mut expect: Vec<String> = (1..=250)
        .filter(|i| *i > 200 || i % 10 == 0 || *i == 7 || *i == 123)
        .map(id)
        .collect();
    expect.sort();
    assert_eq!(left, expect);
}

#[tokio::test]
async fn a_failed_delete_request_is_reported_and_the_next_batch_still_runs() {
    let f = fake(&[], Some(0));
    let summary = cleanup(&f.client, &request(false), NOW).await.unwrap();
    let all = expired();
    assert_eq!(f.calls.lock().unwrap().delete_batches.len(), 2);
    assert_eq!(summary.deleted, all[100..].to_vec());
    assert_eq!(
        summary
            .not_deleted
            .iter()
            .map(|n| n.id.clone())
            .collect::<Vec<_>>(),
        all[..100].to_vec()
    );
    assert!(
        summary.not_deleted[0].reason.contains("simulated failure"),
        "{}",
        summary.not_deleted[0].reason
    );
    assert_eq!(f.store.lock().unwrap().len(), 250 - 80);
}

#[tokio::test]
async fn dry_run_lists_what_it_would_delete_and_deletes_nothing() {
    let f = fake(&[], None);
    let summary = cleanup(&f.client, &request(true), NOW).await.unwrap();
    assert!(f.calls.lock().unwrap().delete_batches.is_empty());
    assert_eq!(f.store.lock().unwrap().len(), 250);
    assert!(summary.dry_run);
    assert_eq!(summary.would_delete, expired());
    assert!(summary.deleted.is_empty() && summary.not_deleted.is_empty());
    assert!(!summary.worth_notifying());
    assert!(
        summary
            .body()
            .contains("Dry run: 180 builds would be deleted")
    );
}

#[tokio::test]
async fn a_listing_failure_is_an_error_and_deletes_nothing() {
    let list = mock!(Client::list_builds_for_project).then_error(|| {
        aws_sdk_codebuild::operation::list_builds_for_project::ListBuildsForProjectError::ResourceNotFoundException(
            aws_sdk_codebuild::types::error::ResourceNotFoundException::builder()
                .message("no such project")
                .build(),
        )
    });
    let delete = mock!(Client::batch_delete_builds)
        .then_output(|| BatchDeleteBuildsOutput::builder().build());
    let client = mock_client!(aws_sdk_codebuild, RuleMode::MatchAny, [&list, &delete]);
    let err = cleanup(&client, &request(false), NOW).await.unwrap_err();
    assert_eq!(err.code(), "list_builds_failed");
    assert!(err.to_string().contains("no such project"), "{err}");
    assert_eq!(delete.num_calls(), 0);
}
