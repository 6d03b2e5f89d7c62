//! The notifier Lambda (`slipway-notifier`), invoked by EventBridge with CodeBuild's "Build State
//! Change" events for slipway's build project. The logic is `slipway_core::notify`; this crate
//! holds its AWS adapters:
//!
//! - SNS: three messages per result, one per form, told apart by the `format` message attribute
//!   (`text`, `json`, `chatbot`), each also carrying `status`, `repository` and `image` (see
//!   `docs/notifications.md`; `slipway_aws::sns::publish_notification`);
//! - GitHub commit statuses through `slipway_github::GitHub`, token from SSM;
//! - deploy calls (`slipway_calls::deploy::DeployCalls`): signed, retried with backoff;
//! - children's jobs on the jobs queue (`SqsJobQueue`, FIFO deduplication by job id);
//! - metric lines: a finished build's result and how long it ran
//!   (`slipway_core::metrics::build_finished`), a notification published or failed
//!   (`slipway_core::metrics::notification`).
//!
//! A malformed event, or one from a build slipway did not start, is logged and acknowledged: the
//! function answers Ok (EventBridge would only retry the same bytes) and publishes nothing.

use slipway_calls::deploy;

use std::collections::BTreeMap;

use serde_json::{Value, json};
use slipway_aws::sqs::SqsJobQueue;
use slipway_aws::ssm::SsmSecrets;
use slipway_core::Job;
use slipway_core::listener::{Enqueued, JobQueue};
use slipway_core::notify::{
    self, BuildOutcome, CommitStatus, DeployResult, Notification, NotifyConfig, SinkError, Sinks,
};
use slipway_core::secrets::SecretReader;
use slipway_core::settings::{SettingError, Vars};

/// Every environment variable the function reads (checked against the template).
pub const ENV_VARS: &[&str] = &[
    ENV_TOPIC_ARN,
    ENV_QUEUE_URL,
    ENV_GITHUB_TOKEN_PARAM,
    ENV_CODEBUILD_REPORTS_STATUS,
    ENV_NOTIFY_IN_PROGRESS,
    ENV_DEPLOY_TARGETS,
    slipway_aws::metrics::ENV_STACK_NAME,
];
/// SNS topic of the notifications (required).
pub const ENV_TOPIC_ARN: &str = "SLIPWAY_TOPIC_ARN";
/// The jobs queue, for children's jobs (required).
pub const ENV_QUEUE_URL: &str = "SLIPWAY_QUEUE_URL";
/// SSM parameter holding the GitHub token for commit statuses (optional: without it, no status).
pub const ENV_GITHUB_TOKEN_PARAM: &str = "SLIPWAY_GITHUB_TOKEN_PARAM";
/// `true`: CodeBuild's own status reporting is in use; slipway sets no commit status.
pub const ENV_CODEBUILD_REPORTS_STATUS: &str = "SLIPWAY_CODEBUILD_REPORTS_STATUS";
/// `true`: report builds as they start (a message and a `pending` status) too.
pub const ENV_NOTIFY_IN_PROGRESS: &str = "SLIPWAY_NOTIFY_IN_PROGRESS";
/// Deploy targets as JSON: `{"name": {"url", "service"?, "secret_parameter", ...}}` (optional).
pub const ENV_DEPLOY_TARGETS: &str = "SLIPWAY_DEPLOY_TARGETS";

/// Why the function cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Setting(#[from] SettingError),
}

impl StartupError {
    pub fn code(&self) -> &'static str {
        match self {
            StartupError::Setting(e) => e.code(),
        }
    }
}

/// The function's settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub topic_arn: String,
    pub queue_url: String,
    pub github_token_param: Option<String>,
    pub notify: NotifyConfig,
    pub deploy_targets: BTreeMap<String, notify::DeployTarget>,
}

impl Settings {
    /// Reads settings through `var` (the process environment in `run`, a map in tests).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self, StartupError> {
        let vars = Vars::new(var);
        let topic_arn = vars.required(ENV_TOPIC_ARN)?;
        let queue_url = vars.required(ENV_QUEUE_URL)?;
        let github_token_param = vars.get(ENV_GITHUB_TOKEN_PARAM);
        let codebuild_reports = vars.flag(ENV_CODEBUILD_REPORTS_STATUS)?;
        let in_progress = vars.flag(ENV_NOTIFY_IN_PROGRESS)?;
        let deploy_targets =
            notify::parse_deploy_targets(&vars.get(ENV_DEPLOY_TARGETS).unwrap_or_default())
                .map_err(|e| SettingError::invalid(ENV_DEPLOY_TARGETS, e.to_string()))?;
        if !codebuild_reports && github_token_param.is_none() {
            tracing::warn!(
                "no GitHub token parameter and CodeBuild does not report statuses: no commit status will be set"
            );
        }
        Ok(Settings {
            topic_arn,
            queue_url,
            notify: NotifyConfig {
                in_progress,
                commit_status: !codebuild_reports && github_token_param.is_some(),
            },
            github_token_param,
            deploy_targets,
        })
    }
}

