//! `slipway build`: runs `buildspec.yml` for the planned images on the local Docker engine, as
//! CodeBuild would, through `slipway_runner`. This module reads the files the flags name and
//! builds the plan's images in order; a child of a failed image is skipped.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use slipway_core::Job;
use slipway_core::build_env::RegistrySettings;
use slipway_core::plan::Plan;
use slipway_git::{CloneRules, Source};
use slipway_runner::{
    BuildOutcome, BuildRequest, BuildStatus, Buildspec, SHIPPED_BUILDSPEC, SecretSource, run_build,
};

use crate::CliError;

#[derive(clap::Args)]
pub struct Args {
    /// The plan to build (JSON from `slipway plan`; `-` reads standard input).
    #[arg(long)]
    pub plan: PathBuf,
    /// Build only these images of the plan (default: every image, in plan order).
    #[arg(long = "image")]
    pub images: Vec<String>,
    /// The repository to check out: a clone URL or a local path.
    #[arg(long)]
    pub source: String,
    /// The job the plan was made for (JSON); without it, a local job is made up from the plan.
    #[arg(long)]
    pub job: Option<PathBuf>,
    /// A buildspec other than the one slipway ships.
    #[arg(long)]
    pub buildspec: Option<PathBuf>,
    /// Where builds check out and keep their state (default: the system's temporary directory).
    #[arg(long, env = "SLIPWAY_WORK_DIR")]
    pub work_dir: Option<PathBuf>,
    /// Keep each build's work directory (checkout and state) after the build.
    #[arg(long)]
    pub keep_work_dir: bool,
    /// Secrets for `PARAMETER_STORE` variables: lines `parameter-name=value`. Parameters not in
    /// the file are read from `SLIPWAY_SECRET_<NAME>` (the name upper-cased, other characters `_`).
    #[arg(long, env = "SLIPWAY_SECRETS_FILE")]
    pub secrets_file: Option<PathBuf>,
    /// Prefix of the registry credential parameters.
    #[arg(long, env = "SLIPWAY_PARAMETER_PREFIX", default_value = "/slipway")]
    pub parameter_prefix: String,
    /// Write the results (status, phases, exported variables) as JSON to this file.
    #[arg(long)]
    pub result: Option<PathBuf>,
    /// The network of the build's `RUN` steps: empty for the engine's default (a bridge),
    /// `host` for an engine without a bridge, `none`.
    #[arg(long, env = slipway_core::build_env::SLIPWAY_BUILD_NETWORK, default_value = "")]
    pub build_network: String,
}

pub async fn run(args: Args) -> Result<ExitCode, CliError> {
    let plan_text = if args.plan == Path::new("-") {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)?;
        s
    } else {
        std::fs::read_to_string(&args.plan)
            .map_err(|e| format!("cannot read the plan {}: {e}", args.plan.display()))?
    };
    let plan: Plan =
        serde_json::from_str(&plan_text).map_err(|e| format!("the plan is not valid: {e}"))?;
    let job: Job = match &args.job {
        Some(p) => serde_json::from_str(
            &std::fs::read_to_string(p)
                .map_err(|e| format!("cannot read the job {}: {e}", p.display()))?,
        )
        .map_err(|e| format!("the job is not valid: {e}"))?,
        None => local_job(&plan, &args.source)?,
    };
    let buildspec_text = match &args.buildspec {
        Some(p) => std::fs::read_to_string(p)
            .map_err(|e| format!("cannot read the buildspec {}: {e}", p.display()))?,
        None => SHIPPED_BUILDSPEC.to_string(),
    };
    let buildspec = Buildspec::parse(&buildspec_text)?;
    let secrets = SecretSource::load(args.secrets_file.as_deref())?;
    for name in &args.images {
        if !plan.images.iter().any(|i| &i.name == name) {
            return Err(format!("the plan has no image {name}").into());
        }
    }
    slipway_runner::check_build_network(&args.build_network)?;
    let work_root = args.work_dir.clone().unwrap_or_else(std::env::temp_dir);
    // The user's own command: a repository on this machine is as good as a clone URL.
    let source = Source::parse(&args.source, CloneRules { allow_local: true })
        .map_err(|e| format!("--source: {e}"))?;

    let mut outcomes: Vec<BuildOutcome> = Vec::new();
    let mut failed_images: Vec<String> = Vec::new();
    for (n, image) in plan.images.iter().enumerate() {
        if !args.images.is_empty() && !args.images.contains(&image.name) {
            continue;
        }
        if let Some(p) = image.parents.iter().find(|p| failed_images.contains(p)) {
            eprintln!(
                "slipway build: {} skipped: its parent {p} failed",
                image.name
            );
            failed_images.push(image.name.clone());
            continue;
        }
        let req = BuildRequest {
            job: job.clone(),
            image: image.clone(),
            source: source.clone(),
            buildspec: buildspec.clone(),
            registry: RegistrySettings {
                parameter_prefix: args.parameter_prefix.clone(),
            },
            secrets: secrets.clone(),
            work_root: work_root.clone(),
            keep_work_dir: args.keep_work_dir,
            build_number: n as u64 + 1,
            build_network: args.build_network.clone(),
        };
        let outcome = run_build(&req, &|line| println!("{line}")).await;
        if outcome.status != BuildStatus::Succeeded {
            failed_images.push(image.name.clone());
        }
        eprintln!(
            "slipway build: {} {} in {} ms{}",
            outcome.image,
            outcome.status.as_str(),
            outcome.duration_ms,
            outcome
                .error
                .as_deref()
                .map(|e| format!(": {e}"))
                .unwrap_or_default()
        );
        outcomes.push(outcome);
    }
    let report = serde_json::json!({ "builds": outcomes });
    if let Some(path) = &args.result {
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)
            .map_err(|e| format!("cannot write the result {}: {e}", path.display()))?;
    }
    Ok(if failed_images.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// A job for a plan built by hand: the plan's repository, ref and commit.
fn local_job(plan: &Plan, source: &str) -> Result<Job, CliError> {
    let id = uuid::Uuid::new_v4().to_string();
    let job = serde_json::json!({
        "id": format!("local-{id}"),
        "trigger": {"kind": "push"},
        "delivery_id": id,
        "repository": plan.repository,
        "clone_url": source,
        "private": false,
        "default_branch": "main",
        "ref": plan.git_ref,
        "before": "0".repeat(plan.commit.len().max(40)),
        "after": plan.commit,
        "commit": plan.commit,
    });
    Ok(serde_json::from_value(job)?)
}
