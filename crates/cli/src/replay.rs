//! `slipway replay`: sends a GitHub-style signed push webhook — a saved payload, or one built from
//! a local repository's commits — and prints the answer. For trying a deployment and for tests.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde_json::{Value, json};
use slipway_core::names::{check_ref, check_repository, check_sha, is_zero_sha};

use crate::CliError;
use slipway_git::GitRepo;

#[derive(clap::Args)]
pub struct Args {
    /// Where to send it, e.g. http://127.0.0.1:8080/hooks/github.
    #[arg(long)]
    url: String,
    /// The environment variable holding the webhook secret (never pass a secret in argv).
    #[arg(long, default_value = "SLIPWAY_WEBHOOK_SECRET")]
    secret_env: String,
    /// A saved payload (JSON) to send as is.
    #[arg(required_unless_present = "repo", conflicts_with = "repo")]
    payload: Option<PathBuf>,
    /// Build a push payload from this local repository's commits instead.
    #[arg(long, requires = "git_ref")]
    repo: Option<PathBuf>,
    /// The ref's previous commit (a sha or a rev; all zeros or omitted for a new ref).
    #[arg(long)]
    before: Option<String>,
    /// What the ref points to now (a sha or a rev; default HEAD).
    #[arg(long)]
    after: Option<String>,
    /// The pushed ref, in full: refs/heads/<branch> or refs/tags/<tag>.
    #[arg(long = "ref")]
    git_ref: Option<String>,
    /// `owner/name` in the payload. Default: `local/<directory name>`.
    #[arg(long)]
    repository: Option<String>,
    /// The repository's default branch. Default: the branch of --ref when it is a branch.
    #[arg(long)]
    default_branch: Option<String>,
    /// The X-GitHub-Event header.
    #[arg(long, default_value = "push")]
    event: String,
    /// The X-GitHub-Delivery header. Default: a new UUID.
    #[arg(long)]
    delivery: Option<String>,
}

