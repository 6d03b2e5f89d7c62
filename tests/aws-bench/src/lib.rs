//! The AWS bench: slipway's AWS pipeline on one machine, for tests (see `README.md`).
//!
//! - the four Lambda binaries (`target/debug/slipway-*`, the test build's) each under a local
//!   Lambda runtime API ([`runtime`]);
//! - moto (`SLIPWAY_TEST_MOTO_URL`) for SQS, SNS, SSM and EventBridge, every resource named with
//!   this bench's unique suffix;
//! - what Lambda's integrations do, done by the bench: the jobs queue's event source mapping
//!   (batches of up to ten to the spawner, `ReportBatchItemFailures` honoured, failed messages
//!   left for redelivery), EventBridge's asynchronous invocation of the notifier (two retries,
//!   then the events dead-letter queue), API Gateway's HTTP API event to the listener;
//! - a local GitHub API over a real git repository ([`github`]);
//! - a CodeBuild endpoint that runs each StartBuild with slipway's runner ([`codebuild`]),
//!   whose state changes go through a moto EventBridge rule with the template's pattern.

pub mod codebuild;
pub mod github;
pub mod runtime;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use base64::Engine;
use serde_json::{Value, json};
use slipway_testkit::moto::Queue;

pub use codebuild::CodeBuild;
pub use github::LocalGitHub;
pub use runtime::Function;

/// The webhook secret the bench's GitHub signs with.
pub const WEBHOOK_SECRET: &str = "a-long-bench-webhook-secret-0001";
/// The personal token the spawner and CodeBuild's source credentials use.
pub const GITHUB_TOKEN: &str = "ghp_benchtoken000000000000000000000000";
/// The jobs queue's visibility timeout on the bench: a failed batch comes back this soon.
pub const VISIBILITY_TIMEOUT_SECS: i32 = 3;

/// The registry of `tests/services.sh` (htpasswd, 127.0.0.1).
#[derive(Debug, Clone)]
pub struct Registry {
    pub host: String,
    pub user: String,
    pub password: String,
}

impl Registry {
    pub fn from_env() -> Registry {
        let var = |n: &str| {
            std::env::var(n).unwrap_or_else(|_| {
                panic!("{n} is not set: run `source tests/services.sh start` before the bench")
            })
        };
        let file = var("SLIPWAY_TEST_REGISTRY_PASSWORD_FILE");
        Registry {
            host: var("SLIPWAY_TEST_REGISTRY"),
            user: var("SLIPWAY_TEST_REGISTRY_USER"),
            password: std::fs::read_to_string(&file)
                .unwrap_or_else(|e| panic!("{file}: {e}"))
                .trim()
                .to_string(),
        }
    }

    /// The digest `path:tag` has in the registry, if the tag exists.
    pub async fn digest(&self, path: &str, tag: &str) -> Option<String> {
        let resp = reqwest::Client::new()
            .head(format!("http://{}/v2/{path}/manifests/{tag}", self.host))
            .basic_auth(&self.user, Some(&self.password))
            .header(
                "accept",
                "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json",
            )
            .send()
            .await
            .ok()?;
        if !resp.status().is_success() {
            return None;
        }
        resp.headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }
}

/// A name unique to this run (moto and the registry are shared with other tests).
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

/// What the bench's integrations did, for the tests' counts.
#[derive(Default)]
pub struct Traffic {
    /// Each spawner invocation: the SQS records of the batch (as the spawner got them) and the
    /// message ids it reported failed.
    pub spawner_batches: Mutex<Vec<(Vec<Value>, Vec<String>)>>,
    /// Each notifier invocation: the event and its result (or error).
    pub notifier_calls: Mutex<Vec<(Value, Result<Value, Value>)>>,
    /// Events the next deliveries hand the notifier twice (EventBridge's at-least-once).
    pub deliver_twice: AtomicU32,
}

