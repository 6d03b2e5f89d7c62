//! The local build runner (`slipway build`, and `slipway serve`'s builder): runs `buildspec.yml`
//! for the planned images on the local Docker engine, as CodeBuild would: a clean checkout of the
//! planned commit (under `slipway_git`'s clone rules), the environment CodeBuild gives
//! (`CODEBUILD_SRC_DIR`, `CODEBUILD_RESOLVED_SOURCE_VERSION`, ...), the variables of
//! `slipway_core::build_env`, phases `install`, `pre_build`, `build`, `post_build` with their
//! `on-failure` and `finally`, exported variables, and `PARAMETER_STORE` variables resolved from a
//! local source (a file or the environment) instead of Parameter Store.
//!
//! Each command is the buildspec's own text, run as `bash -c <wrapper> ... <command>`: no value of
//! a job or plan is ever part of a command; values reach the commands only as environment
//! variables.
//!
//! [`run_build`] builds one image; `slipway build` and `slipway serve` call it.
//! [`run_build_until`] is the same with a cancellation token: `slipway serve` cancels a running
//! build through it (its commands' process groups are stopped, nothing runs after, nothing is
//! pushed after). [`run_vars_build`] runs a build given by a CodeBuild StartBuild request's
//! variables instead of a job and a planned image (the AWS bench's CodeBuild endpoint). One module per
//! concern: [`buildspec`](Buildspec) (the model), `secrets` (parameters on one machine), `env`
//! (the build's environment), `shell` (how a command runs), `mask` (secrets out of the log),
//! `run` (the phases and the outcome). The checkout follows `slipway_git`'s clone rules.

mod buildspec;
mod env;
mod mask;
mod run;
mod secrets;
mod shell;

pub use buildspec::{Buildspec, BuildspecError, OnFailure, PHASES, Phase, SHIPPED_BUILDSPEC};
pub use run::{
    BUILD_NETWORKS, BuildOutcome, BuildRequest, BuildStatus, PhaseOutcome, VarsBuild,
    check_build_network, run_build, run_build_until, run_vars_build,
};
pub use secrets::{SecretSource, SecretsFileError};
pub use tokio_util::sync::CancellationToken;
