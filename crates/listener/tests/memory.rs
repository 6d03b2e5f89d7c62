//! The listener binary's memory when it answers GitHub's largest push: a 6.1 MB payload (2048
//! commits) arriving as API Gateway sends it, base64-encoded in an 8.1 MB event, under the local
//! Lambda runtime API with SSM and SQS on moto. The function runs with 128 MB on AWS; the peak is
//! read from the process itself (`VmHWM`). `docs/performance.md` has the figures of the optimised
//! build; this test keeps the debug build under the Lambda's memory.

#[path = "common/runtime_api.rs"]
mod runtime_api;

use runtime_api::{Aws, run_once, signed_push_event};

const LAMBDA_MEMORY_KIB: u64 = 128 * 1024;

#[tokio::test]
async fn a_6mb_push_is_queued_within_the_lambdas_128_mb() {
    let aws = Aws::create().await;
    let body = slipway_core::testing::large_push();
    assert!(body.len() > 6_000_000, "{} bytes", body.len());
    let run = run_once(&aws, signed_push_event(&body), "warn").await;

    assert_eq!(run.answer["statusCode"], 202, "{}", run.answer);
    let reply: serde_json::Value =
        serde_json::from_str(run.answer["body"].as_str().unwrap()).unwrap();
    assert_eq!(reply["status"], "queued", "{reply}");
    assert!(
        run.peak_rss_kib < LAMBDA_MEMORY_KIB,
        "peak {} KiB is over the Lambda's 128 MB",
        run.peak_rss_kib
    );

    // The job on the queue carries no path list: the planner diffs the repository instead.
    let msgs = aws
        .sqs
        .receive_message()
        .queue_url(&aws.queue_url)
        .send()
        .await
        .unwrap()
        .messages
        .unwrap_or_default();
    assert_eq!(msgs.len(), 1);
    let job = slipway_core::job::from_json(msgs[0].body().unwrap()).unwrap();
    assert!(job.changed_paths.is_empty());
    assert_eq!(
        job.changes_incomplete,
        Some(slipway_core::push::Incomplete::CommitCap)
    );
    eprintln!("peak resident memory: {} KiB", run.peak_rss_kib);
}
