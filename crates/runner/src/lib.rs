//! The local build runner (`slipway build`, and `slipway serve`'s builder): runs `buildspec.yml` for the planned images on the local Docker engine, as
//! CodeBuild would: a clean checkout of the planned commit, the environment CodeBuild gives
//! (`CODEBUILD_SRC_DIR`, `CODEBUILD_RESOLVED_SOURCE_VERSION`, ...), the variables of
//! `slipway_core::build_env`, phases `install`, `pre_build`, `build`, `post_build` with their
//! `on-failure` and `finally`, exported variables, and `PARAMETER_STORE` variables resolved from a
//! local source (a file or the environment) instead of Parameter Store.
//!
//! Each command is the buildspec's own text, run as `bash -c <wrapper> ... <command>`: no value of
//! a job or plan is ever part of a command; values reach the commands only as environment
//! variables. Like CodeBuild's version 0.2, variables and the working directory carry over from
//! one command to the next (the wrapper saves them after each command).
//!
//! [`run_build`] builds one image; `slipway build` and `slipway serve` call it.
//! [`run_build_until`] is the same with a cancellation token: `slipway serve` cancels a running
//! build through it (its commands' process groups are stopped, nothing runs after, nothing is
//! pushed after).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use slipway_core::Job;
use slipway_core::build_env::{self, BuildVar, RegistrySettings, VarKind};
use slipway_core::plan::PlannedImage;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;
pub use tokio_util::sync::CancellationToken;

/// The buildspec slipway ships (the spawner hands the same text to CodeBuild).
pub const SHIPPED_BUILDSPEC: &str = include_str!("../../../buildspec.yml");

/// The phases CodeBuild runs, in order.
pub const PHASES: [&str; 4] = ["install", "pre_build", "build", "post_build"];

// ---------------------------------------------------------------------------------------------
// buildspec.yml

/// A parsed buildspec (version 0.2).
#[derive(Debug, Clone)]
pub struct Buildspec {
    pub variables: Vec<(String, String)>,
    pub parameter_store: Vec<(String, String)>,
    pub exported_variables: Vec<String>,
    pub phases: Vec<Phase>,
}

