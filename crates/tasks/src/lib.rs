//! The tasks Lambda (`slipway-tasks`), invoked by EventBridge schedule rules with a
//! constant JSON input:
//!
//! - `{"task": "cleanup"}` (weekly): deletes the CodeBuild project's builds older than the
//!   retention, never a running one, and reports what CodeBuild refused. Optional fields:
//!   `"dry_run": true`, `"retention_days": N` (override the environment for one run).
//! - `{"task": "calls"}`: makes the scheduled calls listed in the call targets SSM parameter.
//!
//! The summary is the invocation's result and a log line; it goes to SNS when builds were
//! deleted or anything failed.

use std::time::Duration;

use serde::Deserialize;
use slipway_aws::cleanup::{CleanupRequest, cleanup};
use slipway_aws::ssm::SsmSecrets;
use slipway_calls::SendOptions;
use slipway_core::calls;
use slipway_core::retention::{Retention, RetentionError};
use slipway_core::settings::{SettingError, Vars};

/// Every environment variable the function reads (checked against the template).
pub const ENV_VARS: &[&str] = &[
    ENV_PROJECT_NAME,
    ENV_RETENTION_DAYS,
    ENV_DRY_RUN,
    ENV_TOPIC_ARN,
    ENV_CALL_TARGETS_PARAM,
    ENV_CALL_CONCURRENCY,
];
/// The CodeBuild project whose builds are cleaned up.
pub const ENV_PROJECT_NAME: &str = "SLIPWAY_PROJECT_NAME";
/// Days finished builds are kept (default 30).
pub const ENV_RETENTION_DAYS: &str = "SLIPWAY_RETENTION_DAYS";
/// `true`: list what would be deleted, delete nothing.
pub const ENV_DRY_RUN: &str = "SLIPWAY_DRY_RUN";
/// SNS topic for the summaries (optional: without it, summaries only go to the log).
pub const ENV_TOPIC_ARN: &str = "SLIPWAY_TOPIC_ARN";
/// SSM parameter holding the scheduled calls' targets as a JSON array (optional).
pub const ENV_CALL_TARGETS_PARAM: &str = "SLIPWAY_CALL_TARGETS_PARAM";
/// Calls in flight at once (default 4).
pub const ENV_CALL_CONCURRENCY: &str = "SLIPWAY_CALL_CONCURRENCY";

pub const DEFAULT_RETENTION_DAYS: u32 = 30;
pub const DEFAULT_CALL_CONCURRENCY: usize = 4;

