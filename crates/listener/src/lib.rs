//! The listener Lambda behind API Gateway (HTTP API, payload format 2.0): the request path of
//! `slipway_core::listener` with SQS as the queue and the webhook secrets from SSM, and one metric
//! line per answer (`slipway_core::metrics::webhook`).

mod apigw;

use std::time::Instant;

use lambda_runtime::{LambdaEvent, service_fn};
use secrecy::ExposeSecret;
use slipway_core::listener::{self, Inbound, JobQueue, ListenerConfig};
use slipway_core::refs::{RefRules, RepoFilter, RuleError};
use slipway_core::settings::{SettingError, Vars};
use slipway_core::webhook::{SecretsError, WebhookSecrets};

pub use apigw::{ApiGatewayRequest, ApiGatewayResponse, ResponseHeaders};

/// Every environment variable the listener reads at start (checked against the template).
pub const ENV_VARS: &[&str] = &[
    ENV_QUEUE_URL,
    ENV_SECRET_PARAM,
    ENV_REPOSITORIES,
    ENV_BRANCHES,
    ENV_TAGS,
    ENV_ALLOW_PRIVATE,
    ENV_MAX_BODY,
    ENV_DELIVERIES_TABLE,
    slipway_aws::metrics::ENV_STACK_NAME,
];
pub const ENV_QUEUE_URL: &str = "SLIPWAY_QUEUE_URL";
pub const ENV_SECRET_PARAM: &str = "SLIPWAY_WEBHOOK_SECRET_PARAM";
pub const ENV_REPOSITORIES: &str = "SLIPWAY_REPOSITORIES";
pub const ENV_BRANCHES: &str = "SLIPWAY_BRANCHES";
pub const ENV_TAGS: &str = "SLIPWAY_TAGS";
pub const ENV_ALLOW_PRIVATE: &str = "SLIPWAY_ALLOW_PRIVATE";
pub const ENV_MAX_BODY: &str = "SLIPWAY_MAX_BODY_BYTES";
/// The DynamoDB table of queued deliveries (`slipway_aws::deliveries`). Unset: deduplication is
/// SQS's five minutes only (a start-up log line says so).
pub const ENV_DELIVERIES_TABLE: &str = "SLIPWAY_DELIVERIES_TABLE";

