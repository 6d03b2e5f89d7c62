//! `slipway plan`: what a push would build, as JSON — the planner the spawner runs, on a local
//! git repository.

use std::path::PathBuf;
use std::process::ExitCode;

use slipway_core::names::{check_ref, check_repository, check_sha, is_zero_sha};
use slipway_core::plan::{PlanSettings, plan_job};
use slipway_core::{Job, Trigger};

use crate::CliError;
use slipway_git::GitRepo;

#[derive(clap::Args)]
pub struct Args {
    /// The git repository (a work tree or a bare clone).
    #[arg(long, default_value = ".")]
    repo: PathBuf,
    /// The ref's previous commit (40 hex digits; all zeros for a new branch or tag).
    #[arg(long, required_unless_present = "job")]
    before: Option<String>,
    /// What the ref points to now: a commit or an annotated tag's object (a sha or a full ref).
    #[arg(long, required_unless_present = "job")]
    after: Option<String>,
    /// The pushed ref, fully qualified: refs/heads/<branch> or refs/tags/<tag>.
    #[arg(long = "ref", required_unless_present = "job")]
    git_ref: Option<String>,
    /// Where images go: `acme`, `ghcr.io/acme`. Default: the repository's owner.
    #[arg(long, env = "SLIPWAY_IMAGE_NAMESPACE")]
    namespace: Option<String>,
    /// The default branch. Default: origin/HEAD, else `main` or `master`.
    #[arg(long)]
    default_branch: Option<String>,
    /// `owner/name`. Default: from the origin remote's URL, else `local/<directory>`.
    #[arg(long)]
    repository: Option<String>,
    /// Plan exactly these images (as a scheduled rebuild or a parent's children would).
    #[arg(long = "image")]
    images: Vec<String>,
    /// Plan a queued job (JSON, as the listener writes it) instead of --before/--after/--ref.
    #[arg(long, conflicts_with_all = ["before", "after", "git_ref"])]
    job: Option<PathBuf>,
}

pub async fn run(args: Args) -> Result<ExitCode, CliError> {
    let repo = GitRepo::open(&args.repo).await?;
    let mut job = match &args.job {
        Some(path) => {
            let text = std::fs::read(path)
                .map_err(|e| format!("cannot read the job file {}: {e}", path.display()))?;
            serde_json::from_slice::<Job>(&text)
                .map_err(|e| format!("the job file {} is not a job: {e}", path.display()))?
        }
        None => job_from_args(&args, &repo).await?,
    };
    if !args.images.is_empty() {
        job.images = args.images.clone();
    }
    let namespace = match &args.namespace {
        Some(ns) => ns.clone(),
        None => default_namespace(&job.repository),
    };
    let plan = plan_job(&repo, &job, &PlanSettings::new(namespace))
        .await
        .map_err(|e| format!("{e} [{}]", e.code()))?;
    println!("{}", serde_json::to_string_pretty(&plan)?);
    if plan.errors.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        for p in &plan.errors {
            eprintln!(
                "slipway plan: `{}` is not built: {} [{}]",
                p.context, p.message, p.code
            );
        }
        Ok(ExitCode::from(2))
    }
}

async fn job_from_args(args: &Args, repo: &GitRepo) -> Result<Job, CliError> {
    let git_ref = args.git_ref.clone().unwrap_or_default();
    check_ref(&git_ref).map_err(|e| {
        format!("--ref `{git_ref}` {e}; write it in full, e.g. refs/heads/main or refs/tags/v1.2.0")
    })?;
    let before = args.before.clone().unwrap_or_default();
    let before = if is_zero_sha(&before) {
        before
    } else {
        to_sha(repo, "--before", &before).await?
    };
    let after = args.after.clone().unwrap_or_default();
    // `after` may be an annotated tag object: keep it, and build the commit it points to.
    let after_obj = if check_sha(&after).is_ok() {
        after.clone()
    } else {
        to_sha(repo, "--after", &after).await?
    };
    let commit = to_sha(repo, "--after", &after).await?;
    let default_branch = match &args.default_branch {
        Some(b) => b.clone(),
        None => repo.default_branch().await?.ok_or(
            "cannot tell the default branch: the repository has no origin/HEAD and no main or master branch; pass --default-branch",
        )?,
    };
    let repository = match &args.repository {
        Some(r) => {
            check_repository(r).map_err(|e| format!("--repository `{r}` {e}"))?;
            r.clone()
        }
        None => repository_name(repo).await,
    };
    let created = is_zero_sha(&before);
    // A push is forced when the old head is not an ancestor of the new one.
    let forced = !created
        && repo
            .git(&["merge-base", "--is-ancestor", &before, &commit])
            .await
            .is_err();
    Ok(Job {
        id: "plan-local".into(),
        trigger: Trigger::Push,
        delivery_id: "local".into(),
        repository,
        clone_url: format!("file://{}", repo.path().display()),
        private: false,
        default_branch,
        git_ref,
        before,
        after: after_obj,
        commit,
        created,
        forced,
        changed_paths: Vec::new(),
        // The local repository is the only source: there is no payload to trust.
        changes_incomplete: Some(slipway_core::push::Incomplete::NoCommits),
        images: Vec::new(),
    })
}

async fn to_sha(repo: &GitRepo, flag: &str, rev: &str) -> Result<String, CliError> {
    if check_sha(rev).is_err() && check_ref(rev).is_err() {
        return Err(format!(
            "{flag} `{rev}` is neither a full commit sha (40 lowercase hex digits) nor a full ref (refs/...)"
        )
        .into());
    }
    repo.rev_parse(rev).await?.ok_or_else(|| {
        format!(
            "{flag} `{rev}` is not a commit of the repository at {}",
            repo.path().display()
        )
        .into()
    })
}

/// `owner/name` from the origin URL (`https://github.com/o/n.git`, `git@github.com:o/n.git`),
/// else `local/<directory name>`.
pub(crate) async fn repository_name(repo: &GitRepo) -> String {
    if let Ok(Some(url)) = repo.origin_url().await {
        let trimmed = url.trim_end_matches('/').trim_end_matches(".git");
        let parts: Vec<&str> = trimmed.rsplit(['/', ':']).take(2).collect();
        if let [name, owner] = parts.as_slice() {
            let full = format!("{owner}/{name}");
            if check_repository(&full).is_ok() {
                return full;
            }
        }
    }
    let dir = std::fs::canonicalize(repo.path())
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_default();
    let full = format!("local/{dir}");
    if check_repository(&full).is_ok() {
        full
    } else {
        "local/repository".into()
    }
}

/// The repository's owner, lowercased, as Docker Hub namespaces are.
pub(crate) fn default_namespace(repository: &str) -> String {
    let owner = repository
        .split('/')
        .next()
        .unwrap_or_default()
        .to_lowercase();
    if slipway_core::names::check_namespace(&owner).is_ok() {
        owner
    } else {
        "local".into()
    }
}
