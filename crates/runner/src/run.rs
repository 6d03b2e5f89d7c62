//! One image's build: a clean checkout of the planned commit (`DOWNLOAD_SOURCE`), then the
//! buildspec's phases in order with CodeBuild's rules for `on-failure` and `finally`, and the
//! outcome (status, phases, exported variables) that `slipway build` prints and serve stores.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;
use slipway_core::Job;
use slipway_core::build_env::{self, BuildVar, RegistrySettings, VarKind};
use slipway_core::plan::PlannedImage;
use slipway_git::{GitRepo, Source};
use tokio_util::sync::CancellationToken;

use crate::buildspec::{Buildspec, OnFailure, Phase};
use crate::env::environment;
use crate::secrets::SecretSource;
use crate::shell::{CANCELLED, Shell};

/// One image to build.
#[derive(Debug, Clone)]
pub struct BuildRequest {
    pub job: Job,
    pub image: PlannedImage,
    /// The repository, accepted by the clone rules of the caller.
    pub source: Source,
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

/// One build given by its variables, as a CodeBuild `StartBuild` request carries them (the
/// environment overrides `build_env` made, the source and its version), rather than by a job and
/// a planned image. The AWS bench's CodeBuild endpoint runs StartBuild requests through this, so
/// the buildspec runs the same way under `slipway build`, `slipway serve` and the bench.
#[derive(Debug, Clone)]
pub struct VarsBuild {
    /// Where the source is cloned from, accepted by the caller's clone rules.
    pub source: Source,
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
pub(crate) struct Prepared<'a> {
    pub source: &'a Source,
    pub commit: String,
    pub image: String,
    pub source_url: String,
    /// `(ref, before)` of the push, for CodeBuild's webhook variables (`slipway build`).
    pub webhook: Option<(String, String)>,
    pub vars: Vec<BuildVar>,
    pub buildspec: &'a Buildspec,
    pub secrets: &'a SecretSource,
    pub work_root: &'a Path,
    pub keep_work_dir: bool,
    pub build_number: u64,
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

/// A build's and a phase's status, in CodeBuild's words: the one `BuildStatus` of slipway
/// (`Stopped`: cancelled while it ran; a local build never reports `InProgress`).
pub use slipway_core::notify::BuildStatus;

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

/// Runs the buildspec for one image. Never panics on a build problem: the outcome says what
/// failed. `log` receives every output line, with secret values masked.
pub async fn run_build(req: &BuildRequest, log: &(dyn Fn(&str) + Sync)) -> BuildOutcome {
    run_build_until(req, log, &CancellationToken::new()).await
}

/// [`run_build`] that stops when `cancel` fires: the running command's whole process group gets
/// SIGTERM (then SIGKILL after a grace period), no later command or phase runs (so nothing is
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

/// The part shared by both kinds of request; `invalid` fails the build before anything runs.
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
    let src = work.join("src");
    let state = work.join("state");
    create_private_dir(work)?;
    create_private_dir(&state)?;

    // DOWNLOAD_SOURCE: a clean checkout of the planned commit.
    let t = Instant::now();
    let checkout = GitRepo::checkout_at(req.source, &req.commit, &src)
        .await
        .map(drop)
        .map_err(|e| e.to_string());
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
    let docker_config = work.join("docker-config");
    create_private_dir(&docker_config)?;
    let env = environment(req, build_id, &src, &docker_config)?;
    let shell = Shell {
        env: env.vars,
        state_file: state.join("env"),
        cwd_file: state.join("cwd"),
        secret_names: env.secret_names.join(" "),
        masker: env.masker,
    };
    write_private(&shell.state_file, "")?;
    write_private(&shell.cwd_file, &src.to_string_lossy())?;

    let mut succeeding = true;
    for phase in &req.buildspec.phases {
        let done = run_phase(phase, &shell, &mut succeeding, log, cancel).await?;
        let failed = done.status == BuildStatus::Failed;
        outcome.phases.push(done);
        if failed && ends_the_build(phase) {
            break;
        }
    }
    outcome.exported = shell.exported(&req.buildspec.exported_variables).await?;
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

/// Runs one phase: its commands until one fails, then its `finally` commands.
/// `succeeding` is `CODEBUILD_BUILD_SUCCEEDING`, cleared by the first failure of the build.
async fn run_phase(
    phase: &Phase,
    shell: &Shell,
    succeeding: &mut bool,
    log: &(dyn Fn(&str) + Sync),
    cancel: &CancellationToken,
) -> Result<PhaseOutcome, String> {
    let t = Instant::now();
    log(&format!("[slipway] phase {}", phase.name.to_uppercase()));
    let mut failure: Option<String> = None;
    for (i, cmd) in phase.commands.iter().enumerate() {
        log(&format!(
            "[slipway] running command {} of {}",
            i + 1,
            phase.name
        ));
        let rc = shell.run(cmd, *succeeding, log, cancel).await?;
        if rc != 0 {
            failure = Some(format!(
                "command {} of {} exited with {rc}",
                i + 1,
                phase.name
            ));
            *succeeding = false;
            break;
        }
    }
    for (i, cmd) in phase.finally.iter().enumerate() {
        log(&format!(
            "[slipway] running finally command {} of {}",
            i + 1,
            phase.name
        ));
        let rc = shell.run(cmd, *succeeding, log, cancel).await?;
        if rc != 0 {
            failure.get_or_insert(format!(
                "finally command {} of {} exited with {rc}",
                i + 1,
                phase.name
            ));
            *succeeding = false;
            break;
        }
    }
    if let Some(f) = &failure {
        log(&format!("[slipway] phase {} failed: {f}", phase.name));
    }
    Ok(PhaseOutcome {
        phase: phase.name.to_uppercase(),
        status: if failure.is_some() {
            BuildStatus::Failed
        } else {
            BuildStatus::Succeeded
        },
        duration_ms: t.elapsed().as_millis() as u64,
        message: failure,
    })
}

/// Whether a failed phase ends the build. CodeBuild: a failed install or pre_build does; a
/// failed build phase still runs post_build. An explicit ABORT ends it, CONTINUE goes on.
fn ends_the_build(phase: &Phase) -> bool {
    match phase.on_failure {
        Some(OnFailure::Abort) => true,
        Some(OnFailure::Continue) => false,
        None => phase.name != "build",
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
