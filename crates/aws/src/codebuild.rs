//! CodeBuild `StartBuild`: one build of one image, with everything the buildspec and the
//! notifier need carried as overrides (see `slipway_core::build_env`).

use aws_sdk_codebuild::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_codebuild::operation::start_build::StartBuildError as SdkStartBuildError;
use aws_sdk_codebuild::types::{
    BuildStatusConfig, EnvironmentVariable, EnvironmentVariableType, SourceType,
};
use slipway_core::build_env::{BuildVar, VarKind};

/// One StartBuild call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartRequest {
    pub project: String,
    /// The commit to build (`sourceVersion`).
    pub source_version: String,
    /// `https://github.com/owner/name.git`: one project builds every repository.
    pub source_location: String,
    /// The shipped buildspec (`buildspecOverride`).
    pub buildspec: String,
    pub env: Vec<BuildVar>,
    pub idempotency_token: String,
    /// The commit status context (`slipway/<image>`).
    pub status_context: String,
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

    pub async fn start_build(&self, req: &StartRequest) -> Result<StartedBuild, BuildStartError> {
        let env: Vec<EnvironmentVariable> = req
            .env
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
            .collect();
        let out = self
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
            )
            .send()
            .await
            .map_err(classify)?;
        let build = out.build_value.ok_or_else(|| BuildStartError::Rejected {
            code: "no_build".into(),
            message: "StartBuild answered without a build".into(),
        })?;
        Ok(StartedBuild {
            id: build.id.unwrap_or_default(),
            arn: build.arn,
        })
    }
}

fn classify(
    e: SdkError<SdkStartBuildError, aws_sdk_codebuild::config::http::HttpResponse>,
) -> BuildStartError {
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