/// One running bench.
pub struct Bench {
    pub unique: String,
    pub repository: String,
    pub repo: PathBuf,
    pub registry: Registry,
    /// `127.0.0.1:5056/<namespace path>`.
    pub namespace: String,
    pub namespace_path: String,
    pub project: String,
    pub parameter_prefix: String,
    pub aws: aws_config::SdkConfig,
    pub sqs: aws_sdk_sqs::Client,
    pub ssm: aws_sdk_ssm::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub deliveries_table: String,
    pub jobs_url: String,
    pub jobs_dlq_url: String,
    pub events_url: String,
    pub events_dlq_url: String,
    pub topic_arn: String,
    /// The subscriber queue of each `format` (`text`, `json`, `chatbot`).
    pub subscribers: BTreeMap<&'static str, String>,
    received: Mutex<BTreeMap<&'static str, Vec<Value>>>,
    pub github: LocalGitHub,
    pub codebuild: CodeBuild,
    pub listener: Function,
    pub spawner: Arc<Function>,
    pub notifier: Arc<Function>,
    pub tasks: Function,
    pub traffic: Arc<Traffic>,
    pumps: Vec<tokio::task::JoinHandle<()>>,
    _work: tempfile::TempDir,
}

impl Drop for Bench {
    fn drop(&mut self) {
        for p in &self.pumps {
            p.abort();
        }
    }
}

