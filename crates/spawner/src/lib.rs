//! The spawner Lambda: for each message of the jobs queue (a job, or a scheduled rebuild resolved
//! to its branch head), plan the job with the planner and start one CodeBuild build per image
//! that can start now (images whose parent is in the same plan start when that parent succeeds:
//! the notifier reads `SLIPWAY_CHILDREN`). Each planned job writes one metric line
//! (`slipway_core::metrics::job_planned`): its trigger, the builds it started, its wait on the
//! queue.
//!
//! Failures, and what happens to the message:
//! - a message that is not a job, a plan error that retrying cannot fix (bad `slipway.toml`, an
//!   unknown image), or an image CodeBuild refuses: reported (an `error` log line with a code)
//!   and the message is deleted — retrying would fail the same way;
//! - the repository unreachable or rate limited: the message is reported as a batch item
//!   failure, and SQS delivers it again after the visibility timeout (then to the DLQ);
//! - throttling (`ThrottlingException`, `AccountLimitExceededException`) and transient errors of
//!   StartBuild: retried here with exponential backoff;
//! - some images started and others still failing: a job narrowed to the failed images is
//!   queued again (attempt + 1, message attribute `slipway_attempt`) and the message is deleted,
//!   so the images that started are not started twice. Redelivering the whole message instead
//!   would rely on CodeBuild's idempotency tokens, which last five minutes — shorter than the
//!   queue's visibility timeout. Tokens still guard a redelivery within that window (a Lambda
//!   that dies mid-batch). Nothing started at all: the message itself is the retry.

use std::future::Future;
use std::time::Duration;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use slipway_aws::codebuild::{BuildStartError, CodeBuildStarter, StartRequest, StartedBuild};
use slipway_aws::sqs::{ATTEMPT_ATTRIBUTE, SqsJobQueue};
use slipway_core::Job;
use slipway_core::build_env::{self, RegistrySettings};
use slipway_core::build_graph::{self, BuildMachines, Layout};
use slipway_core::listener::QueueError;
use slipway_core::plan::{Plan, PlanError, PlannedImage};
use slipway_core::schedule::{QueueMessage, ScheduledRebuild, parse_queue_message, rebuild_job};

mod github;
pub use github::GitHubPlanner;

/// The SQS system attribute with the time a message was sent (milliseconds since the epoch).
const SENT_TIMESTAMP: &str = "SentTimestamp";

/// The buildspec slipway ships, handed to CodeBuild as `buildspecOverride`.
pub const BUILDSPEC: &str = include_str!("../../../buildspec.yml");

/// Every environment variable the spawner reads at start (checked against the template).
pub const ENV_VARS: &[&str] = &[
    ENV_PROJECT_NAME,
    ENV_IMAGE_NAMESPACE,
    ENV_GITHUB_TOKEN_PARAM,
    ENV_PARAMETER_PREFIX,
    ENV_QUEUE_URL,
    ENV_GITHUB_API_URL,
    ENV_MAX_ATTEMPTS,
    ENV_BUILD_IMAGE_AMD64,
    ENV_BUILD_IMAGE_ARM64,
    slipway_aws::metrics::ENV_STACK_NAME,
];
pub const ENV_PROJECT_NAME: &str = "SLIPWAY_PROJECT_NAME";
pub const ENV_IMAGE_NAMESPACE: &str = "SLIPWAY_IMAGE_NAMESPACE";
pub const ENV_GITHUB_TOKEN_PARAM: &str = "SLIPWAY_GITHUB_TOKEN_PARAM";
pub const ENV_PARAMETER_PREFIX: &str = "SLIPWAY_PARAMETER_PREFIX";
/// The jobs queue, for jobs narrowed to the images that failed to start.
pub const ENV_QUEUE_URL: &str = "SLIPWAY_QUEUE_URL";
/// Optional: a GitHub Enterprise API URL (default `https://api.github.com`).
pub const ENV_GITHUB_API_URL: &str = "SLIPWAY_GITHUB_API_URL";
/// Optional: how many times a narrowed job is queued again before the message goes the
/// queue's own way (retries, then the dead-letter queue). Default 3.
pub const ENV_MAX_ATTEMPTS: &str = "SLIPWAY_MAX_START_ATTEMPTS";

/// The CodeBuild image of native `linux/amd64` builds (`LINUX_CONTAINER`).
pub const ENV_BUILD_IMAGE_AMD64: &str = "SLIPWAY_BUILD_IMAGE_AMD64";
/// The CodeBuild image of native `linux/arm64` builds (`ARM_CONTAINER`).
pub const ENV_BUILD_IMAGE_ARM64: &str = "SLIPWAY_BUILD_IMAGE_ARM64";

