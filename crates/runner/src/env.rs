//! A build's environment, composed as CodeBuild composes it, each layer over the one before:
//! the few host variables a build may see < CodeBuild's own (`CODEBUILD_*`) < the buildspec's
//! `env.variables` < slipway's variables (`slipway_core::build_env`, CodeBuild's start-build
//! overrides); then the `PARAMETER_STORE` variables, resolved from the local [`SecretSource`]
//! and masked in the log.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use slipway_core::build_env::{self, BuildVar, VarKind};

use crate::mask::Masker;
use crate::run::Prepared;
use crate::secrets::SecretSource;

/// Environment variables of the host that a build may see (the rest stays out, as on CodeBuild).
const PASSED_THROUGH: &[&str] = &[
    "PATH",
    "HOME",
    "USER",
    "LANG",
    "TMPDIR",
    "DOCKER_HOST",
    "DOCKER_CERT_PATH",
    "DOCKER_TLS_VERIFY",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    // How buildx shows progress (`plain`, `rawjson`): a display choice of the caller.
    "BUILDKIT_PROGRESS",
    // Docker Hub's API for the README sync (default https://hub.docker.com): the machine's
    // choice, e.g. a stand-in for tests.
    build_env::SLIPWAY_DOCKERHUB_API,
];

fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_millis()
}

/// `branch/main` or `tag/v1.0`, as CodeBuild's webhook builds name the trigger.
fn webhook_trigger(git_ref: &str) -> Option<String> {
    if let Some(b) = git_ref.strip_prefix("refs/heads/") {
        Some(format!("branch/{b}"))
    } else {
        git_ref
            .strip_prefix("refs/tags/")
            .map(|t| format!("tag/{t}"))
    }
}

/// The variables of one build, and which of them are secrets.
pub(crate) struct Environment {
    pub vars: BTreeMap<String, String>,
    /// The `PARAMETER_STORE` variables' names.
    pub secret_names: Vec<String>,
    pub masker: Masker,
}

/// The environment of `req`'s build `build_id`, checked out in `src`, with its variables
/// (validated by `build_env`, or a StartBuild request's) and its own Docker configuration
/// directory; CodeBuild's webhook variables only for a push (`req.webhook`). A parameter that no
/// source has fails the build before it starts, as on CodeBuild.
pub(crate) fn environment(
    req: &Prepared<'_>,
    build_id: &str,
    src: &Path,
    docker_config: &Path,
) -> Result<Environment, String> {
    let mut env: BTreeMap<String, String> = BTreeMap::new();
    for name in PASSED_THROUGH {
        if let Ok(v) = std::env::var(name) {
            env.insert(name.to_string(), v);
        }
    }
    env.insert(
        "DOCKER_CONFIG".into(),
        docker_config.to_string_lossy().into(),
    );
    let src_dir = src.to_string_lossy().to_string();
    let commit = req.commit.clone();
    let codebuild = [
        ("CODEBUILD_SRC_DIR", src_dir.clone()),
        ("CODEBUILD_SOURCE_VERSION", commit.clone()),
        ("CODEBUILD_RESOLVED_SOURCE_VERSION", commit.clone()),
        ("CODEBUILD_SOURCE_REPO_URL", req.source_url.clone()),
        ("CODEBUILD_BUILD_ID", build_id.to_string()),
        ("CODEBUILD_BUILD_NUMBER", req.build_number.to_string()),
        ("CODEBUILD_START_TIME", now_ms().to_string()),
        ("CODEBUILD_INITIATOR", "slipway".to_string()),
        ("CODEBUILD_CI", "true".to_string()),
    ];
    for (k, v) in codebuild {
        env.insert(k.into(), v);
    }
    if let Some((git_ref, before)) = &req.webhook {
        env.insert("CODEBUILD_WEBHOOK_HEAD_REF".into(), git_ref.clone());
        env.insert("CODEBUILD_WEBHOOK_PREV_COMMIT".into(), before.clone());
        if let Some(trigger) = webhook_trigger(git_ref) {
            env.insert("CODEBUILD_WEBHOOK_TRIGGER".into(), trigger);
            env.insert("CODEBUILD_WEBHOOK_EVENT".into(), "PUSH".into());
        }
    }
    for (k, v) in &req.buildspec.variables {
        env.insert(k.clone(), v.clone());
    }
    env.insert(
        build_env::SLIPWAY_BUILD_NETWORK.into(),
        req.build_network.clone(),
    );
    let mut parameters: Vec<(String, String)> = req.buildspec.parameter_store.clone();
    for BuildVar { name, value, kind } in req.vars.iter().cloned() {
        match kind {
            VarKind::Plain => {
                env.insert(name, value);
            }
            VarKind::ParameterStore => parameters.push((name, value)),
        }
    }
    let mut secret_values: Vec<String> = Vec::new();
    let mut secret_names: Vec<String> = Vec::new();
    for (name, parameter) in parameters {
        // A missing parameter fails the build before it starts, as on CodeBuild.
        let value = req.secrets.resolve(&parameter).ok_or_else(|| {
            format!(
                "the parameter {parameter} (for {name}) is not in the secrets file nor in {}",
                SecretSource::env_name(&parameter)
            )
        })?;
        // Masked in the log like CodeBuild masks parameters; the registry user name is not a
        // secret, and masking it would hide every ordinary word it matches.
        if value.len() >= 3 && name != build_env::SLIPWAY_REGISTRY_USER {
            secret_values.push(value.clone());
        }
        env.insert(name.clone(), value);
        secret_names.push(name);
    }
    Ok(Environment {
        vars: env,
        secret_names,
        masker: Masker::new(secret_values),
    })
}
