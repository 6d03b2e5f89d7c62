//! `slipway init [PATH]`: reads a repository (the committed tree at HEAD, through the planner's
//! own discovery) and writes a commented `slipway.toml` that plans the same images, with the
//! Docker Hub hooks and autotests it found and the Docker Hub settings it could not see.

use std::path::PathBuf;
use std::process::ExitCode;

use slipway_core::plan::init::{Autotest, InitInput, autotest_path, images_from_specs, render};
use slipway_core::plan::planner::discover;
use slipway_core::plan::{CONFIG_PATH, Config, RepoSource};
use slipway_git::GitRepo;

use crate::CliError;
use crate::plan::{default_namespace, repository_name};

#[derive(clap::Args)]
pub struct Args {
    /// The repository's work tree (or a directory inside it).
    #[arg(default_value = ".")]
    path: PathBuf,
    /// Overwrite an existing slipway.toml.
    #[arg(long)]
    force: bool,
    /// Where images go: `acme`, `ghcr.io/acme` (for the names in the comments). Default: the
    /// repository's owner.
    #[arg(long, env = "SLIPWAY_IMAGE_NAMESPACE")]
    namespace: Option<String>,
}

pub async fn run(args: Args) -> Result<ExitCode, CliError> {
    let repo = GitRepo::open(&args.path).await?;
    let top = repo
        .git(&["rev-parse", "--show-toplevel"])
        .await
        .map_err(|_| {
            format!(
                "{} has no work tree to write {CONFIG_PATH} into (a bare repository?): run slipway init in a clone",
                args.path.display()
            )
        })?;
    let root = PathBuf::from(String::from_utf8_lossy(&top).trim());
    let target = root.join(CONFIG_PATH);
    if target.exists() && !args.force {
        return Err(format!(
            "{} already exists: pass --force to overwrite it",
            target.display()
        )
        .into());
    }
    let repo = GitRepo::open(&root).await?;
    // HEAD (a name `rev_parse` refuses, as payload refs never name it) is what is checked out.
    let commit = repo
        .git(&["rev-parse", "--verify", "--quiet", "HEAD^{commit}"])
        .await
        .map(|out| String::from_utf8_lossy(&out).trim().to_string())
        .map_err(|_| {
            "the repository has no commit yet: slipway init reads the committed files at HEAD; commit your Dockerfiles first"
        })?;
    let files = repo
        .tree(&commit)
        .await
        .map_err(|e| format!("cannot list the files at HEAD: {e}"))?;
    let repository = repository_name(&repo).await;
    let namespace = match &args.namespace {
        Some(ns) => ns.clone(),
        None => default_namespace(&repository),
    };
    let default_branch = repo
        .default_branch()
        .await?
        .unwrap_or_else(|| "main".to_string());
    let zero = Config::zero();
    let specs = discover(&zero, &files, &namespace, &repository);
    if specs.is_empty() {
        return Err(format!(
            "no Dockerfile at HEAD ({}) in {}: slipway builds the directories that hold a file named Dockerfile; commit one first",
            &commit[..7],
            root.display()
        )
        .into());
    }
    // The compose files decide autotest; read before rendering (rendering is pure).
    let mut autotests = std::collections::BTreeMap::new();
    for s in &specs {
        let path = autotest_path(&s.context);
        let text = repo
            .read_file(&commit, &path)
            .await
            .map_err(|e| format!("cannot read {path}: {e}"))?;
        autotests.insert(s.context.clone(), autotest_of(text.as_deref()));
    }
    let images = images_from_specs(&specs, &files, |c| {
        autotests.get(c).copied().unwrap_or(Autotest::None)
    });
    let text = render(&InitInput {
        repository: &repository,
        default_branch: &default_branch,
        commit: &commit,
        images: &images,
    });
    // What is written must be what the planner reads: never write a file that would not parse.
    Config::parse(&text).map_err(|e| format!("slipway init made an invalid file (a bug): {e}"))?;
    std::fs::write(&target, &text)
        .map_err(|e| format!("cannot write {}: {e}", target.display()))?;
    println!(
        "slipway init: wrote {} with {} image(s); review it, then commit it",
        target.display(),
        images.len()
    );
    for im in &images {
        let name = im.name.as_deref().unwrap_or("(no valid name)");
        let mut notes = Vec::new();
        if !im.hooks.is_empty() {
            notes.push(format!("hooks: {}", im.hooks.join(", ")));
        }
        if im.autotest == Autotest::Sut {
            notes.push("autotest".to_string());
        }
        println!(
            "  {name} ({}){}",
            im.dockerfile,
            if notes.is_empty() {
                String::new()
            } else {
                format!(": {}", notes.join("; "))
            }
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Docker Hub's autotest: a compose file with a `sut` service.
fn autotest_of(text: Option<&str>) -> Autotest {
    let Some(text) = text else {
        return Autotest::None;
    };
    let doc: serde_norway::Value = match serde_norway::from_str(text) {
        Ok(v) => v,
        Err(_) => return Autotest::NoSut,
    };
    // Compose's `services:`, or the old version 1 format with services at the top.
    if doc.get("services").and_then(|s| s.get("sut")).is_some() || doc.get("sut").is_some() {
        Autotest::Sut
    } else {
        Autotest::NoSut
    }
}