/// The planner as the spawner needs it (the GitHub adapter in production, a fixed plan in tests).
/// The futures need not be `Send`: the Lambda handles one batch at a time on its runtime.
pub trait Planner: Send + Sync {
    fn plan(&self, job: &Job) -> impl Future<Output = Result<Plan, PlanError>>;
    /// The default branch of `repository` and the head commit of `branch` (or of the default
    /// branch): `(default_branch, head)`.
    fn branch_head(
        &self,
        repository: &str,
        clone_url: &str,
        branch: Option<&str>,
    ) -> impl Future<Output = Result<(String, String), PlanError>>;
}

/// CodeBuild as the spawner needs it.
pub trait Builds: Send + Sync {
    fn start(
        &self,
        req: &StartRequest,
    ) -> impl Future<Output = Result<StartedBuild, BuildStartError>>;
}

impl Builds for CodeBuildStarter {
    async fn start(&self, req: &StartRequest) -> Result<StartedBuild, BuildStartError> {
        self.start_build(req).await
    }
}

/// CodeBuild after the image's ECR repository: ECR refuses a push to a repository that does
/// not exist, so an image going to ECR gets its repository (`slipway_core::ecr`) before its
/// build starts. A repository that cannot be created is a start failure like CodeBuild's own.
pub struct AwsBuilds {
    pub codebuild: CodeBuildStarter,
    pub ecr: slipway_aws::ecr::EcrRepositories,
}

impl Builds for AwsBuilds {
    async fn start(&self, req: &StartRequest) -> Result<StartedBuild, BuildStartError> {
        if let Some(repo) = &req.ecr {
            self.ecr.ensure(repo).await.map_err(|e| {
                if e.retryable {
                    BuildStartError::Transient(e.to_string())
                } else {
                    BuildStartError::Rejected {
                        code: e.code().into(),
                        message: e.to_string(),
                    }
                }
            })?;
        }
        self.codebuild.start_build(req).await
    }
}

/// The jobs queue, for narrowed jobs.
pub trait Requeue: Send + Sync {
    fn requeue(&self, job: &Job, attempt: u32) -> impl Future<Output = Result<(), QueueError>>;
}

/// Narrowed jobs go to the jobs queue through the one SQS adapter (FIFO group and
/// deduplication decided there).
impl Requeue for SqsJobQueue {
    async fn requeue(&self, job: &Job, attempt: u32) -> Result<(), QueueError> {
        SqsJobQueue::requeue(self, job, attempt).await
    }
}

/// How StartBuild is retried when throttled.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub attempts: u32,
    pub first: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        // At most ~3.5 s per image: the Lambda has 60 s for a batch of up to 10 messages.
        Backoff {
            attempts: 5,
            first: Duration::from_millis(250),
            max: Duration::from_secs(2),
        }
    }
}

impl Backoff {
    /// The wait before retry `retry` (1 = the first), core's one backoff rule.
    fn delay(&self, retry: u32) -> Duration {
        slipway_core::retry::backoff(retry, self.first, self.max)
    }
}

/// The spawner's settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub project: String,
    pub registry: RegistrySettings,
    /// The machines of native per-platform builds.
    pub machines: BuildMachines,
    pub backoff: Backoff,
    pub max_attempts: u32,
}

/// What happened to one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Every image that can start now has started (or the plan had none).
    Started { builds: Vec<String> },
    /// Reported and deleted: retrying cannot help.
    Dropped { code: String },
    /// Some images started; a job narrowed to the others was queued again.
    Requeued {
        started: Vec<String>,
        failed: Vec<String>,
    },
    /// The message is retried by SQS (batch item failure).
    Retry { code: String },
}

pub struct Spawner<P, B, Q> {
    pub planner: P,
    pub builds: B,
    pub queue: Q,
    pub settings: Settings,
}

impl<P: Planner, B: Builds, Q: Requeue> Spawner<P, B, Q> {
    /// Handles one SQS batch; the response lists the messages SQS should deliver again. On a
    /// FIFO queue, every message after a failed one is handed back unprocessed, so that jobs of
    /// one repository keep their order.
    pub async fn handle(&self, event: SqsEvent) -> SqsBatchResponse {
        let mut response = SqsBatchResponse::default();
        let mut failed_fifo = false;
        for record in event.records {
            let id = record.message_id.clone().unwrap_or_default();
            let fifo = record
                .event_source_arn
                .as_deref()
                .is_some_and(|a| a.ends_with(".fifo"));
            let retry = if failed_fifo {
                tracing::warn!(message_id = %id, "handed back: an earlier message of this FIFO batch failed");
                true
            } else {
                matches!(self.handle_message(&record).await, Outcome::Retry { .. })
            };
            if retry {
                failed_fifo |= fifo;
                let mut f = BatchItemFailure::default();
                f.item_identifier = id;
                response.batch_item_failures.push(f);
            }
        }
        response
    }

