//! Helpers shared by the listener's tests: API Gateway HTTP API (payload 2.0) events built the way
//! API Gateway sends them, read by the Lambda's own event reader (`ApiGatewayRequest`).

#![allow(dead_code)]

use std::sync::Mutex;

use base64::Engine;
use serde_json::{Value, json};
use slipway_core::Job;
use slipway_core::listener::{Enqueued, JobQueue, ListenerConfig, QueueError};
use slipway_core::refs::{RefRules, RepoFilter};
use slipway_core::webhook::{WebhookSecrets, sign};
use slipway_listener::ApiGatewayRequest;

pub const SECRET: &str = "a-long-test-webhook-secret-0001";
pub const DELIVERY: &str = "72d3162e-cc78-11e3-81ab-4c9367dc0958";

pub fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/../../tests/fixtures/github/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("fixture {path}: {e}"))
}

pub fn config() -> ListenerConfig {
    ListenerConfig {
        secrets: WebhookSecrets::parse(SECRET).unwrap(),
        repositories: RepoFilter::parse("Codertocat/*").unwrap(),
        refs: RefRules::parse("$default, release/*", "v*").unwrap(),
        allow_private: false,
        max_body_bytes: 1024 * 1024,
        allow_file_clone_urls: false,
    }
}

/// An API Gateway v2 event. `headers` are sent as given (lowercase, as API Gateway sends them;
/// repeated names joined with commas, as API Gateway does).
pub fn apigw_event(method: &str, headers: &[(&str, &str)], body: &[u8], base64: bool) -> String {
    let mut h = serde_json::Map::new();
    for (k, v) in headers {
        let k = k.to_ascii_lowercase();
        match h.get_mut(&k) {
            Some(Value::String(prev)) => {
                prev.push(',');
                prev.push_str(v);
            }
            _ => {
                h.insert(k, json!(v));
            }
        }
    }
    let body_field = if base64 {
        json!(base64::engine::general_purpose::STANDARD.encode(body))
    } else {
        json!(String::from_utf8_lossy(body))
    };
    json!({
        "version": "2.0",
        "routeKey": "POST /hooks/github",
        "rawPath": "/hooks/github",
        "rawQueryString": "",
        "headers": h,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "api-id",
            "domainName": "id.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "id",
            "http": {
                "method": method,
                "path": "/hooks/github",
                "protocol": "HTTP/1.1",
                "sourceIp": "192.0.2.1",
                "userAgent": "GitHub-Hookshot/044aadd"
            },
            "requestId": "id",
            "routeKey": "POST /hooks/github",
            "stage": "$default",
            "time": "12/Mar/2020:19:03:58 +0000",
            "timeEpoch": 1583348638390u64
        },
        "body": body_field,
        "isBase64Encoded": base64
    })
    .to_string()
}

/// A signed GitHub delivery of `body` for `event`, as the Lambda reads it.
pub fn github_request(event: &str, body: &[u8]) -> ApiGatewayRequest {
    let sig = sign(SECRET.as_bytes(), body);
    request(
        "POST",
        &[
            ("content-type", "application/json"),
            ("x-github-event", event),
            ("x-github-delivery", DELIVERY),
            ("x-hub-signature-256", &sig),
            ("user-agent", "GitHub-Hookshot/044aadd"),
        ],
        body,
    )
}

pub fn request(method: &str, headers: &[(&str, &str)], body: &[u8]) -> ApiGatewayRequest {
    event(&apigw_event(method, headers, body, true))
}

/// The request the Lambda reads from an event's JSON text.
pub fn event(json: &str) -> ApiGatewayRequest {
    ApiGatewayRequest::from_slice(json.as_bytes()).expect("the Lambda reads the API Gateway event")
}

/// What a response said.
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

pub async fn call<Q: JobQueue>(cfg: &ListenerConfig, queue: &Q, req: ApiGatewayRequest) -> Answer {
    let resp = slipway_listener::handle(cfg, queue, req).await;
    // What API Gateway reads: the answer's JSON as the function returns it.
    let sent = serde_json::to_value(&resp).unwrap();
    assert_eq!(sent["headers"]["content-type"], "application/json");
    assert_eq!(sent["isBase64Encoded"], false);
    let status = sent["statusCode"].as_u64().unwrap() as u16;
    let body = serde_json::from_str(sent["body"].as_str().unwrap()).expect("every answer is JSON");
    Answer { status, body }
}

/// A queue that keeps jobs in memory, deduplicating by job id like the real ones.
#[derive(Default)]
pub struct MemoryQueue {
    pub jobs: Mutex<Vec<Job>>,
}

impl JobQueue for MemoryQueue {
    async fn enqueue(&self, job: &Job) -> Result<Enqueued, QueueError> {
        let mut jobs = self.jobs.lock().unwrap();
        if jobs.iter().any(|j| j.id == job.id) {
            return Ok(Enqueued::Duplicate);
        }
        jobs.push(job.clone());
        Ok(Enqueued::Queued)
    }
}

impl MemoryQueue {
    pub fn jobs(&self) -> Vec<Job> {
        self.jobs.lock().unwrap().clone()
    }
}

/// A queue that is down.
pub struct DownQueue;

impl JobQueue for DownQueue {
    async fn enqueue(&self, _job: &Job) -> Result<Enqueued, QueueError> {
        Err(QueueError::Unavailable("connection refused".into()))
    }
}