impl Bench {
    /// Starts everything for a new git repository served as `repository` (`owner/name`), with
    /// one commit (a README) on `main`. Images go to `<registry>/<unique namespace>/...`.
    pub async fn start(repository: &str) -> Bench {
        let work = tempfile::tempdir().unwrap();
        let repo_dir = work.path().join("repo");
        std::fs::create_dir_all(&repo_dir).unwrap();
        git_out(&repo_dir, &["init", "--quiet", "--initial-branch=main"]);
        std::fs::write(repo_dir.join("README.md"), "bench\n").unwrap();
        git_out(&repo_dir, &["add", "-A"]);
        git_out(&repo_dir, &["commit", "--quiet", "-m", "readme"]);
        let repo = repo_dir.as_path();
        let aws = slipway_testkit::moto::moto_config().await;
        let moto = slipway_testkit::moto::moto_url();
        let registry = Registry::from_env();
        let u = unique("bench");
        let sqs = aws_sdk_sqs::Client::new(&aws);
        let sns = aws_sdk_sns::Client::new(&aws);
        // (the DynamoDB client is made where the table is)
        let ssm = aws_sdk_ssm::Client::new(&aws);
        let events = aws_sdk_eventbridge::Client::new(&aws);

        // SSM: the webhook secret, the GitHub token, the registry credentials.
        let prefix = format!("/{u}");
        let namespace_path = u.clone();
        let namespace = format!("{}/{namespace_path}", registry.host);
        let host = registry.host.replace(':', "_");
        let params = [
            (
                format!("{prefix}/webhook-secret"),
                WEBHOOK_SECRET.to_string(),
            ),
            (format!("{prefix}/github-token"), GITHUB_TOKEN.to_string()),
            (
                format!("{prefix}/registry/{host}/{namespace_path}/username"),
                registry.user.clone(),
            ),
            (
                format!("{prefix}/registry/{host}/{namespace_path}/password"),
                registry.password.clone(),
            ),
        ];
        for (name, value) in &params {
            ssm.put_parameter()
                .name(name)
                .value(value)
                .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
                .send()
                .await
                .unwrap_or_else(|e| panic!("moto SSM put_parameter {name}: {e:?}"));
        }

        // SQS: the jobs queue as the template makes it (FIFO, content-based deduplication,
        // a dead-letter queue after 5 receives), with a short visibility timeout.
        let jobs_dlq = slipway_testkit::moto::queue_named(
            &sqs,
            &format!("{u}-jobs-dlq.fifo"),
            &[(QueueAttributeName::FifoQueue, "true")],
        )
        .await;
        let visibility = VISIBILITY_TIMEOUT_SECS.to_string();
        let redrive =
            json!({"deadLetterTargetArn": jobs_dlq.arn, "maxReceiveCount": 5}).to_string();
        let Queue {
            url: jobs_url,
            arn: jobs_arn,
        } = slipway_testkit::moto::queue_named(
            &sqs,
            &format!("{u}-jobs.fifo"),
            &[
                (QueueAttributeName::FifoQueue, "true"),
                (QueueAttributeName::ContentBasedDeduplication, "true"),
                (QueueAttributeName::VisibilityTimeout, &visibility),
                (QueueAttributeName::RedrivePolicy, &redrive),
            ],
        )
        .await;
        let events_dlq_url =
            slipway_testkit::moto::queue_named(&sqs, &format!("{u}-events-dlq"), &[])
                .await
                .url;
        // EventBridge's target for the notifier rule: the bench invokes the notifier from it.
        let Queue {
            url: events_url,
            arn: events_arn,
        } = slipway_testkit::moto::queue_named(&sqs, &format!("{u}-events"), &[]).await;

        // DynamoDB: the deliveries table as the template makes it (key, TTL attribute).
        let deliveries_table = format!("{u}-deliveries");
        let dynamodb = aws_sdk_dynamodb::Client::new(&aws);
        create_deliveries_table(&dynamodb, &deliveries_table).await;

        // SNS: the topic, and one subscriber queue per format (filter policy on `format`).
        let topic_arn = sns
            .create_topic()
            .name(format!("{u}-notifications"))
            .send()
            .await
            .unwrap()
            .topic_arn
            .unwrap();
        let mut subscribers = BTreeMap::new();
        for format in ["text", "json", "chatbot"] {
            let queue =
                slipway_testkit::moto::queue_named(&sqs, &format!("{u}-sns-{format}"), &[]).await;
            let filter = json!({"format": [format]}).to_string();
            slipway_testkit::moto::subscribe(
                &sns,
                &topic_arn,
                &queue,
                &[("FilterPolicy", &filter)],
            )
            .await;
            subscribers.insert(format, queue.url);
        }

        // EventBridge: a bus with the template's build state rule, targeting the events queue.
        let project = format!("{u}-project");
        let bus = format!("{u}-bus");
        events.create_event_bus().name(&bus).send().await.unwrap();
        let pattern = build_state_pattern(&project);
        events
            .put_rule()
            .name(format!("{u}-build-state"))
            .event_bus_name(&bus)
            .event_pattern(pattern.to_string())
            .send()
            .await
            .unwrap();
        events
            .put_targets()
            .rule(format!("{u}-build-state"))
            .event_bus_name(&bus)
            .targets(
                aws_sdk_eventbridge::types::Target::builder()
                    .id("notifier")
                    .arn(&events_arn)
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();

        // GitHub and CodeBuild.
        let github = LocalGitHub::start().await;
        github.add_repo(repository, repo);
        github.add_token(GITHUB_TOKEN);
        let builds_dir = work.path().join("builds");
        std::fs::create_dir_all(&builds_dir).unwrap();
        let codebuild = CodeBuild::start(codebuild::Settings {
            project: project.clone(),
            sources: [(
                format!("https://github.com/{repository}.git"),
                repo.to_path_buf(),
            )]
            .into_iter()
            .collect(),
            ssm: ssm.clone(),
            events: events.clone(),
            bus: bus.clone(),
            github: Some((github.url.clone(), GITHUB_TOKEN.to_string())),
            work_root: builds_dir,
        })
        .await;

        // The four functions, configured as the template configures them.
        let common = |extra: &[(&str, String)]| -> Vec<(String, String)> {
            let mut env = vec![
                ("AWS_REGION".to_string(), "us-east-1".to_string()),
                ("AWS_ACCESS_KEY_ID".into(), "testing".into()),
                ("AWS_SECRET_ACCESS_KEY".into(), "testing".into()),
                ("AWS_ENDPOINT_URL".into(), moto.clone()),
                ("AWS_ENDPOINT_URL_CODEBUILD".into(), codebuild.url.clone()),
            ];
            env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
            env
        };
        let listener = Function::start(
            "slipway-listener",
            &runtime::lambda_binary("slipway-listener"),
            common(&[
                (slipway_listener::ENV_QUEUE_URL, jobs_url.clone()),
                (
                    slipway_listener::ENV_SECRET_PARAM,
                    format!("{prefix}/webhook-secret"),
                ),
                (slipway_listener::ENV_REPOSITORIES, repository.to_string()),
                (slipway_listener::ENV_BRANCHES, "$default".into()),
                (slipway_listener::ENV_TAGS, "*".into()),
                (slipway_listener::ENV_ALLOW_PRIVATE, "false".into()),
                (slipway_listener::ENV_MAX_BODY, "10485760".into()),
                (
                    slipway_listener::ENV_DELIVERIES_TABLE,
                    deliveries_table.clone(),
                ),
            ]),
        )
        .await;
        let spawner = Arc::new(
            Function::start(
                "slipway-spawner",
                &runtime::lambda_binary("slipway-spawner"),
                common(&[
                    (slipway_spawner::ENV_PROJECT_NAME, project.clone()),
                    (slipway_spawner::ENV_IMAGE_NAMESPACE, namespace.clone()),
                    (
                        slipway_spawner::ENV_GITHUB_TOKEN_PARAM,
                        format!("{prefix}/github-token"),
                    ),
                    (slipway_spawner::ENV_PARAMETER_PREFIX, prefix.clone()),
                    (slipway_spawner::ENV_QUEUE_URL, jobs_url.clone()),
                    (slipway_spawner::ENV_GITHUB_API_URL, github.url.clone()),
                    (slipway_spawner::ENV_MAX_ATTEMPTS, "3".into()),
                ]),
            )
            .await,
        );
        let notifier = Arc::new(
            Function::start(
                "slipway-notifier",
                &runtime::lambda_binary("slipway-notifier"),
                common(&[
                    (slipway_notifier::ENV_TOPIC_ARN, topic_arn.clone()),
                    (slipway_notifier::ENV_QUEUE_URL, jobs_url.clone()),
                    (
                        slipway_notifier::ENV_GITHUB_TOKEN_PARAM,
                        format!("{prefix}/github-token"),
                    ),
                    (
                        slipway_notifier::ENV_CODEBUILD_REPORTS_STATUS,
                        "true".into(),
                    ),
                    (slipway_notifier::ENV_NOTIFY_IN_PROGRESS, "false".into()),
                    (slipway_notifier::ENV_DEPLOY_TARGETS, String::new()),
                ]),
            )
            .await,
        );
        let tasks = Function::start(
            "slipway-tasks",
            &runtime::lambda_binary("slipway-tasks"),
            common(&[
                (slipway_tasks::ENV_PROJECT_NAME, project.clone()),
                (slipway_tasks::ENV_RETENTION_DAYS, "30".into()),
                (slipway_tasks::ENV_TOPIC_ARN, topic_arn.clone()),
                (
                    slipway_tasks::ENV_CALL_TARGETS_PARAM,
                    format!("{prefix}/call-targets"),
                ),
                (slipway_tasks::ENV_CALL_CONCURRENCY, "4".into()),
                (slipway_tasks::ENV_DRY_RUN, "false".into()),
            ]),
        )
        .await;

        let traffic = Arc::new(Traffic::default());
        let pumps = vec![
            tokio::spawn(sqs_event_source(
                sqs.clone(),
                jobs_url.clone(),
                jobs_arn,
                spawner.clone(),
                traffic.clone(),
            )),
            tokio::spawn(eventbridge_to_notifier(
                sqs.clone(),
                events_url.clone(),
                events_dlq_url.clone(),
                notifier.clone(),
                traffic.clone(),
            )),
        ];
        Bench {
            unique: u,
            repository: repository.to_string(),
            repo: repo_dir.clone(),
            registry,
            namespace,
            namespace_path,
            project,
            parameter_prefix: prefix,
            aws,
            sqs,
            ssm,
            dynamodb,
            deliveries_table,
            jobs_url,
            jobs_dlq_url: jobs_dlq.url,
            events_url,
            events_dlq_url,
            topic_arn,
            subscribers,
            received: Mutex::default(),
            github,
            codebuild,
            listener,
            spawner,
            notifier,
            tasks,
            traffic,
            pumps,
            _work: work,
        }
    }

    /// Writes `text` to `path` in the repository's work tree.
    pub fn write(&self, path: &str, text: &str) {
        let p = self.repo.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    /// Commits everything on the current branch; answers the commit.
    pub fn commit(&self, message: &str) -> String {
        git_out(&self.repo, &["add", "-A"]);
        git_out(&self.repo, &["commit", "--quiet", "-m", message]);
        self.head()
    }

    pub fn head(&self) -> String {
        git_out(&self.repo, &["rev-parse", "HEAD"])
    }

    /// A GitHub push delivery's body for `before..after` on `git_ref`, in the shape of GitHub's
    /// documented payload (`tests/fixtures/github/push-branch.json`), naming this repository.
    pub fn push_body(&self, git_ref: &str, before: &str, after: &str) -> Vec<u8> {
        let fixture =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/github/push-branch.json");
        let mut p: Value = serde_json::from_slice(&std::fs::read(&fixture).unwrap()).unwrap();
        let (owner, name) = self.repository.split_once('/').unwrap();
        let default_branch = git_out(&self.repo, &["symbolic-ref", "--short", "HEAD"]);
        p["ref"] = json!(git_ref);
        p["before"] = json!(before);
        p["after"] = json!(after);
        p["created"] = json!(false);
        p["forced"] = json!(false);
        let r = &mut p["repository"];
        r["name"] = json!(name);
        r["full_name"] = json!(self.repository);
        r["owner"]["login"] = json!(owner);
        r["owner"]["name"] = json!(owner);
        r["html_url"] = json!(format!("https://github.com/{}", self.repository));
        r["url"] = json!(format!("https://github.com/{}", self.repository));
        r["clone_url"] = json!(format!("https://github.com/{}.git", self.repository));
        r["default_branch"] = json!(default_branch);
        r["master_branch"] = json!(default_branch);
        let changed = git_out(
            &self.repo,
            &["diff", "--name-only", &format!("{before}..{after}")],
        );
        let commit = json!({
            "id": after, "tree_id": git_out(&self.repo, &["rev-parse", &format!("{after}^{{tree}}")]),
            "distinct": true, "message": "bench push", "timestamp": "2026-12-03T09:02:11Z",
            "url": format!("https://github.com/{}/commit/{after}", self.repository),
            "author": {"name": "bench", "email": "bench@example.com", "username": "bench"},
            "committer": {"name": "bench", "email": "bench@example.com", "username": "bench"},
            "added": [], "removed": [], "modified": changed.lines().collect::<Vec<_>>(),
        });
        p["commits"] = json!([commit.clone()]);
        p["head_commit"] = commit;
        serde_json::to_vec(&p).unwrap()
    }

    /// API Gateway's HTTP API event (payload 2.0) for a signed GitHub delivery.
    pub fn apigw_event(&self, event: &str, delivery: &str, body: &[u8]) -> Value {
        let sig = slipway_core::webhook::sign(WEBHOOK_SECRET.as_bytes(), body);
        apigw_event(
            &[
                ("content-type", "application/json"),
                ("x-github-event", event),
                ("x-github-delivery", delivery),
                ("x-hub-signature-256", &sig),
                ("user-agent", "GitHub-Hookshot/044aadd"),
            ],
            body,
        )
    }

    /// Delivers a webhook through "API Gateway" to the listener: the HTTP status and JSON body
    /// GitHub would see.
    pub async fn deliver(&self, event: &str, delivery: &str, body: &[u8]) -> (u16, Value) {
        let answer = self
            .listener
            .invoke(self.apigw_event(event, delivery, body))
            .await
            .unwrap_or_else(|e| panic!("the listener failed: {e}\n{}", self.listener.log_text()));
        let status = answer["statusCode"].as_u64().unwrap_or(0) as u16;
        let body = answer["body"]
            .as_str()
            .and_then(|b| serde_json::from_str(b).ok())
            .unwrap_or(Value::Null);
        (status, body)
    }

    /// Waits until nothing moves: the jobs and events queues are empty, no build runs, and no
    /// function is busy, for a second in a row.
    pub async fn wait_idle(&self, timeout: Duration) {
        let until = Instant::now() + timeout;
        let mut quiet_since: Option<Instant> = None;
        loop {
            let busy = self.queue_depth(&self.jobs_url).await > 0
                || self.queue_depth(&self.events_url).await > 0
                || self.codebuild.builds().iter().any(|b| b.end.is_none());
            if busy {
                quiet_since = None;
            } else if quiet_since.get_or_insert_with(Instant::now).elapsed()
                > Duration::from_secs(2)
            {
                return;
            }
            assert!(
                Instant::now() < until,
                "the bench did not settle within {timeout:?}; spawner log:\n{}\nnotifier log:\n{}",
                self.spawner.log_text(),
                self.notifier.log_text()
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Visible plus in-flight messages.
    pub async fn queue_depth(&self, url: &str) -> u64 {
        let out = self
            .sqs
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .unwrap();
        let attrs = out.attributes.unwrap_or_default();
        [
            QueueAttributeName::ApproximateNumberOfMessages,
            QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
        ]
        .iter()
        .map(|k| {
            attrs
                .get(k)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        })
        .sum()
    }

    /// Every SNS message of `format` received so far (SNS's envelope: `Subject`, `Message`,
    /// `MessageAttributes`), oldest first.
    pub async fn sns_messages(&self, format: &'static str) -> Vec<Value> {
        let url = &self.subscribers[format];
        let fresh = slipway_testkit::moto::drain_bodies(&self.sqs, url, 0).await;
        let mut received = self.received.lock().unwrap();
        let list = received.entry(format).or_default();
        list.extend(
            fresh
                .iter()
                .map(|body| serde_json::from_str(body).unwrap_or(Value::Null)),
        );
        list.clone()
    }

    /// Runs the tasks Lambda's weekly cleanup as a new instance whose clock is `offset` ahead.
    pub async fn cleanup_at(&mut self, offset: Duration) -> Result<Value, Value> {
        let secs = offset.as_secs().to_string();
        self.tasks
            .restart(&[("SLIPWAY_TEST_CLOCK_OFFSET_SECONDS", &secs)])
            .await;
        self.tasks.invoke(json!({"task": "cleanup"})).await
    }
}

/// The deliveries table with the template's key and TTL attribute.
pub async fn create_deliveries_table(dynamodb: &aws_sdk_dynamodb::Client, name: &str) {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
        TimeToLiveSpecification,
    };
    let t = slipway_stack::template::Template::load(
        &slipway_stack::workspace_root().join("cloudformation/slipway.yml"),
    )
    .expect("the template loads");
    let props = &t.resource("DeliveriesTable")["Properties"];
    let key = props["KeySchema"][0]["AttributeName"].as_str().unwrap();
    let ttl = props["TimeToLiveSpecification"]["AttributeName"]
        .as_str()
        .unwrap();
    assert_eq!(
        key,
        slipway_aws::deliveries::KEY,
        "the template's key is the code's"
    );
    assert_eq!(
        ttl,
        slipway_aws::deliveries::EXPIRES_AT,
        "the template's TTL attribute is the code's"
    );
    dynamodb
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(key)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name(key)
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("moto DynamoDB create_table: {e:?}"));
    dynamodb
        .update_time_to_live()
        .table_name(name)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .attribute_name(ttl)
                .enabled(true)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
}

/// The template's `BuildStateRule` pattern with the project name resolved.
fn build_state_pattern(project: &str) -> Value {
    let template = slipway_stack::template::Template::load(
        &slipway_stack::workspace_root().join("cloudformation/slipway.yml"),
    )
    .expect("the template loads");
    let mut pattern = template.resource("BuildStateRule")["Properties"]["EventPattern"].clone();
    pattern["detail"]["project-name"] = json!([project]);
    pattern
}

fn git_out(repo: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(repo)
        .args([
            "-c",
            "user.name=bench",
            "-c",
            "user.email=bench@slipway.invalid",
        ])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// API Gateway's HTTP API event (payload 2.0), the body base64-encoded as API Gateway sends a
/// body it does not know to be text.
pub fn apigw_event(headers: &[(&str, &str)], body: &[u8]) -> Value {
    let h: serde_json::Map<String, Value> = headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), json!(v)))
        .collect();
    json!({
        "version": "2.0", "routeKey": "POST /hooks/github", "rawPath": "/hooks/github",
        "rawQueryString": "", "headers": h,
        "requestContext": {
            "accountId": codebuild::ACCOUNT, "apiId": "bench", "domainName": "bench.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "bench", "requestId": uuid::Uuid::new_v4().to_string(), "routeKey": "POST /hooks/github",
            "stage": "$default", "time": "03/Dec/2026:19:03:58 +0000", "timeEpoch": 1796324638390u64,
            "http": {"method": "POST", "path": "/hooks/github", "protocol": "HTTP/1.1",
                     "sourceIp": "192.0.2.1", "userAgent": "GitHub-Hookshot/044aadd"}
        },
        "body": base64::engine::general_purpose::STANDARD.encode(body),
        "isBase64Encoded": true
    })
}

/// Lambda's SQS event source mapping for the spawner: batches of up to ten, the
/// `batchItemFailures` left on the queue (they come back after the visibility timeout), the rest
/// deleted. A failed invocation deletes nothing.
async fn sqs_event_source(
    sqs: aws_sdk_sqs::Client,
    url: String,
    arn: String,
    spawner: Arc<Function>,
    traffic: Arc<Traffic>,
) {
    loop {
        let Ok(out) = sqs
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send()
            .await
        else {
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        };
        let msgs = out.messages.unwrap_or_default();
        if msgs.is_empty() {
            continue;
        }
        let records: Vec<Value> = msgs
            .iter()
            .map(|m| slipway_testkit::lambda::sqs_record(m, &arn))
            .collect();
        let ids: Vec<String> = msgs
            .iter()
            .map(|m| m.message_id().unwrap_or_default().to_string())
            .collect();
        let answer = spawner.invoke(json!({"Records": records.clone()})).await;
        let failed: Vec<String> = match &answer {
            Ok(v) => v["batchItemFailures"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|f| f["itemIdentifier"].as_str().map(str::to_string))
                .collect(),
            Err(_) => ids.clone(),
        };
        traffic
            .spawner_batches
            .lock()
            .unwrap()
            .push((records.clone(), failed.clone()));
        for m in &msgs {
            if !failed.iter().any(|f| Some(f.as_str()) == m.message_id()) {
                let _ = sqs
                    .delete_message()
                    .queue_url(&url)
                    .receipt_handle(m.receipt_handle().unwrap())
                    .send()
                    .await;
            }
        }
    }
}

/// EventBridge's asynchronous invocation of the notifier: each event from the rule's target
/// queue, retried twice on error, then sent to the events dead-letter queue.
async fn eventbridge_to_notifier(
    sqs: aws_sdk_sqs::Client,
    url: String,
    dlq_url: String,
    notifier: Arc<Function>,
    traffic: Arc<Traffic>,
) {
    loop {
        let Ok(out) = sqs
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
        else {
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        };
        for m in out.messages.unwrap_or_default() {
            let event: Value =
                serde_json::from_str(m.body().unwrap_or("null")).unwrap_or(Value::Null);
            let times = if traffic
                .deliver_twice
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
            {
                2
            } else {
                1
            };
            for _ in 0..times {
                let mut last = Err(Value::Null);
                for _attempt in 0..3 {
                    last = notifier.invoke(event.clone()).await;
                    traffic
                        .notifier_calls
                        .lock()
                        .unwrap()
                        .push((event.clone(), last.clone()));
                    if last.is_ok() {
                        break;
                    }
                }
                if last.is_err() {
                    let _ = sqs
                        .send_message()
                        .queue_url(&dlq_url)
                        .message_body(event.to_string())
                        .send()
                        .await;
                }
            }
            let _ = sqs
                .delete_message()
                .queue_url(&url)
                .receipt_handle(m.receipt_handle().unwrap())
                .send()
                .await;
        }
    }
}
