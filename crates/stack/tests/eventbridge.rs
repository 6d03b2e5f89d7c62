//! The template's EventBridge rules on a real bus (moto server, SLIPWAY_TEST_MOTO_URL): the build
//! state rule's pattern takes slipway's CodeBuild state changes and nothing else, and the
//! scheduled rebuild's target settings put a scheduled event on a FIFO queue made like the jobs
//! queue. moto does not apply a target's constant `Input`; template.rs checks that input against
//! the spawner's own parser instead.

use aws_sdk_eventbridge::types::{PutEventsRequestEntry, SqsParameters, Target};
use aws_sdk_sqs::types::QueueAttributeName;
use serde_json::{Value, json};
use slipway_stack::template::{Template, reference};
use slipway_stack::workspace_root;
use std::collections::BTreeSet;

/// The stack name the template's `!Ref AWS::StackName` resolves to in these tests.
const STACK: &str = "slipway";

fn template() -> Template {
    Template::load(&workspace_root().join("cloudformation/slipway.yml"))
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Resolves the `!Ref`s these rules use, as CloudFormation would for stack `slipway`.
fn resolve(v: &Value, refs: &[(&str, &str)]) -> Value {
    if let Some(name) = reference(v) {
        return match refs.iter().find(|(k, _)| *k == name) {
            Some((_, val)) => Value::String(val.to_string()),
            None => panic!("the test cannot resolve !Ref {name}"),
        };
    }
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, x)| (k.clone(), resolve(x, refs)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(|x| resolve(x, refs)).collect()),
        other => other.clone(),
    }
}

struct Moto {
    events: aws_sdk_eventbridge::Client,
    sqs: aws_sdk_sqs::Client,
    unique: String,
}

async fn moto() -> Moto {
    let conf = slipway_testkit::moto::moto_config().await;
    Moto {
        events: aws_sdk_eventbridge::Client::new(&conf),
        sqs: aws_sdk_sqs::Client::new(&conf),
        unique: slipway_testkit::unique(""),
    }
}

impl Moto {
    async fn bus(&self, name: &str) -> String {
        let bus = format!("{name}-{}", self.unique);
        self.events
            .create_event_bus()
            .name(&bus)
            .send()
            .await
            .unwrap();
        bus
    }

    /// A queue named `name` made unique, with the given attributes; returns (url, arn).
    async fn queue(
        &self,
        name: &str,
        attributes: &[(QueueAttributeName, String)],
    ) -> (String, String) {
        let attributes: Vec<(QueueAttributeName, &str)> = attributes
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str()))
            .collect();
        let q = slipway_testkit::moto::queue(&self.sqs, name, &attributes).await;
        (q.url, q.arn)
    }

    async fn rule(&self, bus: &str, name: &str, pattern: &Value, target: Target) {
        self.events
            .put_rule()
            .name(name)
            .event_bus_name(bus)
            .event_pattern(pattern.to_string())
            .send()
            .await
            .unwrap();
        let out = self
            .events
            .put_targets()
            .rule(name)
            .event_bus_name(bus)
            .targets(target)
            .send()
            .await
            .unwrap();
        assert_eq!(out.failed_entry_count, 0, "{out:?}");
    }

    async fn put(&self, bus: &str, event: &Value) {
        let entry = PutEventsRequestEntry::builder()
            .event_bus_name(bus)
            .source(event["source"].as_str().unwrap())
            .detail_type(event["detail-type"].as_str().unwrap())
            .detail(event["detail"].to_string())
            .set_resources(Some(
                event["resources"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| r.as_str().unwrap().to_string())
                    .collect(),
            ))
            .build();
        let out = self
            .events
            .put_events()
            .entries(entry)
            .send()
            .await
            .unwrap();
        assert_eq!(out.failed_entry_count, 0, "{out:?}");
    }

    /// Every message on the queue: (body, message group id).
    async fn drain(&self, url: &str) -> Vec<(Value, Option<String>)> {
        let mut out = Vec::new();
        loop {
            let got = self
                .sqs
                .receive_message()
                .queue_url(url)
                .max_number_of_messages(10)
                .message_system_attribute_names(
                    aws_sdk_sqs::types::MessageSystemAttributeName::MessageGroupId,
                )
                .send()
                .await
                .unwrap();
            let messages = got.messages.unwrap_or_default();
            if messages.is_empty() {
                return out;
            }
            for m in messages {
                let body: Value = serde_json::from_str(m.body.as_deref().unwrap()).unwrap();
                let group = m.attributes.as_ref().and_then(|a| {
                    a.get(&aws_sdk_sqs::types::MessageSystemAttributeName::MessageGroupId)
                        .cloned()
                });
                self.sqs
                    .delete_message()
                    .queue_url(url)
                    .receipt_handle(m.receipt_handle.unwrap())
                    .send()
                    .await
                    .unwrap();
                out.push((body, group));
            }
        }
    }
}