#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    #[error(transparent)]
    Setting(#[from] SettingError),
    #[error("the task input is invalid: {0}")]
    Input(String),
    #[error(transparent)]
    Retention(#[from] RetentionError),
    #[error(transparent)]
    Cleanup(#[from] slipway_aws::cleanup::CleanupError),
    #[error(transparent)]
    Parameter(#[from] slipway_aws::ssm::ParameterError),
    #[error("the call targets in {param} are unusable: {reason}")]
    Targets { param: String, reason: String },
    #[error("the HTTP client could not be built: {0}")]
    Client(String),
}

impl TaskError {
    pub fn code(&self) -> &'static str {
        match self {
            TaskError::Setting(e) => e.code(),
            TaskError::Input(_) => "invalid_input",
            TaskError::Retention(e) => e.code(),
            TaskError::Cleanup(e) => e.code(),
            TaskError::Parameter(e) => e.code(),
            TaskError::Targets { .. } => "invalid_targets",
            TaskError::Client(_) => "http_client",
        }
    }
}

/// The invocation's error as Lambda reports it: the stable code as the error type.
impl From<TaskError> for lambda_runtime::Diagnostic {
    fn from(e: TaskError) -> Self {
        lambda_runtime::Diagnostic {
            error_type: e.code().to_string(),
            error_message: e.to_string(),
        }
    }
}

/// The function's settings, from environment variables.
#[derive(Debug, Clone)]
pub struct Settings {
    pub project: String,
    pub retention: Retention,
    pub dry_run: bool,
    pub topic_arn: Option<String>,
    pub call_targets_param: Option<String>,
    pub call_concurrency: usize,
}

impl Settings {
    /// Reads settings through `var` (the process environment in `run`, a map in tests).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self, TaskError> {
        let vars = Vars::new(var);
        let retention = match vars.get(ENV_RETENTION_DAYS) {
            None => Retention::days(DEFAULT_RETENTION_DAYS)?,
            Some(raw) => Retention::parse(&raw)
                .map_err(|e| SettingError::invalid(ENV_RETENTION_DAYS, e.to_string()))?,
        };
        Ok(Self {
            project: vars.required(ENV_PROJECT_NAME)?,
            retention,
            dry_run: vars.flag(ENV_DRY_RUN)?,
            topic_arn: vars.get(ENV_TOPIC_ARN),
            call_targets_param: vars.get(ENV_CALL_TARGETS_PARAM),
            call_concurrency: vars.number(
                ENV_CALL_CONCURRENCY,
                DEFAULT_CALL_CONCURRENCY,
                1..=64,
            )?,
        })
    }
}

/// The schedule rule's constant input.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "task", rename_all = "snake_case", deny_unknown_fields)]
pub enum Task {
    Cleanup {
        #[serde(default)]
        dry_run: Option<bool>,
        #[serde(default)]
        retention_days: Option<u32>,
    },
    Calls {},
}

/// The AWS clients and settings, built once per cold start.
#[derive(Debug, Clone)]
pub struct Context {
    pub settings: Settings,
    pub codebuild: aws_sdk_codebuild::Client,
    pub sns: aws_sdk_sns::Client,
    pub ssm: aws_sdk_ssm::Client,
    pub http: reqwest::Client,
    pub call_backoff: (Duration, Duration),
}

impl Context {
    pub fn new(settings: Settings, aws: &aws_config::SdkConfig) -> Result<Self, TaskError> {
        Ok(Self {
            settings,
            codebuild: aws_sdk_codebuild::Client::new(aws),
            sns: aws_sdk_sns::Client::new(aws),
            ssm: aws_sdk_ssm::Client::new(aws),
            http: slipway_calls::client().map_err(|e| TaskError::Client(e.to_string()))?,
            call_backoff: (Duration::from_millis(500), Duration::from_secs(10)),
        })
    }
}

/// Runs one task and answers its summary (the invocation's result).
pub async fn handle(
    ctx: &Context,
    input: serde_json::Value,
    now: time::OffsetDateTime,
) -> Result<serde_json::Value, TaskError> {
    let task: Task = serde_json::from_value(input).map_err(|e| TaskError::Input(e.to_string()))?;
    match task {
        Task::Cleanup {
            dry_run,
            retention_days,
        } => {
            let retention = match retention_days {
                Some(d) => Retention::days(d)?,
                None => ctx.settings.retention,
            };
            let req = CleanupRequest {
                project: ctx.settings.project.clone(),
                retention,
                dry_run: dry_run.unwrap_or(ctx.settings.dry_run),
            };
            let summary = cleanup(&ctx.codebuild, &req, now).await?;
            let mut out = serde_json::to_value(&summary).expect("a summary serializes");
            if summary.worth_notifying() {
                let subject = summary.subject();
                let body = summary.body();
                let notified = notify(ctx, &subject, &body, "cleanup").await;
                out["notified"] = serde_json::Value::Bool(notified);
            }
            Ok(out)
        }
        Task::Calls {} => {
            let param = ctx
                .settings
                .call_targets_param
                .as_deref()
                .ok_or(SettingError::Missing(ENV_CALL_TARGETS_PARAM))?;
            let raw = slipway_aws::ssm::get_parameter(&ctx.ssm, param).await?;
            let targets = calls::parse_targets(secrecy::ExposeSecret::expose_secret(&raw))
                .map_err(|e| TaskError::Targets {
                    param: param.to_string(),
                    reason: e.to_string(),
                })?;
            let opts = SendOptions {
                concurrency: ctx.settings.call_concurrency,
                backoff_base: ctx.call_backoff.0,
                backoff_max: ctx.call_backoff.1,
            };
            let report = slipway_calls::send_all(
                &ctx.http,
                targets,
                &SsmSecrets::new(ctx.ssm.clone()),
                &opts,
            )
            .await;
            tracing::info!(
                delivered = report.delivered,
                failed = report.failed,
                invalid = report.invalid,
                "scheduled calls finished"
            );
            let mut out = serde_json::to_value(&report).expect("a report serializes");
            if !report.all_delivered() {
                let not = report.results.len() - report.delivered;
                let subject = format!(
                    "slipway scheduled calls: {not} of {} not delivered",
                    report.results.len()
                );
                let mut body = String::new();
                for r in report
                    .results
                    .iter()
                    .filter(|r| r.outcome != slipway_calls::Outcome::Delivered)
                {
                    body.push_str(&format!(
                        "{}: {:?} after {} attempt(s){}{}\n",
                        r.name,
                        r.outcome,
                        r.attempts,
                        r.status
                            .map(|s| format!(", last status {s}"))
                            .unwrap_or_default(),
                        r.error
                            .as_deref()
                            .map(|e| format!(": {e}"))
                            .unwrap_or_default(),
                    ));
                }
                let notified = notify(ctx, &subject, &body, "calls").await;
                out["notified"] = serde_json::Value::Bool(notified);
            }
            Ok(out)
        }
    }
}

/// Publishes to the topic when one is configured. A failure is logged, not returned: the work is
/// done, and a retried invocation would not repeat it.
async fn notify(ctx: &Context, subject: &str, body: &str, task: &str) -> bool {
    let Some(topic) = &ctx.settings.topic_arn else {
        return false;
    };
    let attributes = [
        ("slipway_event", task),
        ("project", ctx.settings.project.as_str()),
    ];
    match slipway_aws::sns::publish(&ctx.sns, topic, subject, body, &attributes).await {
        Ok(id) => {
            tracing::info!(task, message_id = %id, "summary published");
            true
        }
        Err(e) => {
            tracing::error!(task, error = %e, code = e.code(), "summary could not be published");
            false
        }
    }
}

/// Builds the clients once, then serves invocations.
pub async fn run() -> Result<(), lambda_runtime::Error> {
    slipway_aws::logging::init();
    let settings = Settings::from_vars(|k| std::env::var(k).ok()).inspect_err(
        |e| tracing::error!(error = %e, code = e.code(), "the tasks Lambda cannot start"),
    )?;
    let aws = aws_config::load_from_env().await;
    let ctx = Context::new(settings, &aws)?;
    let ctx = &ctx;
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: lambda_runtime::LambdaEvent<serde_json::Value>| async move {
            handle(ctx, event.payload, slipway_aws::clock::now())
                .await
                .inspect_err(|e| tracing::error!(error = %e, code = e.code(), "task failed"))
        },
    ))
    .await
}