#[derive(Debug, Clone)]
pub struct Phase {
    pub name: String,
    pub on_failure: Option<OnFailure>,
    pub commands: Vec<String>,
    pub finally: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnFailure {
    Abort,
    Continue,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct SpecFile {
    version: serde_norway::Value,
    #[serde(default)]
    env: SpecEnv,
    #[serde(default)]
    phases: BTreeMap<String, SpecPhase>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
struct SpecEnv {
    shell: Option<String>,
    #[serde(default)]
    variables: BTreeMap<String, serde_norway::Value>,
    #[serde(default)]
    parameter_store: BTreeMap<String, String>,
    #[serde(default)]
    secrets_manager: BTreeMap<String, String>,
    #[serde(default)]
    exported_variables: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct SpecPhase {
    on_failure: Option<String>,
    #[serde(default)]
    commands: Vec<String>,
    #[serde(default)]
    finally: Vec<String>,
}

/// Why a buildspec cannot be run.
#[derive(Debug, thiserror::Error)]
pub enum BuildspecError {
    #[error("buildspec is not valid YAML for version 0.2: {0}")]
    Yaml(String),
    #[error("buildspec: {0}")]
    Unsupported(String),
}

fn is_env_name(n: &str) -> bool {
    let b = n.as_bytes();
    !b.is_empty()
        && (b[0].is_ascii_alphabetic() || b[0] == b'_')
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

impl Buildspec {
    pub fn parse(text: &str) -> Result<Self, BuildspecError> {
        let f: SpecFile =
            serde_norway::from_str(text).map_err(|e| BuildspecError::Yaml(e.to_string()))?;
        let version = match &f.version {
            serde_norway::Value::String(s) => s.clone(),
            serde_norway::Value::Number(n) => n.to_string(),
            _ => String::new(),
        };
        if version != "0.2" {
            return Err(BuildspecError::Unsupported(format!(
                "version must be 0.2 (found `{version}`)"
            )));
        }
        if let Some(shell) = &f.env.shell
            && shell != "bash"
        {
            return Err(BuildspecError::Unsupported(format!(
                "env.shell `{shell}`: slipway build runs bash"
            )));
        }
        if !f.env.secrets_manager.is_empty() {
            return Err(BuildspecError::Unsupported(
                "env.secrets-manager: use parameter-store".into(),
            ));
        }
        let mut variables = Vec::new();
        for (k, v) in f.env.variables {
            let v = match v {
                serde_norway::Value::String(s) => s,
                serde_norway::Value::Number(n) => n.to_string(),
                serde_norway::Value::Bool(b) => b.to_string(),
                serde_norway::Value::Null => String::new(),
                _ => {
                    return Err(BuildspecError::Unsupported(format!(
                        "env.variables.{k} must be a scalar"
                    )));
                }
            };
            variables.push((k, v));
        }
        for name in variables
            .iter()
            .map(|(k, _)| k)
            .chain(f.env.parameter_store.keys())
            .chain(f.env.exported_variables.iter())
        {
            if !is_env_name(name) {
                return Err(BuildspecError::Unsupported(format!(
                    "`{name}` is not an environment variable name"
                )));
            }
        }
        let mut phases = Vec::new();
        for name in f.phases.keys() {
            if !PHASES.contains(&name.as_str()) {
                return Err(BuildspecError::Unsupported(format!(
                    "unknown phase `{name}` (phases are install, pre_build, build, post_build)"
                )));
            }
        }
        let mut spec_phases = f.phases;
        for name in PHASES {
            if let Some(p) = spec_phases.remove(name) {
                let on_failure = match p.on_failure.as_deref() {
                    None => None,
                    Some("ABORT") => Some(OnFailure::Abort),
                    Some("CONTINUE") => Some(OnFailure::Continue),
                    Some(other) => {
                        return Err(BuildspecError::Unsupported(format!(
                            "phases.{name}.on-failure `{other}` (ABORT or CONTINUE)"
                        )));
                    }
                };
                phases.push(Phase {
                    name: name.to_string(),
                    on_failure,
                    commands: p.commands,
                    finally: p.finally,
                });
            }
        }
        Ok(Buildspec {
            variables,
            parameter_store: f.env.parameter_store.into_iter().collect(),
            exported_variables: f.env.exported_variables,
            phases,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Secrets

/// Why the secrets file cannot be used. Its values are never part of a message.
#[derive(Debug, thiserror::Error)]
pub enum SecretsFileError {
    #[error("cannot read the secrets file {path}: {reason}", path = path.display())]
    Unreadable { path: PathBuf, reason: String },
    #[error("secrets file {path} line {line}: expected `parameter-name=value`", path = path.display())]
    Malformed { path: PathBuf, line: usize },
}

impl SecretsFileError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unreadable { .. } => "secrets_file_unreadable",
            Self::Malformed { .. } => "secrets_file_malformed",
        }
    }
}

/// Where `PARAMETER_STORE` values come from on one machine.
#[derive(Debug, Clone, Default)]
pub struct SecretSource {
    file: BTreeMap<String, String>,
}

impl SecretSource {
    /// Reads `parameter-name=value` lines (blank lines and `#` comments skipped).
    pub fn load(path: Option<&Path>) -> Result<Self, SecretsFileError> {
        let mut file = BTreeMap::new();
        if let Some(path) = path {
            let text = std::fs::read_to_string(path).map_err(|e| SecretsFileError::Unreadable {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })?;
            for (n, line) in text.lines().enumerate() {
                let line = line.trim_end_matches('\r');
                if line.trim().is_empty() || line.trim_start().starts_with('#') {
                    continue;
                }
                let (k, v) = line
                    .split_once('=')
                    .ok_or_else(|| SecretsFileError::Malformed {
                        path: path.to_path_buf(),
                        line: n + 1,
                    })?;
                file.insert(k.trim().to_string(), v.to_string());
            }
        }
        Ok(SecretSource { file })
    }

    /// Values given by the caller (the CodeBuild endpoint of the AWS bench resolves them from
    /// Parameter Store, as CodeBuild does, before the build runs).
    pub fn from_values(values: BTreeMap<String, String>) -> Self {
        SecretSource { file: values }
    }

    /// The environment variable a parameter is read from when the file does not have it.
    pub fn env_name(parameter: &str) -> String {
        let mut s = String::from("SLIPWAY_SECRET_");
        s.extend(parameter.trim_start_matches('/').chars().map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        }));
        s
    }

    pub fn resolve(&self, parameter: &str) -> Option<String> {
        self.file
            .get(parameter)
            .cloned()
            .or_else(|| std::env::var(Self::env_name(parameter)).ok())
    }
}

// ---------------------------------------------------------------------------------------------
// The runner

/// One image to build.
#[derive(Debug, Clone)]
pub struct BuildRequest {
    pub job: Job,
    pub image: PlannedImage,
    /// Clone URL or local path of the repository.
    pub source: String,
    pub buildspec: Buildspec,
    pub registry: RegistrySettings,
    pub secrets: SecretSource,
    /// Each build gets its own directory below this one.
    pub work_root: PathBuf,
    pub keep_work_dir: bool,
    pub build_number: u64,
    /// `SLIPWAY_BUILD_NETWORK` (see [`check_build_network`]): the machine's, not the image's.
    pub build_network: String,
}

/// The values `SLIPWAY_BUILD_NETWORK` may take (the buildspec refuses any other).
pub const BUILD_NETWORKS: &[&str] = &["", "default", "host", "none"];

/// Checks a build network setting; the message says what is allowed.
pub fn check_build_network(network: &str) -> Result<(), String> {
    if BUILD_NETWORKS.contains(&network) {
        Ok(())
    } else {
        Err(format!(
            "the build network {network:?} is not one of default, host, none (or empty for the engine's default)"
        ))
    }
}

/// One build given by its variables, as a CodeBuild `StartBuild` request carries them (the
/// environment overrides `build_env` made, the source and its version), rather than by a job and
/// a planned image. The AWS bench's CodeBuild endpoint runs StartBuild requests through this, so
/// the buildspec runs the same way under `slipway build`, `slipway serve` and the bench.
#[derive(Debug, Clone)]
pub struct VarsBuild {
    /// Where the source is cloned from (a local path or clone URL).
    pub source: String,
    /// `sourceVersion`: the commit to check out.
    pub source_version: String,
    /// `CODEBUILD_SOURCE_REPO_URL`: the source location as the request named it.
    pub source_url: String,
    /// The build's variables: plain values and `PARAMETER_STORE` parameter names.
    pub vars: Vec<BuildVar>,
    pub buildspec: Buildspec,
    pub secrets: SecretSource,
    pub work_root: PathBuf,
    pub keep_work_dir: bool,
    pub build_number: u64,
    /// `CODEBUILD_BUILD_ID` (`project:uuid`); `None` makes one.
    pub build_id: Option<String>,
    /// `SLIPWAY_BUILD_NETWORK`: the machine's setting (CodeBuild's hosts have a bridge: empty).
    pub build_network: String,
}

/// What the shared part of the runner needs, from either kind of request.
struct Prepared<'a> {
    source: &'a str,
    commit: String,
    image: String,
    source_url: String,
    /// `(ref, before)` of the push, for CodeBuild's webhook variables (`slipway build`).
    webhook: Option<(String, String)>,
    vars: Vec<BuildVar>,
    buildspec: &'a Buildspec,
    secrets: &'a SecretSource,
    work_root: &'a Path,
    keep_work_dir: bool,
    build_number: u64,
    build_network: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BuildStatus {
    Succeeded,
    Failed,
    /// Cancelled while it ran (CodeBuild's word for a stopped build).
    Stopped,
}

impl BuildStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            BuildStatus::Succeeded => "SUCCEEDED",
            BuildStatus::Failed => "FAILED",
            BuildStatus::Stopped => "STOPPED",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct PhaseOutcome {
    /// `DOWNLOAD_SOURCE`, `INSTALL`, `PRE_BUILD`, `BUILD`, `POST_BUILD` as CodeBuild names them.
    pub phase: String,
    pub status: BuildStatus,
    pub duration_ms: u64,
    /// Which command failed (its position; the text is the buildspec's and is in the log).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct BuildOutcome {
    pub build_id: String,
    pub image: String,
    pub commit: String,
    pub status: BuildStatus,
    pub phases: Vec<PhaseOutcome>,
    /// The buildspec's exported variables with the values they had at the end of the build.
    pub exported: BTreeMap<String, String>,
    pub duration_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub work_dir: Option<PathBuf>,
}

/// Saves the variables and working directory of a command for the next one (CodeBuild 0.2
/// semantics), merges standard error into standard output, and runs the command text with
/// `set -a` so that plain assignments carry over like exported ones. Arguments: state file, cwd
/// file, CODEBUILD_BUILD_SUCCEEDING, the command, the names of secret variables (kept out of the
/// state file: they come from the process environment every time).
const WRAPPER: &str = r#"exec 2>&1
__slipway_state=$1 __slipway_cwd=$2 __slipway_ok=$3 __slipway_cmd=$4 __slipway_secrets=$5
shift 5
. "$__slipway_state"
CODEBUILD_BUILD_SUCCEEDING=$__slipway_ok
cd -- "$(cat -- "$__slipway_cwd")" || exit 1
__slipway_save() {
  __slipway_rc=$?
  set +a
  for __slipway_n in $__slipway_secrets; do unset "$__slipway_n"; done
  export -n __slipway_rc __slipway_n 2>/dev/null
  { export -p > "$__slipway_state.new" && mv -f -- "$__slipway_state.new" "$__slipway_state"; pwd > "$__slipway_cwd"; } 2>/dev/null
  exit "$__slipway_rc"
}
trap __slipway_save EXIT
set -a
eval "$__slipway_cmd"
"#;

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
];

fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_millis()
}

/// Runs the buildspec for one image. Never panics on a build problem: the outcome says what
/// failed. `log` receives every output line, with secret values masked.
pub async fn run_build(req: &BuildRequest, log: &(dyn Fn(&str) + Sync)) -> BuildOutcome {
    run_build_until(req, log, &CancellationToken::new()).await
}

/// How long a cancelled command's processes get after SIGTERM (docker buildx cancels its build,
/// an autotest's `trap` takes its compose project down) before the group is killed.
const CANCEL_GRACE: Duration = Duration::from_secs(10);

/// The error a cancelled command ends the build with.
const CANCELLED: &str = "the build was cancelled";

/// [`run_build`] that stops when `cancel` fires: the running command's whole process group gets
/// SIGTERM (then SIGKILL after [`CANCEL_GRACE`]), no later command or phase runs (so nothing is
/// pushed after the cancel), and the outcome is [`BuildStatus::Stopped`].
pub async fn run_build_until(
    req: &BuildRequest,
    log: &(dyn Fn(&str) + Sync),
    cancel: &CancellationToken,
) -> BuildOutcome {
    // Validate everything before anything runs.
    let vars = build_env::build_env(&req.job, &req.image, &req.registry)
        .map_err(|e| format!("the image cannot be built: {e}"));
    let prepared = Prepared {
        source: &req.source,
        commit: req.image.commit.clone(),
        image: req.image.name.clone(),
        source_url: req.job.clone_url.clone(),
        webhook: Some((req.job.git_ref.clone(), req.job.before.clone())),
        vars: vars.as_ref().cloned().unwrap_or_default(),
        buildspec: &req.buildspec,
        secrets: &req.secrets,
        work_root: &req.work_root,
        keep_work_dir: req.keep_work_dir,
        build_number: req.build_number,
        build_network: req.build_network.clone(),
    };
    run_prepared(prepared, vars.err(), None, log, cancel).await
}

/// Runs the buildspec for a build given by its variables (see [`VarsBuild`]).
pub async fn run_vars_build(
    req: &VarsBuild,
    log: &(dyn Fn(&str) + Sync),
    cancel: &CancellationToken,
) -> BuildOutcome {
    let var = |name: &str| {
        req.vars
            .iter()
            .find(|v| v.name == name && v.kind == VarKind::Plain)
            .map(|v| v.value.clone())
            .unwrap_or_default()
    };
    let prepared = Prepared {
        source: &req.source,
        commit: req.source_version.clone(),
        image: var(build_env::SLIPWAY_IMAGE),
        source_url: req.source_url.clone(),
        webhook: None,
        vars: req.vars.clone(),
        buildspec: &req.buildspec,
        secrets: &req.secrets,
        work_root: &req.work_root,
        keep_work_dir: req.keep_work_dir,
        build_number: req.build_number,
        build_network: req.build_network.clone(),
    };
    run_prepared(prepared, None, req.build_id.clone(), log, cancel).await
}

async fn run_prepared(
    req: Prepared<'_>,
    invalid: Option<String>,
    build_id: Option<String>,
    log: &(dyn Fn(&str) + Sync),
    cancel: &CancellationToken,
) -> BuildOutcome {
    let started = Instant::now();
    let build_uuid = uuid::Uuid::new_v4();
    let build_id = build_id.unwrap_or_else(|| format!("slipway-local:{build_uuid}"));
    let mut outcome = BuildOutcome {
        build_id: build_id.clone(),
        image: req.image.clone(),
        commit: req.commit.clone(),
        status: BuildStatus::Failed,
        phases: Vec::new(),
        exported: BTreeMap::new(),
        duration_ms: 0,
        error: None,
        work_dir: None,
    };
    let work = req.work_root.join(format!("slipway-build-{build_uuid}"));
    let result = if cancel.is_cancelled() {
        Err(CANCELLED.to_string())
    } else if let Some(e) = invalid {
        Err(e)
    } else {
        run_in(&req, log, &build_id, &work, &mut outcome, cancel).await
    };
    if let Err(e) = result {
        log(&format!("[slipway] {e}"));
        outcome.error = Some(e);
        outcome.status = BuildStatus::Failed;
    }
    if cancel.is_cancelled() {
        outcome.status = BuildStatus::Stopped;
        outcome.error = Some(CANCELLED.to_string());
    }
    if req.keep_work_dir {
        outcome.work_dir = Some(work);
    } else {
        let _ = std::fs::remove_dir_all(&work);
    }
    outcome.duration_ms = started.elapsed().as_millis() as u64;
    tracing::info!(build_id = %outcome.build_id, image = %outcome.image, status = outcome.status.as_str(), duration_ms = outcome.duration_ms, "build finished");
    outcome
}

async fn run_in(
    req: &Prepared<'_>,
    log: &(dyn Fn(&str) + Sync),
    build_id: &str,
    work: &Path,
    outcome: &mut BuildOutcome,
    cancel: &CancellationToken,
) -> Result<(), String> {
    if req.source.starts_with('-') || req.source.is_empty() {
        return Err("the source must be a clone URL or a path".into());
    }
    let src = work.join("src");
    let state = work.join("state");
    create_private_dir(work)?;
    create_private_dir(&state)?;

    // DOWNLOAD_SOURCE: a clean checkout of the planned commit.
    let t = Instant::now();
    let checkout = checkout(req.source, &req.commit, &src).await;
    outcome.phases.push(PhaseOutcome {
        phase: "DOWNLOAD_SOURCE".into(),
        status: if checkout.is_ok() {
            BuildStatus::Succeeded
        } else {
            BuildStatus::Failed
        },
        duration_ms: t.elapsed().as_millis() as u64,
        message: checkout.as_ref().err().cloned(),
    });
    checkout?;

    // The environment: host pass-through < CodeBuild's < buildspec env.variables < overrides.
    let mut env: BTreeMap<String, String> = BTreeMap::new();
    for name in PASSED_THROUGH {
        if let Ok(v) = std::env::var(name) {
            env.insert(name.to_string(), v);
        }
    }
    let docker_config = work.join("docker-config");
    create_private_dir(&docker_config)?;
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
    for BuildVar { name, value, kind } in req.vars.clone() {
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
    // Longest first, so that a secret containing another is masked whole.
    secret_values.sort_by_key(|s| std::cmp::Reverse(s.len()));
    let masker = Masker {
        secrets: secret_values,
    };

    let state_file = state.join("env");
    let cwd_file = state.join("cwd");
    write_private(&state_file, "")?;
    write_private(&cwd_file, &src_dir)?;
    let secret_names = secret_names.join(" ");

    let mut succeeding = true;
    let mut aborted = false;
    for phase in &req.buildspec.phases {
        if aborted {
            break;
        }
        let t = Instant::now();
        log(&format!("[slipway] phase {}", phase.name.to_uppercase()));
        let mut failure: Option<String> = None;
        for (i, cmd) in phase.commands.iter().enumerate() {
            log(&format!(
                "[slipway] running command {} of {}",
                i + 1,
                phase.name
            ));
            let rc = run_command(
                cmd,
                &env,
                &state_file,
                &cwd_file,
                succeeding,
                &secret_names,
                &masker,
                log,
                cancel,
            )
            .await?;
            if rc != 0 {
                failure = Some(format!(
                    "command {} of {} exited with {rc}",
                    i + 1,
                    phase.name
                ));
                break;
            }
        }
        if failure.is_some() {
            succeeding = false;
        }
        for (i, cmd) in phase.finally.iter().enumerate() {
            log(&format!(
                "[slipway] running finally command {} of {}",
                i + 1,
                phase.name
            ));
            let rc = run_command(
                cmd,
                &env,
                &state_file,
                &cwd_file,
                succeeding,
                &secret_names,
                &masker,
                log,
                cancel,
            )
            .await?;
            if rc != 0 {
                failure.get_or_insert(format!(
                    "finally command {} of {} exited with {rc}",
                    i + 1,
                    phase.name
                ));
                succeeding = false;
                break;
            }
        }
        let failed = failure.is_some();
        if let Some(f) = &failure {
            log(&format!("[slipway] phase {} failed: {f}", phase.name));
        }
        outcome.phases.push(PhaseOutcome {
            phase: phase.name.to_uppercase(),
            status: if failed {
                BuildStatus::Failed
            } else {
                BuildStatus::Succeeded
            },
            duration_ms: t.elapsed().as_millis() as u64,
            message: failure,
        });
        if failed {
            // CodeBuild: a failed install or pre_build ends the build; a failed build phase
            // still runs post_build. An explicit ABORT ends it, CONTINUE goes on.
            aborted = match phase.on_failure {
                Some(OnFailure::Abort) => true,
                Some(OnFailure::Continue) => false,
                None => phase.name != "build",
            };
        }
    }
    outcome.exported = read_exported(&state_file, &req.buildspec.exported_variables).await?;
    if succeeding {
        outcome.status = BuildStatus::Succeeded;
    } else {
        outcome.error = outcome
            .phases
            .iter()
            .find_map(|p| p.message.as_ref().map(|m| format!("{}: {m}", p.phase)));
    }
    Ok(())
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

fn create_private_dir(p: &Path) -> Result<(), String> {
    std::fs::create_dir_all(p).map_err(|e| format!("cannot create {}: {e}", p.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| format!("cannot protect {}: {e}", p.display()))?;
    }
    Ok(())
}

fn write_private(p: &Path, text: &str) -> Result<(), String> {
    std::fs::write(p, text).map_err(|e| format!("cannot write {}: {e}", p.display()))
}

/// Clones `source` and checks out `commit` (validated hex) into `dir`, all as argv.
async fn checkout(source: &str, commit: &str, dir: &Path) -> Result<(), String> {
    slipway_core::names::check_sha(commit).map_err(|e| format!("the commit {e}"))?;
    // `ext::` and other transports that run commands are refused: in `slipway serve` the
    // source is the job's clone URL.
    let status = Command::new("git")
        .args(["clone", "--quiet", "--no-checkout", "--"])
        .arg(source)
        .arg(dir)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_ALLOW_PROTOCOL", "file:https:http:ssh:git")
        .stdin(Stdio::null())
        .status()
        .await
        .map_err(|e| format!("cannot run git: {e}"))?;
    if !status.success() {
        return Err("git clone of the source failed".into());
    }
    let status = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "-c",
            "advice.detachedHead=false",
            "checkout",
            "--quiet",
            "--detach",
        ])
        .arg(commit)
        .arg("--")
        .stdin(Stdio::null())
        .status()
        .await
        .map_err(|e| format!("cannot run git: {e}"))?;
    if !status.success() {
        return Err(format!("the commit {commit} is not in the source"));
    }
    Ok(())
}

struct Masker {
    secrets: Vec<String>,
}

impl Masker {
    fn mask(&self, line: &str) -> String {
        let mut s = line.to_string();
        for secret in &self.secrets {
            if s.contains(secret.as_str()) {
                s = s.replace(secret.as_str(), "***");
            }
        }
        s
    }
}

#[allow(clippy::too_many_arguments)]
async fn run_command(
    cmd: &str,
    env: &BTreeMap<String, String>,
    state_file: &Path,
    cwd_file: &Path,
    succeeding: bool,
    secret_names: &str,
    masker: &Masker,
    log: &(dyn Fn(&str) + Sync),
    cancel: &CancellationToken,
) -> Result<i32, String> {
    if cancel.is_cancelled() {
        return Err(CANCELLED.into());
    }
    let mut child = Command::new("bash")
        .arg("-c")
        .arg(WRAPPER)
        .arg("slipway-command")
        .arg(state_file)
        .arg(cwd_file)
        .arg(if succeeding { "1" } else { "0" })
        .arg(cmd)
        .arg(secret_names)
        .env_clear()
        .envs(env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        // Its own process group: a cancel stops bash and everything it started (docker buildx,
        // docker compose, the test's processes) at once.
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot run bash: {e}"))?;
    let out = child.stdout.take();
    let run = async {
        if let Some(out) = out {
            let mut lines = BufReader::new(out).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                log(&masker.mask(&line));
            }
        }
        child.wait().await
    };
    let ended = tokio::select! {
        status = run => Some(status),
        () = cancel.cancelled() => None,
    };
    match ended {
        Some(status) => {
            let status = status.map_err(|e| format!("cannot wait for bash: {e}"))?;
            Ok(status.code().unwrap_or(128))
        }
        None => {
            stop_group(&mut child).await;
            Err(CANCELLED.into())
        }
    }
}

/// SIGTERM to the command's process group, SIGKILL to what is left after [`CANCEL_GRACE`].
async fn stop_group(child: &mut tokio::process::Child) {
    let Some(pid) = child.id() else {
        return;
    };
    // `kill` as argv (no shell, no unsafe): a negative pid names the process group.
    let group = format!("-{pid}");
    let signal = |sig: &'static str| {
        let group = group.clone();
        async move {
            let _ = Command::new("kill")
                .args(["-s", sig, "--", &group])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .await;
        }
    };
    signal("TERM").await;
    if tokio::time::timeout(CANCEL_GRACE, child.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            pid,
            "a cancelled build command outlived its grace period; killed"
        );
    }
    // Whatever bash left behind in its group (a compose `down` still running) goes too.
    signal("KILL").await;
    let _ = child.wait().await;
}