/// The Lambda's sinks: SNS, GitHub, deploy calls, the jobs queue.
pub struct AwsSinks<S: SecretReader> {
    pub sns: aws_sdk_sns::Client,
    pub topic_arn: String,
    pub queue: SqsJobQueue,
    /// `Err`: why statuses cannot be set (the token could not be read); each status then fails
    /// with that reason instead of being silently dropped.
    pub github: Result<slipway_github::GitHub, String>,
    pub deploy: deploy::DeployCalls<S>,
}

impl<S: SecretReader + Send + Sync> Sinks for AwsSinks<S> {
    async fn publish(&self, n: &Notification) -> Result<(), SinkError> {
        slipway_aws::sns::publish_notification(&self.sns, &self.topic_arn, n)
            .await
            .map_err(|e| SinkError {
                code: e.code().into(),
                message: e.to_string(),
            })
    }

    async fn commit_status(&self, s: &CommitStatus) -> Result<(), SinkError> {
        match &self.github {
            Ok(github) => Ok(github.set_status(s).await?),
            Err(reason) => Err(SinkError {
                code: "github_token_unavailable".into(),
                message: reason.clone(),
            }),
        }
    }

    async fn deploy(&self, targets: &[String], _o: &BuildOutcome) -> Vec<DeployResult> {
        self.deploy.call_all(targets).await
    }

    async fn enqueue(&self, job: &Job) -> Result<Enqueued, SinkError> {
        Ok(self.queue.enqueue(job).await?)
    }
}

/// Handles one event: parse, then [`notify::notify`]. A malformed or foreign event is logged
/// and answered as `ignored`; nothing is published for it.
pub async fn handle_event<S: Sinks>(event: &Value, cfg: &NotifyConfig, sinks: &S) -> Value {
    let outcome = match notify::parse_event(event) {
        Ok(o) => o,
        Err(e) => {
            let id = event.get("id").and_then(Value::as_str).unwrap_or("");
            if e.code() == "event_not_slipway" {
                tracing::info!(event_id = %id, code = e.code(), "event ignored: {e}");
            } else {
                tracing::warn!(event_id = %id, code = e.code(), error = %e, "malformed event acknowledged; nothing published");
            }
            return json!({"status": "ignored", "code": e.code(), "reason": e.to_string()});
        }
    };
    let report = notify::notify(&outcome, cfg, sinks).await;
    // Counted once per event handled (EventBridge delivers at least once), and only what the
    // notifier reports: a batch's platform builds that did not fail are parts of an image whose
    // merge (or failed platform) is its result, so they count neither as builds nor as
    // notifications.
    if report.publish != "not_published" {
        slipway_aws::metrics::emit(|at| {
            slipway_core::metrics::build_finished(at, outcome.status, outcome.duration)
        });
    }
    slipway_aws::metrics::emit(|at| slipway_core::metrics::notification(at, &report.publish));
    serde_json::to_value(&report).expect("a report always serializes")
}

/// The Lambda's entry point.
pub async fn run() -> Result<(), lambda_runtime::Error> {
    slipway_aws::logging::init();
    let settings = Settings::from_vars(|k| std::env::var(k).ok()).inspect_err(|e| {
        tracing::error!(code = e.code(), error = %e, "the notifier cannot start");
    })?;
    let aws = aws_config::load_from_env().await;
    let ssm = aws_sdk_ssm::Client::new(&aws);
    let github = match (&settings.github_token_param, settings.notify.commit_status) {
        (Some(param), true) => match slipway_aws::ssm::get_parameter(&ssm, param).await {
            Ok(token) => slipway_github::GitHub::new(slipway_github::DEFAULT_API_URL, Some(token))
                .map_err(|e| e.to_string()),
            Err(e) => {
                tracing::error!(parameter = %param, error = %e, "GitHub token unavailable; commit statuses will fail");
                Err(e.to_string())
            }
        },
        _ => Err("commit statuses are not in use".into()),
    };
    let sinks = AwsSinks {
        sns: aws_sdk_sns::Client::new(&aws),
        topic_arn: settings.topic_arn.clone(),
        queue: SqsJobQueue::new(aws_sdk_sqs::Client::new(&aws), settings.queue_url.clone()),
        github,
        deploy: deploy::DeployCalls::new(settings.deploy_targets.clone(), SsmSecrets::new(ssm))
            .map_err(|e| -> lambda_runtime::Error { e.into() })?,
    };
    let cfg = settings.notify.clone();
    let sinks = &sinks;
    let cfg = &cfg;
    lambda_runtime::run(lambda_runtime::service_fn(
        move |ev: lambda_runtime::LambdaEvent<Value>| async move {
            let report = handle_event(&ev.payload, cfg, sinks).await;
            // A result nobody heard of did not happen: a failed publish fails the invocation,
            // so Lambda retries it and then parks it in the dead-letter queue (alarmed).
            if report["publish"]
                .as_str()
                .is_some_and(|p| p.starts_with("failed"))
            {
                return Err(lambda_runtime::Error::from(format!(
                    "the notification was not published: {}",
                    report["publish"]
                )));
            }
            Ok::<Value, lambda_runtime::Error>(report)
        },
    ))
    .await
}