    /// Handles one message.
    pub async fn handle_message(&self, record: &SqsMessage) -> Outcome {
        let message_id = record.message_id.as_deref().unwrap_or_default();
        // How long the message waited on the queue, from SQS's own attribute.
        let queue_wait_ms = record
            .attributes
            .get(SENT_TIMESTAMP)
            .and_then(|v| v.parse::<i64>().ok())
            .map(|sent| slipway_aws::metrics::now_ms() - sent);
        let attempt = record
            .message_attributes
            .get(ATTEMPT_ATTRIBUTE)
            .and_then(|a| a.string_value.as_deref())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(1);
        let body = record.body.as_deref().unwrap_or_default();
        let job = match parse_queue_message(body) {
            Ok(QueueMessage::Job(job)) => *job,
            Ok(QueueMessage::ScheduledRebuild(msg)) => match self.resolve_schedule(&msg).await {
                Ok(job) => job,
                Err(outcome) => return outcome,
            },
            Err(e) => {
                tracing::error!(message_id, code = e.code(), error = %e, "message dropped: not a job");
                return Outcome::Dropped {
                    code: e.code().into(),
                };
            }
        };
        self.spawn_queued(&job, attempt, queue_wait_ms).await
    }

    async fn resolve_schedule(&self, msg: &ScheduledRebuild) -> Result<Job, Outcome> {
        let (default_branch, head) = self
            .planner
            .branch_head(&msg.repository, &msg.clone_url, msg.branch.as_deref())
            .await
            .map_err(|e| plan_failure(&msg.repository, &e))?;
        rebuild_job(msg, &default_branch, &head).map_err(|e| {
            tracing::error!(repository = %msg.repository, schedule = %msg.schedule, code = e.code(), error = %e, "scheduled rebuild dropped");
            Outcome::Dropped {
                code: e.code().into(),
            }
        })
    }

    /// Plans `job` and starts its builds.
    pub async fn spawn(&self, job: &Job, attempt: u32) -> Outcome {
        self.spawn_queued(job, attempt, None).await
    }

    /// [`Self::spawn`] for a job that waited `queue_wait_ms` on the queue: the metric line of
    /// the planned job says so.
    async fn spawn_queued(&self, job: &Job, attempt: u32, queue_wait_ms: Option<i64>) -> Outcome {
        let plan = match self.planner.plan(job).await {
            Ok(p) => p,
            Err(e) => return plan_failure(&job.repository, &e),
        };
        for p in &plan.errors {
            tracing::error!(job_id = %job.id, context = %p.context, code = %p.code, message = %p.message, "image not built");
        }
        let startable = startable(&plan);
        tracing::info!(job_id = %job.id, repository = %job.repository, commit = %plan.commit, planned = plan.images.len(), starting = startable.len(), "planned");

        let startable_count = startable.len();
        let mut started = Vec::new();
        let mut failed = Vec::new();
        for image in startable {
            match self.start_image(job, image).await {
                Ok(build) => started.push(build.id),
                Err(e) if e.is_retryable() => failed.push(image.name.clone()),
                Err(_) => {} // reported in start_image; retrying cannot help
            }
        }
        slipway_aws::metrics::emit(|at| {
            let builds = slipway_core::metrics::BuildStarts {
                started: started.len(),
                failed: startable_count - started.len(),
            };
            slipway_core::metrics::job_planned(at, &job.trigger, builds, queue_wait_ms)
        });
        if failed.is_empty() {
            return Outcome::Started { builds: started };
        }
        if started.is_empty() {
            tracing::warn!(job_id = %job.id, failed = ?failed, "no build started; the message will be delivered again");
            return Outcome::Retry {
                code: "start_failed".into(),
            };
        }
        if attempt >= self.settings.max_attempts {
            tracing::error!(job_id = %job.id, failed = ?failed, attempt, "builds still failing to start; the message goes back to the queue");
            return Outcome::Retry {
                code: "start_failed".into(),
            };
        }
        let mut narrowed = job.clone();
        narrowed.images = failed.clone();
        match self.queue.requeue(&narrowed, attempt + 1).await {
            Ok(()) => {
                tracing::warn!(job_id = %job.id, failed = ?failed, attempt = attempt + 1, "queued again for the images that failed to start");
                Outcome::Requeued { started, failed }
            }
            Err(e) => {
                tracing::error!(job_id = %job.id, code = e.code(), error = %e, "could not queue the failed images again; the whole message will be delivered again");
                Outcome::Retry {
                    code: "requeue_failed".into(),
                }
            }
        }
    }

