//! Scheduled rebuilds through the real jobs queue: the constant message an EventBridge schedule
//! puts on the FIFO queue (moto's SQS) comes back off the queue and becomes the job at the head
//! of a real git repository's default branch (resolved with `git rev-parse`).

use std::path::Path;

use aws_sdk_sqs::types::QueueAttributeName;
use slipway_aws::sqs::SqsJobQueue;
use slipway_core::listener::JobQueue;
use slipway_core::schedule::{QueueMessage, ScheduledRebuild, parse_queue_message, rebuild_job};
use slipway_core::{Job, Trigger};
use slipway_testkit::git::git;
use slipway_testkit::moto::{drain_bodies, fifo_queue, moto_config, queue};

async fn sqs() -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::new(&moto_config().await)
}

/// A repository whose default branch is `trunk` (two commits) with a `feature` branch one commit
/// ahead.
fn repository(dir: &Path) {
    git(dir, &["init", "-q", "-b", "trunk"]);
    std::fs::create_dir_all(dir.join("base")).unwrap();
    std::fs::write(dir.join("base/Dockerfile"), "FROM scratch\n").unwrap();
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", "base image"]);
    std::fs::write(
        dir.join("slipway.toml"),
        "[images.base]\nschedule = \"cron(0 3 ? * MON *)\"\n",
    )
    .unwrap();
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", "schedule it"]);
    git(dir, &["checkout", "-q", "-b", "feature"]);
    std::fs::write(dir.join("base/extra"), "x\n").unwrap();
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", "feature work"]);
    git(dir, &["checkout", "-q", "trunk"]);
}

#[tokio::test]
async fn a_scheduled_rebuild_off_the_queue_becomes_the_job_at_the_default_branch_head() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("images");
    std::fs::create_dir(&repo).unwrap();
    repository(&repo);
    let clone_url = format!("file://{}", repo.display());

    // The FIFO jobs queue, with content-based deduplication as EventBridge targets need it.
    let sqs = sqs().await;
    let queue = queue(
        &sqs,
        "slipway-jobs-.fifo",
        &[
            (QueueAttributeName::FifoQueue, "true"),
            (QueueAttributeName::ContentBasedDeduplication, "true"),
        ],
    )
    .await
    .url;

    // What two schedule rules put on the queue, as constant JSON (group id = repository).
    let named = format!(
        r#"{{"kind":"scheduled_rebuild","schedule":"weekly-base","repository":"acme/images","clone_url":"{clone_url}","images":["acme/base"]}}"#
    );
    let all_on_feature = format!(
        r#"{{"kind":"scheduled_rebuild","schedule":"nightly","repository":"acme/images","clone_url":"{clone_url}","branch":"feature"}}"#
    );
    for body in [&named, &all_on_feature] {
        sqs.send_message()
            .queue_url(&queue)
            .message_group_id("acme/images")
            .message_body(body)
            .send()
            .await
            .unwrap();
    }

    // The consumer's side: each message resolved against the repository itself.
    let default_branch = git(&repo, &["symbolic-ref", "--short", "HEAD"]);
    assert_eq!(default_branch, "trunk");
    let mut jobs: Vec<Job> = Vec::new();
    for body in drain_bodies(&sqs, &queue, 0).await {
        let QueueMessage::ScheduledRebuild(msg) = parse_queue_message(&body).unwrap() else {
            panic!("expected a scheduled rebuild: {body}");
        };
        let branch = msg.branch(&default_branch).to_string();
        let head = git(&repo, &["rev-parse", &format!("refs/heads/{branch}")]);
        jobs.push(rebuild_job(&msg, &default_branch, &head).unwrap());
    }
    assert_eq!(jobs.len(), 2, "both messages came back, in order");

    let trunk_head = git(&repo, &["rev-parse", "trunk"]);
    let feature_head = git(&repo, &["rev-parse", "feature"]);
    assert_ne!(trunk_head, feature_head);

    let weekly = &jobs[0];
    assert_eq!(
        weekly.trigger,
        Trigger::Schedule {
            name: "weekly-base".into()
        }
    );
    assert_eq!(weekly.repository, "acme/images");
    assert_eq!(weekly.clone_url, clone_url);
    assert_eq!(weekly.default_branch, "trunk");
    assert_eq!(weekly.git_ref, "refs/heads/trunk");
    assert_eq!(weekly.commit, trunk_head);
    assert_eq!(weekly.before, trunk_head);
    assert_eq!(weekly.after, trunk_head);
    assert_eq!(weekly.images, vec!["acme/base"]);
    assert!(weekly.changes_incomplete.is_none() && weekly.changed_paths.is_empty());
    assert_eq!(
        weekly.id,
        format!("schedule-weekly-base-{}", &trunk_head[..12])
    );

    let nightly = &jobs[1];
    assert_eq!(nightly.git_ref, "refs/heads/feature");
    assert_eq!(nightly.commit, feature_head);
    assert!(nightly.images.is_empty(), "every scheduled image");

    // The job goes on the same queue like any other and comes back as a job.
    let q = SqsJobQueue::new(sqs.clone(), queue.clone());
    q.enqueue(weekly).await.unwrap();
    let bodies = drain_bodies(&sqs, &queue, 0).await;
    assert_eq!(bodies.len(), 1);
    let QueueMessage::Job(back) = parse_queue_message(&bodies[0]).unwrap() else {
        panic!("expected a job");
    };
    assert_eq!(*back, *weekly);

    // A malformed schedule message is refused with the field named, not turned into a job.
    let bad = ScheduledRebuild {
        clone_url: "https://user:pw@github.com/acme/images.git".into(),
        ..ScheduledRebuild::new("x", "acme/images", "https://github.com/acme/images.git")
    };
    let err = parse_queue_message(&serde_json::to_string(&bad).unwrap()).unwrap_err();
    assert!(err.to_string().contains("clone_url"), "{err}");
}

/// The queue adapter's errors say whether trying again can help: a queue that does not exist
/// answers the same every time (`queue_refused`); a queue that does not answer may later
/// (`queue_unavailable`). Either way nothing is queued and the caller is told.
#[tokio::test]
async fn queue_errors_tell_a_refused_message_from_an_unavailable_queue() {
    let config = moto_config().await;
    let sqs = aws_sdk_sqs::Client::new(&config);
    let url = fifo_queue(&sqs, "slipway-jobs-").await.url;
    sqs.delete_queue().queue_url(&url).send().await.unwrap();
    let msg = ScheduledRebuild::new("w", "acme/images", "https://github.com/acme/images.git");
    let job = rebuild_job(&msg, "main", &"a".repeat(40)).unwrap();
    let err = SqsJobQueue::new(sqs, url.clone())
        .enqueue(&job)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "queue_refused", "{err}");

    // Nothing listens on port 1: no answer at all.
    let silent = aws_sdk_sqs::Client::from_conf(
        aws_sdk_sqs::config::Builder::from(&config)
            .endpoint_url("http://127.0.0.1:1")
            .retry_config(aws_sdk_sqs::config::retry::RetryConfig::disabled())
            .build(),
    );
    let err = SqsJobQueue::new(silent, url)
        .enqueue(&job)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "queue_unavailable", "{err}");
}
