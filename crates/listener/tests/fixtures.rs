//! GitHub's documented push payloads through the Lambda's request path, from the API Gateway event.

mod common;

use common::*;
use serde_json::{Value, json};

/// One delivery and what the listener must answer: GitHub's documented payloads (some edited
/// for one case), the answer's fields, and the job queued, if any.
#[derive(Clone)]
struct Case {
    name: &'static str,
    event: &'static str,
    fixture: &'static str,
    /// An edit of the fixture's JSON for this case; `None`: GitHub's bytes as they are.
    edit: Option<fn(&mut Value)>,
    allow_private: bool,
    status: u16,
    /// Fields the answer must hold, as JSON.
    answer: Value,
    /// Fields the queued job must hold, as it is serialized on the queue; `None`: nothing queued.
    job: Option<Value>,
}

fn cases() -> Vec<Case> {
    let base = Case {
        name: "",
        event: "push",
        fixture: "push-branch.json",
        edit: None,
        allow_private: false,
        status: 202,
        answer: json!({}),
        job: None,
    };
    vec![
        Case {
            name: "a branch push queues one job with every changed path",
            answer: json!({"status": "queued", "delivery_id": DELIVERY,
                "job_id": format!("push-{DELIVERY}"), "commit": "f95f852bd8fca8fcc58a9a2d6c842781e32a215e"}),
            job: Some(json!({
                "trigger": {"kind": "push"},
                "repository": "Codertocat/Hello-World",
                "clone_url": "https://github.com/Codertocat/Hello-World.git",
                "ref": "refs/heads/master",
                "default_branch": "master",
                "before": "6113728f27ae82c7b1a177c8d03f9e96e0adf246",
                "after": "f95f852bd8fca8fcc58a9a2d6c842781e32a215e",
                "commit": "f95f852bd8fca8fcc58a9a2d6c842781e32a215e",
                "private": false,
                // Added, removed and modified, of both commits, sorted and once each.
                "changed_paths": ["README.md", "api/Dockerfile", "scripts/old.sh",
                    "services/api/Dockerfile", "web/Dockerfile", "web/index.html"],
                "changes_incomplete": null,
            })),
            ..base.clone()
        },
        Case {
            name: "a new branch is queued and marked for a repository diff",
            fixture: "push-new-branch.json",
            answer: json!({"status": "queued"}),
            job: Some(json!({
                "created": true,
                "before": "0000000000000000000000000000000000000000",
                "commit": "6113728f27ae82c7b1a177c8d03f9e96e0adf246",
                "changed_paths": ["README.md"],
                "changes_incomplete": "new_ref",
            })),
            ..base.clone()
        },
        Case {
            name: "an annotated tag builds the commit, not the tag object",
            fixture: "push-annotated-tag.json",
            answer: json!({"status": "queued"}),
            job: Some(json!({
                "ref": "refs/tags/v1.2.0",
                "after": "1c8a5b2b4c1c4b7d8e0a3f6f9d2e7c1b5a4d3e2f",
                "commit": "f95f852bd8fca8fcc58a9a2d6c842781e32a215e",
                "changes_incomplete": "new_ref",
                "changed_paths": [],
            })),
            ..base.clone()
        },
        Case {
            name: "a deleted ref queues nothing and says why",
            fixture: "push-deleted-tag.json",
            answer: json!({"status": "filtered", "reason": "ref_deleted"}),
            ..base.clone()
        },
        Case {
            name: "a forced push is queued and marked",
            fixture: "push-forced.json",
            answer: json!({"status": "queued"}),
            job: Some(json!({
                "forced": true,
                "changes_incomplete": "forced",
                "changed_paths": ["web/index.html"],
            })),
            ..base.clone()
        },
        Case {
            name: "a ping is answered with the hook id",
            event: "ping",
            fixture: "ping.json",
            status: 200,
            answer: json!({"status": "pong", "hook_id": 109948940}),
            ..base.clone()
        },
        Case {
            name: "a branch no rule builds is filtered",
            edit: Some(|v| v["ref"] = "refs/heads/feature/x".into()),
            answer: json!({"status": "filtered", "reason": "ref_not_built"}),
            ..base.clone()
        },
        Case {
            name: "a repository off the allow-list is filtered",
            edit: Some(|v| v["repository"]["full_name"] = "someone-else/Hello-World".into()),
            answer: json!({"status": "filtered", "reason": "repository_not_allowed"}),
            ..base.clone()
        },
        Case {
            name: "a private repository is filtered unless private repositories are on",
            edit: Some(|v| v["repository"]["private"] = true.into()),
            answer: json!({"status": "filtered", "reason": "private_repository"}),
            ..base.clone()
        },
        Case {
            name: "a private repository is queued when private repositories are on",
            edit: Some(|v| v["repository"]["private"] = true.into()),
            allow_private: true,
            answer: json!({"status": "queued"}),
            job: Some(json!({"private": true})),
            ..base.clone()
        },
    ]
}

/// Every field of `expected` (an object) is in `actual` with that value.
fn holds(actual: &Value, expected: &Value) -> Result<(), String> {
    for (k, want) in expected.as_object().expect("expected fields are an object") {
        if actual.get(k) != Some(want) {
            return Err(format!("`{k}` is {:?}, expected {want}", actual.get(k)));
        }
    }
    Ok(())
}

#[tokio::test]
async fn documented_payloads_are_answered_and_queued_as_documented() {
    for case in cases() {
        let body = match case.edit {
            None => fixture(case.fixture),
            Some(edit) => {
                let mut payload: Value = serde_json::from_slice(&fixture(case.fixture)).unwrap();
                edit(&mut payload);
                payload.to_string().into_bytes()
            }
        };
        let mut cfg = config();
        cfg.allow_private = case.allow_private;
        let q = MemoryQueue::default();
        let a = call(&cfg, &q, github_request(case.event, &body)).await;
        let name = case.name;
        assert_eq!(a.status, case.status, "{name}: {}", a.body);
        holds(&a.body, &case.answer).unwrap_or_else(|e| panic!("{name}: answer {e}: {}", a.body));
        let jobs = q.jobs();
        match &case.job {
            None => assert!(jobs.is_empty(), "{name}: queued {jobs:?}"),
            Some(expected) => {
                assert_eq!(jobs.len(), 1, "{name}");
                let job = serde_json::to_value(&jobs[0]).unwrap();
                holds(&job, expected).unwrap_or_else(|e| panic!("{name}: job {e}: {job}"));
            }
        }
    }
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