    async fn start_image(
        &self,
        job: &Job,
        image: &PlannedImage,
    ) -> Result<StartedBuild, BuildStartError> {
        let req = match start_request(&self.settings, job, image) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(job_id = %job.id, image = %image.name, code = e.code(), error = %e, "image not built");
                return Err(BuildStartError::Rejected {
                    code: e.code().into(),
                    message: e.to_string(),
                });
            }
        };
        let mut retry = 0;
        loop {
            match self.builds.start(&req).await {
                Ok(b) => {
                    let kind = match &req.layout {
                        Layout::Batch { .. } => {
                            "batch: one native build per platform, then the merge"
                        }
                        Layout::Single { machine: Some(_) } => "build on the platform's machine",
                        Layout::Single { machine: None } => "build",
                    };
                    tracing::info!(job_id = %job.id, image = %image.name, build_id = %b.id, tags = ?image.tags, platforms = ?image.platforms, kind, "build started");
                    return Ok(b);
                }
                Err(e) if e.is_retryable() && retry + 1 < self.settings.backoff.attempts => {
                    let delay = self.settings.backoff.delay(retry + 1);
                    tracing::warn!(job_id = %job.id, image = %image.name, code = e.code(), delay_ms = delay.as_millis() as u64, "StartBuild retried");
                    tokio::time::sleep(delay).await;
                    retry += 1;
                }
                Err(e) => {
                    tracing::error!(job_id = %job.id, image = %image.name, code = e.code(), error = %e, "build not started");
                    return Err(e);
                }
            }
        }
    }
}

fn plan_failure(repository: &str, e: &PlanError) -> Outcome {
    if e.is_retryable() {
        tracing::warn!(repository, code = e.code(), error = %e, "plan failed; the message will be delivered again");
        Outcome::Retry {
            code: e.code().into(),
        }
    } else {
        tracing::error!(repository, code = e.code(), error = %e, "plan failed; message dropped");
        Outcome::Dropped {
            code: e.code().into(),
        }
    }
}

/// The images that start now: those whose parents are not in the plan (the others start when
/// their parent succeeds).
pub fn startable(plan: &Plan) -> Vec<&PlannedImage> {
    plan.images
        .iter()
        .filter(|i| {
            !i.parents
                .iter()
                .any(|p| plan.images.iter().any(|o| &o.name == p))
        })
        .collect()
}

/// Why an image cannot be started: its variables, or a platform CodeBuild cannot build as asked.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error(transparent)]
    BuildEnv(#[from] build_env::BuildEnvError),
    #[error(transparent)]
    Layout(#[from] build_graph::LayoutError),
}

impl RequestError {
    pub fn code(&self) -> &'static str {
        match self {
            RequestError::BuildEnv(e) => e.code(),
            RequestError::Layout(e) => e.code(),
        }
    }
}

/// The start request for one image: one build, or a batch that builds each platform natively
/// and merges them (`slipway_core::build_graph`).
pub fn start_request(
    settings: &Settings,
    job: &Job,
    image: &PlannedImage,
) -> Result<StartRequest, RequestError> {
    let env = build_env::build_env(job, image, &settings.registry)?;
    let layout = build_graph::layout(image, &settings.machines)?;
    let buildspec = match &layout {
        Layout::Batch { platforms } => build_graph::batch_buildspec(BUILDSPEC, platforms),
        Layout::Single { .. } => BUILDSPEC.to_string(),
    };
    Ok(StartRequest {
        project: settings.project.clone(),
        source_version: image.commit.clone(),
        // The repository name was validated by build_env; the payload's URL is not used.
        source_location: format!("https://github.com/{}.git", job.repository),
        buildspec,
        layout,
        env,
        idempotency_token: build_env::idempotency_token(
            &job.delivery_id,
            &image.name,
            &image.commit,
        ),
        status_context: build_env::status_context(&image.name),
        ecr: slipway_core::ecr::ecr_repository(&image.name, image.ecr),
    })
}