/// The exported variables' values at the end of the build, read from the saved state.
async fn read_exported(
    state_file: &Path,
    names: &[String],
) -> Result<BTreeMap<String, String>, String> {
    let mut map = BTreeMap::new();
    if names.is_empty() {
        return Ok(map);
    }
    let out = Command::new("bash")
        .arg("-c")
        .arg(r#". "$1" 2>/dev/null; shift; for n in "$@"; do if [ -n "${!n+x}" ]; then printf '%s\0%s\0' "$n" "${!n}"; fi; done"#)
        .arg("slipway-exported")
        .arg(state_file)
        .args(names)
        .env_clear()
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| format!("cannot read the exported variables: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut parts = text.split('\0');
    while let (Some(k), Some(v)) = (parts.next(), parts.next()) {
        if !k.is_empty() {
            map.insert(k.to_string(), v.to_string());
        }
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_buildspec_parses() {
        let b = Buildspec::parse(SHIPPED_BUILDSPEC).unwrap();
        assert_eq!(b.exported_variables, vec!["SLIPWAY_DIGEST"]);
        let names: Vec<&str> = b.phases.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, PHASES);
        assert!(!b.phases[3].finally.is_empty());
    }

    #[test]
    fn unsupported_buildspecs_are_refused() {
        assert!(Buildspec::parse("version: 0.1\nphases: {}\n").is_err());
        assert!(Buildspec::parse("version: 0.2\nphases:\n  deploy:\n    commands: [x]\n").is_err());
        assert!(
            Buildspec::parse(
                "version: 0.2\nphases:\n  build:\n    on-failure: RETRY\n    commands: [x]\n"
            )
            .is_err()
        );
        assert!(Buildspec::parse("version: 0.2\nenv:\n  variables:\n    'A B': x\n").is_err());
    }

    #[test]
    fn secret_env_names() {
        assert_eq!(
            SecretSource::env_name("/slipway/registry/127.0.0.1_5056/t/password"),
            "SLIPWAY_SECRET_SLIPWAY_REGISTRY_127_0_0_1_5056_T_PASSWORD"
        );
    }
}