/// A start-up error: names the variable or parameter to fix.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Setting(#[from] SettingError),
    #[error(transparent)]
    Rule(#[from] RuleError),
    #[error(transparent)]
    Parameter(#[from] slipway_aws::ssm::ParameterError),
    #[error("the webhook secret parameter is unusable: {0}")]
    Secrets(#[from] SecretsError),
}

/// The listener's settings, from environment variables (the secret itself comes from SSM).
#[derive(Debug, Clone)]
pub struct Settings {
    pub queue_url: String,
    pub secret_param: String,
    pub repositories: RepoFilter,
    pub refs: RefRules,
    pub allow_private: bool,
    pub max_body_bytes: usize,
    pub deliveries_table: Option<String>,
}

impl Settings {
    /// Reads settings through `var` (the process environment in `run`, a map in tests).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self, StartupError> {
        let vars = Vars::new(var);
        let required = |name| vars.required(name);
        let allow_private = vars.flag(ENV_ALLOW_PRIVATE)?;
        let max_body_bytes = vars.number(
            ENV_MAX_BODY,
            listener::DEFAULT_MAX_BODY_BYTES,
            1..=listener::DEFAULT_MAX_BODY_BYTES * 4,
        )?;
        Ok(Self {
            queue_url: required(ENV_QUEUE_URL)?,
            secret_param: required(ENV_SECRET_PARAM)?,
            repositories: RepoFilter::parse(&required(ENV_REPOSITORIES)?)?,
            refs: RefRules::parse(
                &vars.get(ENV_BRANCHES).unwrap_or_else(|| "$default".into()),
                &vars.get(ENV_TAGS).unwrap_or_else(|| "*".into()),
            )?,
            allow_private,
            max_body_bytes,
            deliveries_table: vars.get(ENV_DELIVERIES_TABLE),
        })
    }

    pub fn into_config(self, secrets: WebhookSecrets) -> ListenerConfig {
        ListenerConfig {
            secrets,
            repositories: self.repositories,
            refs: self.refs,
            allow_private: self.allow_private,
            max_body_bytes: self.max_body_bytes,
            allow_file_clone_urls: false,
        }
    }
}

/// The Lambda's handler: one request in, one JSON response out. Never fails: every outcome,
/// including a queue outage, is an HTTP answer.
pub async fn handle<Q: JobQueue>(
    cfg: &ListenerConfig,
    queue: &Q,
    req: ApiGatewayRequest,
) -> ApiGatewayResponse {
    let reply = listener::handle(
        cfg,
        queue,
        &Inbound {
            method: &req.method,
            headers: &req.headers,
            body: &req.body,
        },
    )
    .await;
    // The answer is decided: one metric line (see docs/performance.md, "Metric lines").
    slipway_aws::metrics::emit(|at| slipway_core::metrics::webhook(at, &reply));
    ApiGatewayResponse {
        status_code: reply.status.as_u16(),
        headers: ResponseHeaders {
            content_type: "application/json",
        },
        body: reply.body.to_string(),
        is_base64_encoded: false,
    }
}

/// Builds the clients once, reads the secret once, then serves invocations. The start-up log line
/// says how long each part of the initialisation took. `main` runs it on tokio's current-thread
/// runtime: a Lambda serves one invocation at a time on a fraction of a vCPU, so worker threads
/// would only cost start-up time and cross-thread wake-ups.
pub async fn run() -> Result<(), lambda_runtime::Error> {
    let start = Instant::now();
    slipway_aws::logging::init();
    let logging = start.elapsed();
    let settings = Settings::from_vars(|k| std::env::var(k).ok()).inspect_err(|e| {
        tracing::error!(error = %e, "listener cannot start");
    })?;
    let read_settings = start.elapsed();
    let aws = aws_config::load_from_env().await;
    let aws_config = start.elapsed();
    let raw =
        slipway_aws::ssm::get_parameter(&aws_sdk_ssm::Client::new(&aws), &settings.secret_param)
            .await
            .inspect_err(|e| tracing::error!(error = %e, "listener cannot start"))?;
    let secrets = WebhookSecrets::parse(raw.expose_secret()).map_err(StartupError::from)?;
    let secret = start.elapsed();
    // The deliveries table's DynamoDB client is built on the first delivery that needs it
    // (`Deliveries::lazy`): the cold start measured by issue 22 does not grow by it.
    let queue = slipway_aws::deliveries::DedupQueue {
        deliveries: settings
            .deliveries_table
            .as_ref()
            .map(|t| slipway_aws::deliveries::Deliveries::lazy(&aws, t)),
        inner: slipway_aws::sqs::SqsJobQueue::new(
            aws_sdk_sqs::Client::new(&aws),
            settings.queue_url.clone(),
        ),
        now: slipway_aws::clock::now,
    };
    let sqs_client = start.elapsed();
    tracing::info!(
        secrets = secrets.len(),
        queue = %settings.queue_url,
        deliveries_table = settings.deliveries_table.as_deref().unwrap_or(""),
        init_logging_us = logging.as_micros() as u64,
        init_settings_us = (read_settings - logging).as_micros() as u64,
        init_aws_config_us = (aws_config - read_settings).as_micros() as u64,
        init_secret_us = (secret - aws_config).as_micros() as u64,
        init_sqs_client_us = (sqs_client - secret).as_micros() as u64,
        "listener started"
    );
    if settings.deliveries_table.is_none() {
        tracing::warn!(
            "no deliveries table: a delivery GitHub sends again after SQS's five minutes is queued again"
        );
    }
    let cfg = settings.into_config(secrets);
    let (cfg, queue) = (&cfg, &queue);
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<ApiGatewayRequest>| async move {
            Ok::<_, std::convert::Infallible>(handle(cfg, queue, event.payload).await)
        },
    ))
    .await
}