/// A start-up error: names the variable or parameter to fix.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Setting(#[from] slipway_core::settings::SettingError),
    #[error(transparent)]
    Parameter(#[from] slipway_aws::ssm::ParameterError),
    #[error("the GitHub client cannot start: {0}")]
    GitHub(#[from] slipway_github::SetupError),
    #[error("{ENV_BUILD_IMAGE_AMD64} / {ENV_BUILD_IMAGE_ARM64}: {0}")]
    BuildImage(slipway_core::names::Invalid),
}

/// Everything `run` reads from the environment.
#[derive(Debug, Clone)]
pub struct EnvSettings {
    pub project: String,
    pub namespace: String,
    pub token_param: Option<String>,
    pub parameter_prefix: String,
    pub queue_url: String,
    pub github_api_url: String,
    pub max_attempts: u32,
    pub machines: BuildMachines,
}

/// CodeBuild's standard images, as the template's project uses them.
pub const DEFAULT_BUILD_IMAGE_AMD64: &str = "aws/codebuild/amazonlinux-x86_64-standard:5.0";
pub const DEFAULT_BUILD_IMAGE_ARM64: &str = "aws/codebuild/amazonlinux-aarch64-standard:3.0";

impl EnvSettings {
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self, StartupError> {
        let vars = slipway_core::settings::Vars::new(var);
        let get = |n| vars.get(n);
        let required = |n| vars.required(n);
        let max_attempts = vars.number(ENV_MAX_ATTEMPTS, 3u32, 1..=20)?;
        let machines = BuildMachines {
            amd64_image: get(ENV_BUILD_IMAGE_AMD64)
                .unwrap_or_else(|| DEFAULT_BUILD_IMAGE_AMD64.into()),
            arm64_image: get(ENV_BUILD_IMAGE_ARM64)
                .unwrap_or_else(|| DEFAULT_BUILD_IMAGE_ARM64.into()),
        };
        machines.check().map_err(StartupError::BuildImage)?;
        Ok(EnvSettings {
            project: required(ENV_PROJECT_NAME)?,
            namespace: required(ENV_IMAGE_NAMESPACE)?,
            token_param: get(ENV_GITHUB_TOKEN_PARAM),
            parameter_prefix: get(ENV_PARAMETER_PREFIX).unwrap_or_else(|| "/slipway".into()),
            queue_url: required(ENV_QUEUE_URL)?,
            github_api_url: get(ENV_GITHUB_API_URL)
                .unwrap_or_else(|| slipway_github::DEFAULT_API_URL.into()),
            max_attempts,
            machines,
        })
    }
}

/// The Lambda: settings from the environment, the GitHub token from SSM, then one batch per
/// invocation.
pub async fn run() -> Result<(), lambda_runtime::Error> {
    slipway_aws::logging::init();
    let env = EnvSettings::from_vars(|k| std::env::var(k).ok())
        .inspect_err(|e| tracing::error!(error = %e, "spawner cannot start"))?;
    let aws = aws_config::load_from_env().await;
    let token = match &env.token_param {
        Some(name) => Some(
            slipway_aws::ssm::get_parameter(&aws_sdk_ssm::Client::new(&aws), name)
                .await
                .inspect_err(|e| tracing::error!(error = %e, "spawner cannot start"))?,
        ),
        None => None,
    };
    // The spawner retries StartBuild itself (see `Backoff`): one retry policy, not two stacked.
    let codebuild = aws_sdk_codebuild::Client::from_conf(
        aws_sdk_codebuild::config::Builder::from(&aws)
            .retry_config(aws_sdk_codebuild::config::retry::RetryConfig::disabled())
            .build(),
    );
    let spawner = Spawner {
        planner: GitHubPlanner::new(&env.github_api_url, &env.namespace, token)
            .map_err(StartupError::from)?,
        builds: AwsBuilds {
            codebuild: CodeBuildStarter::new(codebuild),
            ecr: slipway_aws::ecr::EcrRepositories::new(&aws),
        },
        queue: SqsJobQueue::new(aws_sdk_sqs::Client::new(&aws), &env.queue_url),
        settings: Settings {
            project: env.project.clone(),
            registry: RegistrySettings {
                parameter_prefix: env.parameter_prefix.clone(),
            },
            machines: env.machines.clone(),
            backoff: Backoff::default(),
            max_attempts: env.max_attempts,
        },
    };
    tracing::info!(project = %env.project, namespace = %env.namespace, "spawner started");
    let spawner = &spawner;
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: lambda_runtime::LambdaEvent<SqsEvent>| async move {
            Ok::<_, lambda_runtime::Error>(spawner.handle(event.payload).await)
        },
    ))
    .await
}
