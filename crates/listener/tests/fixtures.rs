//! GitHub's documented push payloads through the Lambda's request path, from the API Gateway event.

mod common;

use common::*;
use slipway_core::Trigger;
use slipway_core::push::Incomplete;

#[tokio::test]
async fn branch_push_queues_one_job_with_every_changed_path() {
    let q = MemoryQueue::default();
    let a = call(
        &config(),
        &q,
        github_request("push", &fixture("push-branch.json")),
    )
    .await;
    assert_eq!(a.status, 202, "{}", a.body);
    assert_eq!(a.body["status"], "queued");
    assert_eq!(a.body["delivery_id"], DELIVERY);
    assert_eq!(a.body["job_id"], format!("push-{DELIVERY}"));
    assert_eq!(a.body["commit"], "f95f852bd8fca8fcc58a9a2d6c842781e32a215e");
    let jobs = q.jobs();
    assert_eq!(jobs.len(), 1);
    let job = &jobs[0];
    assert_eq!(job.trigger, Trigger::Push);
    assert_eq!(job.repository, "Codertocat/Hello-World");
    assert_eq!(
        job.clone_url,
        "https://github.com/Codertocat/Hello-World.git"
    );
    assert_eq!(job.git_ref, "refs/heads/master");
    assert_eq!(job.default_branch, "master");
    assert_eq!(job.before, "6113728f27ae82c7b1a177c8d03f9e96e0adf246");
    assert_eq!(job.after, "f95f852bd8fca8fcc58a9a2d6c842781e32a215e");
    assert_eq!(job.commit, job.after);
    // Added, removed and modified, of both commits, sorted and once each.
    assert_eq!(
        job.changed_paths,
        [
            "README.md",
            "api/Dockerfile",
            "scripts/old.sh",
            "services/api/Dockerfile",
            "web/Dockerfile",
            "web/index.html"
        ]
    );
    assert_eq!(job.changes_incomplete, None);
}

#[tokio::test]
async fn new_branch_is_queued_and_marked_for_a_repository_diff() {
    let q = MemoryQueue::default();
    let a = call(
        &config(),
        &q,
        github_request("push", &fixture("push-new-branch.json")),
    )
    .await;
    assert_eq!(a.status, 202, "{}", a.body);
    assert_eq!(a.body["status"], "queued");
    let job = &q.jobs()[0];
    assert!(job.created);
    assert_eq!(job.before, "0000000000000000000000000000000000000000");
    assert_eq!(job.commit, "6113728f27ae82c7b1a177c8d03f9e96e0adf246");
    assert_eq!(job.changed_paths, ["README.md"]);
    assert_eq!(job.changes_incomplete, Some(Incomplete::NewRef));
}

#[tokio::test]
async fn annotated_tag_builds_the_commit_not_the_tag_object() {
    let q = MemoryQueue::default();
    let a = call(
        &config(),
        &q,
        github_request("push", &fixture("push-annotated-tag.json")),
    )
    .await;
    assert_eq!(a.status, 202, "{}", a.body);
    let job = &q.jobs()[0];
    assert_eq!(job.git_ref, "refs/tags/v1.2.0");
    assert_eq!(job.after, "1c8a5b2b4c1c4b7d8e0a3f6f9d2e7c1b5a4d3e2f");
    assert_eq!(job.commit, "f95f852bd8fca8fcc58a9a2d6c842781e32a215e");
    assert_eq!(job.changes_incomplete, Some(Incomplete::NewRef));
    assert!(job.changed_paths.is_empty());
}

#[tokio::test]
async fn deleted_ref_queues_nothing_and_says_why() {
    let q = MemoryQueue::default();
    let a = call(
        &config(),
        &q,
        github_request("push", &fixture("push-deleted-tag.json")),
    )
    .await;
    assert_eq!(a.status, 202);
    assert_eq!(a.body["status"], "filtered");
    assert_eq!(a.body["reason"], "ref_deleted");
    assert!(q.jobs().is_empty());
}

#[tokio::test]
async fn forced_push_is_queued_and_marked() {
    let q = MemoryQueue::default();
    let a = call(
        &config(),
        &q,
        github_request("push", &fixture("push-forced.json")),
    )
    .await;
    assert_eq!(a.status, 202, "{}", a.body);
    let job = &q.jobs()[0];
    assert!(job.forced);
    assert_eq!(job.changes_incomplete, Some(Incomplete::Forced));
    assert_eq!(job.changed_paths, ["web/index.html"]);
}

#[tokio::test]
async fn ping_answers_with_the_hook_id() {
    let q = MemoryQueue::default();
    let a = call(&config(), &q, github_request("ping", &fixture("ping.json"))).await;
    assert_eq!(a.status, 200);
    assert_eq!(a.body["status"], "pong");
    assert_eq!(a.body["hook_id"], 109948940);
    assert!(q.jobs().is_empty());
}

#[tokio::test]
async fn other_events_are_ignored_with_202() {
    let q = MemoryQueue::default();
    let a = call(
        &config(),
        &q,
        github_request("issues", b"{\"action\":\"opened\"}"),
    )
    .await;
    assert_eq!(a.status, 202);
    assert_eq!(a.body["status"], "ignored");
    assert_eq!(a.body["event"], "issues");
    assert!(q.jobs().is_empty());
}

