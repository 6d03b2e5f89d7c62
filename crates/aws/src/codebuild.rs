//! CodeBuild `StartBuild` (one build of one image) and `StartBuildBatch` (one image whose
//! platforms build natively, then merge: `slipway_core::build_graph`), with everything the
//! buildspec and the notifier need carried as overrides (see `slipway_core::build_env`).

use aws_sdk_codebuild::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_codebuild::types::{
    BuildStatusConfig, EnvironmentType, EnvironmentVariable, EnvironmentVariableType, SourceType,
};
use slipway_core::build_env::{BuildVar, VarKind};
use slipway_core::build_graph::Layout;

/// One StartBuild call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartRequest {
    pub project: String,
    /// The commit to build (`sourceVersion`).
    pub source_version: String,
    /// `https://github.com/owner/name.git`: one project builds every repository.
    pub source_location: String,
    /// The shipped buildspec (`buildspecOverride`); for a batch, with its build graph.
    pub buildspec: String,
    /// One build (on the project's machine or a native one) or a batch.
    pub layout: Layout,
    pub env: Vec<BuildVar>,
    pub idempotency_token: String,
    /// The commit status context (`slipway/<image>`).
    pub status_context: String,
    /// The image's ECR repository, created before the build when it does not exist.
    pub ecr: Option<slipway_core::ecr::EcrRepository>,
}

/// Why a build did not start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildStartError {
    /// Throttled or over the account's concurrent-build limit: retry later.
    #[error("CodeBuild throttled StartBuild ({code})")]
    Throttled { code: String },
    /// No answer, a timeout or a server error: retrying may help.
    #[error("CodeBuild could not be reached: {0}")]
    Transient(String),
    /// CodeBuild refused the request (invalid input, unknown project): retrying will not help.
    #[error("CodeBuild refused StartBuild ({code}): {message}")]
    Rejected { code: String, message: String },
}

impl BuildStartError {
    pub fn code(&self) -> &'static str {
        match self {
            BuildStartError::Throttled { .. } => "codebuild_throttled",
            BuildStartError::Transient(_) => "codebuild_unavailable",
            BuildStartError::Rejected { .. } => "codebuild_rejected",
        }
    }

    pub fn is_retryable(&self) -> bool {
        !matches!(self, BuildStartError::Rejected { .. })
    }
}

/// A started build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartedBuild {
    pub id: String,
    pub arn: Option<String>,
}

/// Starts builds in one CodeBuild project.
#[derive(Debug, Clone)]
pub struct CodeBuildStarter {
    client: aws_sdk_codebuild::Client,
}

impl CodeBuildStarter {
    pub fn new(client: aws_sdk_codebuild::Client) -> Self {
        Self { client }
    }

    /// Starts the image: StartBuild, or StartBuildBatch for a [`Layout::Batch`].
    pub async fn start_build(&self, req: &StartRequest) -> Result<StartedBuild, BuildStartError> {
        let env = environment(req);
        let machine = match &req.layout {
            Layout::Batch { .. } => return self.start_batch(req, env).await,
            Layout::Single { machine } => machine,
        };
        let mut start = self
            .client
            .start_build()
            .project_name(&req.project)
            .source_type_override(SourceType::Github)
            .source_location_override(&req.source_location)
            .source_version(&req.source_version)
            .buildspec_override(&req.buildspec)
            .set_environment_variables_override(Some(env))
            .idempotency_token(&req.idempotency_token)
            .report_build_status_override(true)
            .build_status_config_override(
                BuildStatusConfig::builder()
                    .context(&req.status_context)
                    .build(),
            );
        if let Some(m) = machine {
            // A single-platform image on the machine of its platform; the project's compute type
            // (and privileged mode) stay.
            start = start
                .environment_type_override(EnvironmentType::from(m.environment_type))
                .image_override(&m.image);
        }
        let out = start.send().await.map_err(classify)?;
        let build = out.build_value.ok_or_else(|| BuildStartError::Rejected {
            code: "no_build".into(),
            message: "StartBuild answered without a build".into(),
        })?;
        Ok(StartedBuild {
            id: build.id.unwrap_or_default(),
            arn: build.arn,
        })
    }

    /// One batch: the buildspec's build graph runs the platform builds and the merge. CodeBuild
    /// reports no commit status for it (a batch's status has no per-image context); the notifier
    /// sets `slipway/<image>` from the merge or a failed platform.
    async fn start_batch(
        &self,
        req: &StartRequest,
        env: Vec<EnvironmentVariable>,
    ) -> Result<StartedBuild, BuildStartError> {
        let out = self
            .client
            .start_build_batch()
            .project_name(&req.project)
            .source_type_override(SourceType::Github)
            .source_location_override(&req.source_location)
            .source_version(&req.source_version)
            .buildspec_override(&req.buildspec)
            .set_environment_variables_override(Some(env))
            .idempotency_token(&req.idempotency_token)
            .report_build_batch_status_override(false)
            .send()
            .await
            .map_err(classify)?;
        let batch = out.build_batch.ok_or_else(|| BuildStartError::Rejected {
            code: "no_build".into(),
            message: "StartBuildBatch answered without a batch".into(),
        })?;
        Ok(StartedBuild {
            id: batch.id.unwrap_or_default(),
            arn: batch.arn,
        })
    }
}

/// The build's variables as CodeBuild overrides.
fn environment(req: &StartRequest) -> Vec<EnvironmentVariable> {
    req.env
        .iter()
        .map(|v| {
            EnvironmentVariable::builder()
                .name(&v.name)
                .value(&v.value)
                .r#type(match v.kind {
                    VarKind::Plain => EnvironmentVariableType::Plaintext,
                    VarKind::ParameterStore => EnvironmentVariableType::ParameterStore,
                })
                .build()
                .expect("name, value and type are set")
        })
        .collect()
}

fn classify<E>(e: SdkError<E, aws_sdk_codebuild::config::http::HttpResponse>) -> BuildStartError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let code = e.code().unwrap_or_default().to_string();
    if matches!(
        code.as_str(),
        "ThrottlingException"
            | "Throttling"
            | "TooManyRequestsException"
            | "RequestLimitExceeded"
            | "AccountLimitExceededException"
    ) {
        return BuildStartError::Throttled { code };
    }
    match &e {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            BuildStartError::Transient(DisplayErrorContext(&e).to_string())
        }
        SdkError::ServiceError(s) if s.raw().status().is_server_error() => {
            BuildStartError::Transient(DisplayErrorContext(&e).to_string())
        }
        _ => BuildStartError::Rejected {
            code: if code.is_empty() {
                "unknown".into()
            } else {
                code
            },
            message: e.message().unwrap_or("no message").to_string(),
        },
    }
}