pub async fn run(args: Args) -> Result<ExitCode, CliError> {
    let secret = std::env::var(&args.secret_env).map_err(|_| {
        format!(
            "the environment variable {} (--secret-env) is not set; export the webhook secret in it",
            args.secret_env
        )
    })?;
    let secret = secret
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .ok_or_else(|| format!("the environment variable {} is empty", args.secret_env))?;
    let body: Vec<u8> = match (&args.payload, &args.repo) {
        (Some(p), _) => {
            std::fs::read(p).map_err(|e| format!("cannot read the payload {}: {e}", p.display()))?
        }
        (None, Some(repo)) => serde_json::to_vec(&payload_from_repo(&args, repo).await?)?,
        (None, None) => return Err("give a payload file or --repo".into()),
    };
    let delivery = args
        .delivery
        .clone()
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let signature = slipway_core::webhook::sign(secret.as_bytes(), &body);
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .build()?;
    let resp = client
        .post(&args.url)
        .header("content-type", "application/json")
        .header("x-github-event", &args.event)
        .header("x-github-delivery", &delivery)
        .header("x-hub-signature-256", signature)
        .header("user-agent", "GitHub-Hookshot/slipway-replay")
        .body(body)
        .send()
        .await
        .map_err(|e| format!("cannot send to {}: {e}", args.url))?;
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    eprintln!(
        "slipway replay: delivery {delivery}: HTTP {}",
        status.as_u16()
    );
    match serde_json::from_str::<Value>(&text) {
        Ok(v) => println!("{}", serde_json::to_string_pretty(&v)?),
        Err(_) => println!("{text}"),
    }
    Ok(if status.is_success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The commit `rev` names: a sha, a full ref, or anything git reads (`HEAD~1`, a branch name).
async fn rev(repo: &GitRepo, flag: &str, rev: &str) -> Result<String, CliError> {
    let not_found = || -> CliError {
        format!(
            "{flag} `{rev}` is not a commit of the repository at {}",
            repo.path().display()
        )
        .into()
    };
    if rev.is_empty() || rev.starts_with('-') {
        return Err(not_found());
    }
    let spec = format!("{rev}^{{commit}}");
    let out = repo
        .git(&[
            "rev-parse",
            "--verify",
            "--quiet",
            "--end-of-options",
            &spec,
        ])
        .await
        .map_err(|_| not_found())?;
    let sha = String::from_utf8_lossy(&out).trim().to_string();
    check_sha(&sha).map_err(|_| not_found())?;
    Ok(sha)
}

/// A push payload as GitHub writes it, with the fields slipway reads: one entry per commit
/// between `before` and `after`, each with its added, modified and removed paths.
async fn payload_from_repo(args: &Args, path: &Path) -> Result<Value, CliError> {
    let repo = GitRepo::open(path).await?;
    let git_ref = args.git_ref.clone().unwrap_or_default();
    check_ref(&git_ref)
        .map_err(|e| format!("--ref `{git_ref}` {e}; write it in full, e.g. refs/heads/main"))?;
    let after = rev(&repo, "--after", args.after.as_deref().unwrap_or("HEAD")).await?;
    let before = match args.before.as_deref() {
        None => "0".repeat(40),
        Some(b) if is_zero_sha(b) => "0".repeat(40),
        Some(b) => rev(&repo, "--before", b).await?,
    };
    let created = is_zero_sha(&before);
    let range = if created {
        after.clone()
    } else {
        format!("{before}..{after}")
    };
    // Oldest first, as GitHub lists them; a new ref lists its head commit only.
    let list = repo
        .git(&[
            "rev-list",
            "--reverse",
            "--max-count=2048",
            "--end-of-options",
            &range,
        ])
        .await?;
    let mut shas: Vec<String> = String::from_utf8_lossy(&list)
        .lines()
        .map(str::to_string)
        .collect();
    if created {
        shas = vec![after.clone()];
    }
    let forced = !created
        && repo
            .git(&["merge-base", "--is-ancestor", &before, &after])
            .await
            .is_err();
    let mut commits = Vec::new();
    for sha in &shas {
        check_sha(sha).map_err(|e| format!("git returned `{sha}`: {e}"))?;
        let out = repo
            .git(&[
                "diff-tree",
                "--no-commit-id",
                "--name-status",
                "-r",
                "-z",
                "--root",
                "--no-renames",
                sha,
            ])
            .await?;
        let fields: Vec<String> = out
            .split(|&b| b == 0)
            .filter(|s| !s.is_empty())
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect();
        let (mut added, mut removed, mut modified) = (vec![], vec![], vec![]);
        for pair in fields.chunks(2) {
            if let [status, path] = pair {
                match status.chars().next() {
                    Some('A') => added.push(path.clone()),
                    Some('D') => removed.push(path.clone()),
                    _ => modified.push(path.clone()),
                }
            }
        }
        let message = repo.git(&["log", "-1", "--format=%s", sha]).await?;
        commits.push(json!({
            "id": sha,
            "message": String::from_utf8_lossy(&message).trim(),
            "added": added,
            "removed": removed,
            "modified": modified,
        }));
    }
    let dir = std::fs::canonicalize(repo.path())?;
    let repository = match &args.repository {
        Some(r) => {
            check_repository(r).map_err(|e| format!("--repository `{r}` {e}"))?;
            r.clone()
        }
        None => {
            let name = dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let full = format!("local/{name}");
            if check_repository(&full).is_ok() {
                full
            } else {
                "local/repository".into()
            }
        }
    };
    let default_branch = match &args.default_branch {
        Some(b) => b.clone(),
        None => match git_ref.strip_prefix("refs/heads/") {
            Some(b) => b.to_string(),
            None => repo
                .default_branch()
                .await?
                .unwrap_or_else(|| "main".into()),
        },
    };
    let head = commits.last().cloned().unwrap_or(json!({ "id": after }));
    Ok(json!({
        "ref": git_ref,
        "before": before,
        "after": after,
        "created": created,
        "deleted": false,
        "forced": forced,
        "commits": commits,
        "head_commit": head,
        "repository": {
            "full_name": repository,
            "clone_url": format!("file://{}", dir.display()),
            "private": false,
            "default_branch": default_branch,
        },
        "pusher": { "name": "slipway-replay" },
    }))
}