/// An organisation webhook subscribed to everything sends every event GitHub documents:
/// `ping` is answered 200, `push` is handled, every other one is acknowledged as `ignored`
/// (202) — none is refused, digits and underscores included (`projects_v2_item`).
#[tokio::test]
async fn every_documented_event_is_answered_as_documented() {
    let events = String::from_utf8(fixture("webhook-events.txt")).unwrap();
    let events: Vec<&str> = events
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    assert!(events.contains(&"projects_v2_item") && events.contains(&"security_and_analysis"));
    for event in events {
        let q = MemoryQueue::default();
        let body = match event {
            "ping" => fixture("ping.json"),
            "push" => fixture("push-branch.json"),
            _ => br#"{"action":"created","sender":{"login":"octocat"}}"#.to_vec(),
        };
        let a = call(&config(), &q, github_request(event, &body)).await;
        let expected = match event {
            "ping" => (200, "pong"),
            "push" => (202, "queued"),
            _ => (202, "ignored"),
        };
        assert_eq!(
            (a.status, a.body["status"].as_str().unwrap_or("")),
            expected,
            "{event}: {}",
            a.body
        );
        assert_eq!(q.jobs().len(), usize::from(event == "push"), "{event}");
    }
}

#[tokio::test]
async fn redelivery_yields_one_job() {
    let q = MemoryQueue::default();
    let body = fixture("push-branch.json");
    let first = call(&config(), &q, github_request("push", &body)).await;
    let again = call(&config(), &q, github_request("push", &body)).await;
    assert_eq!(first.body["status"], "queued");
    assert_eq!(again.status, 202);
    assert_eq!(again.body["status"], "duplicate");
    assert_eq!(q.jobs().len(), 1);
}

#[tokio::test]
async fn branch_not_built_repository_not_allowed_private_repository() {
    let q = MemoryQueue::default();
    let mut v: serde_json::Value = serde_json::from_slice(&fixture("push-branch.json")).unwrap();
    v["ref"] = "refs/heads/feature/x".into();
    let a = call(
        &config(),
        &q,
        github_request("push", v.to_string().as_bytes()),
    )
    .await;
    assert_eq!(
        (a.status, a.body["reason"].as_str()),
        (202, Some("ref_not_built"))
    );

    let mut v: serde_json::Value = serde_json::from_slice(&fixture("push-branch.json")).unwrap();
    v["repository"]["full_name"] = "someone-else/Hello-World".into();
    let a = call(
        &config(),
        &q,
        github_request("push", v.to_string().as_bytes()),
    )
    .await;
    assert_eq!(
        (a.status, a.body["reason"].as_str()),
        (202, Some("repository_not_allowed"))
    );

    let mut v: serde_json::Value = serde_json::from_slice(&fixture("push-branch.json")).unwrap();
    v["repository"]["private"] = true.into();
    let a = call(
        &config(),
        &q,
        github_request("push", v.to_string().as_bytes()),
    )
    .await;
    assert_eq!(
        (a.status, a.body["reason"].as_str()),
        (202, Some("private_repository"))
    );
    let mut cfg = config();
    cfg.allow_private = true;
    let a = call(&cfg, &q, github_request("push", v.to_string().as_bytes())).await;
    assert_eq!(a.body["status"], "queued");
    assert_eq!(q.jobs().len(), 1);
    assert!(q.jobs()[0].private);
}

#[tokio::test]
async fn form_encoded_deliveries_are_accepted() {
    // GitHub's default content type: the JSON in a `payload` form field, signed as sent.
    let q = MemoryQueue::default();
    let json = fixture("push-branch.json");
    let body: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("payload", std::str::from_utf8(&json).unwrap())
        .finish();
    let sig = slipway_core::webhook::sign(SECRET.as_bytes(), body.as_bytes());
    let req = request(
        "POST",
        &[
            ("content-type", "application/x-www-form-urlencoded"),
            ("x-github-event", "push"),
            ("x-github-delivery", DELIVERY),
            ("x-hub-signature-256", &sig),
        ],
        body.as_bytes(),
    );
    let a = call(&config(), &q, req).await;
    assert_eq!(a.body["status"], "queued", "{}", a.body);
    assert_eq!(q.jobs().len(), 1);
}

#[tokio::test]
async fn plain_text_body_from_api_gateway_is_verified_too() {
    // API Gateway sends JSON bodies as text unless told otherwise.
    let q = MemoryQueue::default();
    let body = fixture("push-branch.json");
    let sig = slipway_core::webhook::sign(SECRET.as_bytes(), &body);
    let ev = apigw_event(
        "POST",
        &[
            ("content-type", "application/json"),
            ("x-github-event", "push"),
            ("x-github-delivery", DELIVERY),
            ("x-hub-signature-256", &sig),
        ],
        &body,
        false,
    );
    let req = event(&ev);
    let a = call(&config(), &q, req).await;
    assert_eq!(a.body["status"], "queued", "{}", a.body);
}

#[tokio::test]
async fn queue_outage_is_503_and_nothing_accepted() {
    let a = call(
        &config(),
        &DownQueue,
        github_request("push", &fixture("push-branch.json")),
    )
    .await;
    assert_eq!(a.status, 503);
    assert_eq!(a.body["error"], "queue_unavailable");
    assert!(!a.body["message"].as_str().unwrap().contains("refused"));
}
