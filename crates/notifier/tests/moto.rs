//! The notifier's AWS sinks against moto (SLIPWAY_TEST_MOTO_URL; `source tests/services.sh
//! start`): what an SQS queue subscribed to the SNS topic receives (the SNS envelope's Subject,
//! Message and MessageAttributes, RawMessageDelivery off), filtered by `format`; children's jobs
//! through a real FIFO queue, once per child even when the event is delivered twice.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::{Value, json};
use slipway_aws::sqs::SqsJobQueue;
use slipway_calls::deploy::DeployCalls;
use slipway_core::notify::NotifyConfig;
use slipway_notifier::{AwsSinks, handle_event};
use slipway_testkit::moto;

const SHA: &str = "6113728f27ae82c7b1a177c8d03f9e96e0adf246";
const BUILD: &str =
    "arn:aws:codebuild:us-west-2:123456789012:build/slipway:0bd0c2a5-9e5c-4b0e-8f43-6b1f1c2e7a11";
const LOG: &str = "https://console.aws.amazon.com/cloudwatch/home?region=us-west-2#logEvent:group=/aws/codebuild/slipway;stream=0bd0c2a5-9e5c-4b0e-8f43-6b1f1c2e7a11";

fn fixture(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/codebuild")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

struct World {
    aws: aws_config::SdkConfig,
    topic: String,
    /// Subscribed queues by the `format` their filter policy selects.
    subscribers: BTreeMap<&'static str, String>,
    jobs: String,
}

async fn world() -> World {
    let aws = moto::moto_config().await;
    let sns = aws_sdk_sns::Client::new(&aws);
    let sqs = aws_sdk_sqs::Client::new(&aws);
    let topic = moto::topic(&sns, "slipway-notes-").await;
    let mut subscribers = BTreeMap::new();
    for format in ["text", "json", "chatbot"] {
        let q = moto::queue(&sqs, &format!("notes-{format}-"), &[]).await;
        let policy = json!({"format": [format]}).to_string();
        moto::subscribe(
            &sns,
            &topic,
            &q,
            &[("RawMessageDelivery", "false"), ("FilterPolicy", &policy)],
        )
        .await;
        subscribers.insert(format, q.url);
    }
    let jobs = moto::fifo_queue(&sqs, "jobs-").await.url;
    World {
        aws,
        topic,
        subscribers,
        jobs,
    }
}

impl World {
    fn sinks(&self) -> AwsSinks<slipway_calls::FileSecrets> {
        AwsSinks {
            sns: aws_sdk_sns::Client::new(&self.aws),
            topic_arn: self.topic.clone(),
            queue: SqsJobQueue::new(aws_sdk_sqs::Client::new(&self.aws), self.jobs.clone()),
            github: Err("commit statuses are not in use".into()),
            deploy: DeployCalls::new(BTreeMap::new(), slipway_calls::FileSecrets).unwrap(),
        }
    }

    /// Every message in a queue (bodies), until it is empty.
    async fn drain(&self, url: &str) -> Vec<String> {
        moto::drain_bodies(&aws_sdk_sqs::Client::new(&self.aws), url, 1).await
    }

    async fn envelopes(&self, format: &str) -> Vec<Value> {
        self.drain(&self.subscribers[format])
            .await
            .iter()
            .map(|b| serde_json::from_str(b).unwrap())
            .collect()
    }
}

fn cfg() -> NotifyConfig {
    NotifyConfig {
        in_progress: false,
        commit_status: false,
    }
}

fn attributes(envelope: &Value) -> BTreeMap<String, String> {
    envelope["MessageAttributes"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| {
            assert_eq!(v["Type"], "String");
            (k.clone(), v["Value"].as_str().unwrap().to_string())
        })
        .collect()
}

fn expected_attributes(format: &str, status: &str) -> BTreeMap<String, String> {
    [
        ("format", format),
        ("status", status),
        ("repository", "acme/site"),
        ("image", "acme/web"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

#[tokio::test]
async fn a_success_delivered_twice_is_heard_and_queues_each_child_once() {
    let w = world().await;
    let sinks = w.sinks();
    let event = fixture("succeeded.json");
    for _ in 0..2 {
        let r = handle_event(&event, &cfg(), &sinks).await;
        assert_eq!(r["publish"], "published", "{r}");
    }

    let jobs: Vec<slipway_core::Job> = w
        .drain(&w.jobs)
        .await
        .iter()
        .map(|b| slipway_core::job::from_json(b).unwrap())
        .collect();
    let mut images: Vec<&str> = jobs.iter().map(|j| j.images[0].as_str()).collect();
    images.sort();
    assert_eq!(images, ["acme/web-debug", "acme/web-slim"], "{jobs:?}");
    for j in &jobs {
        assert_eq!(j.commit, SHA);
        assert_eq!(
            j.trigger,
            slipway_core::Trigger::Parent {
                image: "acme/web".into(),
                build_id: BUILD.into()
            }
        );
    }

    let text = w.envelopes("text").await;
    assert_eq!(text.len(), 2, "one message per delivery: {text:?}");
    let e = &text[0];
    assert_eq!(e["Type"], "Notification");
    assert_eq!(e["Subject"], "✔ acme/web:main built");
    let digest = format!("sha256:{}", "4f".repeat(32));
    let body = format!(
        "✔ acme/web:main built

Repository: acme/site
Ref:        refs/heads/main
Commit:     {SHA} https://github.com/acme/site/commit/{SHA}
Image:      acme/web
Tags:       main, sha-6113728
Digest:     {digest}
Status:     SUCCEEDED
Duration:   1m 59s
Log:        {LOG}
Build:      {BUILD}

Child queued:   acme/web-debug
Child queued:   acme/web-slim
Deploy prod-web: not_configured
Deploy staging-web: not_configured
"
    );
    assert_eq!(e["Message"], body);
    assert_eq!(attributes(e), expected_attributes("text", "SUCCEEDED"));

    let machine = w.envelopes("json").await;
    assert_eq!(machine.len(), 2);
    assert_eq!(
        attributes(&machine[0]),
        expected_attributes("json", "SUCCEEDED")
    );
    let m: Value = serde_json::from_str(machine[0]["Message"].as_str().unwrap()).unwrap();
    assert_eq!(m["status"], "SUCCEEDED");
    assert_eq!(m["digest"], digest);
    assert_eq!(m["tags"], json!(["main", "sha-6113728"]));
    assert_eq!(m["log_url"], LOG);
    assert_eq!(m["children"]["queued"].as_array().unwrap().len(), 2);

    let chat = w.envelopes("chatbot").await;
    assert_eq!(chat.len(), 2);
    let c: Value = serde_json::from_str(chat[0]["Message"].as_str().unwrap()).unwrap();
    assert_eq!(c["version"], "1.0");
    assert_eq!(c["source"], "custom");
    assert_eq!(c["content"]["title"], "✔ acme/web:main built");
}

#[tokio::test]
async fn a_failure_queues_no_child_and_says_so_with_the_failing_phase() {
    let w = world().await;
    let r = handle_event(&fixture("failed.json"), &cfg(), &w.sinks()).await;
    assert_eq!(r["publish"], "published", "{r}");
    assert!(
        w.drain(&w.jobs).await.is_empty(),
        "a failed parent queues no child"
    );
    let text = w.envelopes("text").await;
    assert_eq!(text.len(), 1);
    let e = &text[0];
    assert_eq!(e["Subject"], "✘ acme/web:main failed");
    let body = format!(
        "✘ acme/web:main failed

Repository: acme/site
Ref:        refs/heads/main
Commit:     {SHA} https://github.com/acme/site/commit/{SHA}
Image:      acme/web
Tags:       main, sha-6113728
Status:     FAILED
Duration:   1m 59s
Failed in:  BUILD (FAILED)
Reason:     COMMAND_EXECUTION_ERROR: Error while executing command: docker buildx build --file \"$SLIPWAY_DOCKERFILE\" \"$SLIPWAY_CONTEXT\". Reason: exit status 1
Log:        {LOG}
Build:      {BUILD}

Child skipped:  acme/web-debug (parent acme/web failed)
Child skipped:  acme/web-slim (parent acme/web failed)
"
    );
    assert_eq!(e["Message"], body);
    assert_eq!(attributes(e), expected_attributes("text", "FAILED"));
}

#[tokio::test]
async fn stopped_builds_and_long_names_reach_subscribers_within_the_subject_limit() {
    let w = world().await;
    let mut event = fixture("stopped.json");
    let name = format!("registry.example.com/acme/{}/web", "a".repeat(170));
    assert_eq!(name.len(), 200);
    for v in event["detail"]["additional-information"]["environment"]["environment-variables"]
        .as_array_mut()
        .unwrap()
    {
        if v["name"] == "SLIPWAY_IMAGE" {
            v["value"] = json!(name);
        }
    }
    let r = handle_event(&event, &cfg(), &w.sinks()).await;
    assert_eq!(r["publish"], "published", "{r}");
    let text = w.envelopes("text").await;
    assert_eq!(text.len(), 1);
    let subject = text[0]["Subject"].as_str().unwrap();
    assert!(subject.chars().count() <= 100, "{subject}");
    assert!(
        subject.starts_with("✘ …") && subject.ends_with("/web:main stopped"),
        "{subject}"
    );
    assert_eq!(attributes(&text[0])["image"], name);
    assert_eq!(attributes(&text[0])["status"], "STOPPED");
}

#[tokio::test]
async fn a_malformed_event_is_acknowledged_and_nothing_reaches_anyone() {
    let w = world().await;
    let sinks = w.sinks();
    let mut broken = fixture("succeeded.json");
    broken["detail"]["additional-information"]["environment"]["environment-variables"] =
        json!([{"name": "SLIPWAY_JOB_ID", "value": "push-1"}]);
    for event in [json!({"garbage": true}), broken, fixture("sample.json")] {
        let r = handle_event(&event, &cfg(), &sinks).await;
        assert_eq!(r["status"], "ignored", "{r}");
    }
    for format in ["text", "json", "chatbot"] {
        assert!(w.envelopes(format).await.is_empty(), "{format}");
    }
    assert!(w.drain(&w.jobs).await.is_empty());
}