fn fixture(name: &str) -> Value {
    let path = workspace_root()
        .join("crates/stack/tests/fixtures")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn build_event(project: &str, status: &str, detail_type: &str) -> Value {
    let mut e = fixture("codebuild-build-state-change.json");
    e["detail"]["project-name"] = json!(project);
    e["detail"]["build-status"] = json!(status);
    e["detail-type"] = json!(detail_type);
    e
}

/// The notifier rule's pattern, resolved for stack `slipway` (project name = stack name).
fn build_state_pattern(t: &Template) -> Value {
    let project_name = &t.resource("BuildProject")["Properties"]["Name"];
    assert_eq!(
        reference(project_name),
        Some("AWS::StackName"),
        "project name"
    );
    resolve(
        &t.resource("BuildStateRule")["Properties"]["EventPattern"],
        &[("BuildProject", STACK)],
    )
}

#[tokio::test]
async fn the_build_state_rule_takes_slipways_codebuild_state_changes_and_nothing_else() {
    let t = template();
    let m = moto().await;
    let bus = m.bus("slipway-builds").await;
    let (url, arn) = m.queue(&format!("notifier-{}", m.unique), &[]).await;
    let rule = format!("build-state-{}", m.unique);
    m.rule(
        &bus,
        &rule,
        &build_state_pattern(&t),
        Target::builder().id("notifier").arn(arn).build().unwrap(),
    )
    .await;

    for event in [
        build_event(STACK, "SUCCEEDED", "CodeBuild Build State Change"),
        build_event(STACK, "IN_PROGRESS", "CodeBuild Build State Change"),
        build_event(STACK, "FAILED", "CodeBuild Build State Change"),
        build_event(
            "someone-elses-project",
            "SUCCEEDED",
            "CodeBuild Build State Change",
        ),
        build_event(STACK, "SUCCEEDED", "CodeBuild Build Phase Change"),
        fixture("scheduled-event.json"),
    ] {
        m.put(&bus, &event).await;
    }

    let got: BTreeSet<(String, String)> = m
        .drain(&url)
        .await
        .into_iter()
        .map(|(body, _)| {
            assert_eq!(body["source"], "aws.codebuild");
            assert_eq!(body["detail-type"], "CodeBuild Build State Change");
            (
                body["detail"]["project-name"].as_str().unwrap().to_string(),
                body["detail"]["build-status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let want: BTreeSet<(String, String)> = ["SUCCEEDED", "IN_PROGRESS", "FAILED"]
        .into_iter()
        .map(|s| (STACK.to_string(), s.to_string()))
        .collect();
    assert_eq!(got, want);
}

#[tokio::test]
async fn a_scheduled_rebuild_reaches_the_fifo_jobs_queue_in_the_repositorys_group() {
    let t = template();
    let m = moto().await;
    let bus = m.bus("slipway-schedules").await;

    // A FIFO queue made with the jobs queue's own settings: EventBridge cannot set a
    // deduplication id, so without content-based deduplication nothing would arrive.
    let jobs = &t.resource("JobsQueue")["Properties"];
    let (jobs_url, jobs_arn) = m
        .queue(
            &format!("jobs-{}.fifo", m.unique),
            &[
                (QueueAttributeName::FifoQueue, jobs["FifoQueue"].to_string()),
                (
                    QueueAttributeName::ContentBasedDeduplication,
                    jobs["ContentBasedDeduplication"].to_string(),
                ),
            ],
        )
        .await;
    let (notifier_url, notifier_arn) = m.queue(&format!("notifier-{}", m.unique), &[]).await;

    let target = resolve(
        &t.resource("RebuildRule")["Properties"]["Targets"][0],
        &[("RebuildRepository", "acme/images")],
    );
    let group = target["SqsParameters"]["MessageGroupId"]
        .as_str()
        .unwrap()
        .to_string();
    // What EventBridge delivers for a schedule rule: source aws.events, detail-type Scheduled Event.
    let schedule_pattern = json!({"source": ["aws.events"], "detail-type": ["Scheduled Event"]});
    m.rule(
        &bus,
        &format!("rebuild-{}", m.unique),
        &schedule_pattern,
        Target::builder()
            .id(target["Id"].as_str().unwrap())
            .arn(jobs_arn)
            .sqs_parameters(SqsParameters::builder().message_group_id(&group).build())
            .build()
            .unwrap(),
    )
    .await;
    m.rule(
        &bus,
        &format!("build-state-{}", m.unique),
        &build_state_pattern(&t),
        Target::builder()
            .id("notifier")
            .arn(notifier_arn)
            .build()
            .unwrap(),
    )
    .await;

    m.put(&bus, &fixture("scheduled-event.json")).await;
    m.put(
        &bus,
        &build_event(STACK, "SUCCEEDED", "CodeBuild Build State Change"),
    )
    .await;

    let jobs = m.drain(&jobs_url).await;
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    assert_eq!(jobs[0].0["detail-type"], "Scheduled Event");
    assert_eq!(jobs[0].1.as_deref(), Some("acme/images"));
    let notified = m.drain(&notifier_url).await;
    assert_eq!(
        notified.len(),
        1,
        "the scheduled event must not reach the notifier: {notified:?}"
    );
    assert_eq!(notified[0].0["source"], "aws.codebuild");
}
