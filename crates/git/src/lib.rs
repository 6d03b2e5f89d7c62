//! The local git adapter: a repository on disk, read by running `git` with argv (never a shell)
//! and a clean environment, so that neither `GIT_*` variables nor the user's or system's git
//! configuration change what is read. Implements the planner's [`RepoSource`] port for `slipway
//! plan` and `slipway serve`; its clone/fetch/checkout helpers keep serve's mirrors.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use slipway_core::names::{check_ref, check_repo_path, check_sha};
use slipway_core::plan::{Diff, RepoSource, SourceError};
use tokio::process::Command;

/// Why git could not answer.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("`{0}` is not a git repository (run `git init`, or point --repo at a clone)")]
    NotARepository(PathBuf),
    #[error("could not run git: {0} (is git installed and on PATH?)")]
    Spawn(std::io::Error),
    #[error("git {command} failed: {stderr}")]
    Failed { command: String, stderr: String },
    #[error("{0}")]
    Invalid(String),
}

impl From<GitError> for SourceError {
    fn from(e: GitError) -> Self {
        match e {
            GitError::Invalid(m) => SourceError::Invalid(m),
            other => SourceError::Unavailable(other.to_string()),
        }
    }
}

/// Output of one git run.
struct Output {
    ok: bool,
    code: Option<i32>,
    stdout: Vec<u8>,
    stderr: String,
}

/// A git command with a clean environment: only `PATH` is kept; no system or global config,
/// no prompts, stable messages.
fn git_command(dir: Option<&Path>) -> Command {
    let mut c = Command::new("git");
    c.env_clear();
    if let Some(path) = std::env::var_os("PATH") {
        c.env("PATH", path);
    }
    c.env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_ASKPASS", "/bin/false")
        .env("LC_ALL", "C")
        // Paths print as they are, not octal-quoted.
        .args(["-c", "core.quotePath=false"])
        .stdin(Stdio::null())
        .kill_on_drop(true);
    if let Some(d) = dir {
        c.current_dir(d);
    }
    c
}

async fn run(dir: Option<&Path>, args: &[&str]) -> Result<Output, GitError> {
    let out = git_command(dir)
        .args(args)
        .output()
        .await
        .map_err(GitError::Spawn)?;
    Ok(Output {
        ok: out.status.success(),
        code: out.status.code(),
        stdout: out.stdout,
        stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
    })
}

fn failed(args: &[&str], out: &Output) -> GitError {
    GitError::Failed {
        command: args.first().copied().unwrap_or_default().to_string(),
        stderr: out.stderr.clone(),
    }
}

/// A revision git may be handed: a full object id or a fully-qualified, safe ref.
fn check_rev(rev: &str) -> Result<(), GitError> {
    if check_sha(rev).is_ok() || check_ref(rev).is_ok() {
        Ok(())
    } else {
        Err(GitError::Invalid(format!(
            "`{rev}` is neither a full commit sha (40 hex digits) nor a ref like refs/heads/main"
        )))
    }
}

/// A repository on disk.
#[derive(Debug, Clone)]
pub struct GitRepo {
    dir: PathBuf,
}

impl GitRepo {
    /// Opens the repository at `path` (its work tree or a bare repository).
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, GitError> {
        let dir = path.as_ref().to_path_buf();
        if !dir.is_dir() {
            return Err(GitError::NotARepository(dir));
        }
        let out = run(Some(&dir), &["rev-parse", "--git-dir"]).await?;
        if !out.ok {
            return Err(GitError::NotARepository(dir));
        }
        Ok(Self { dir })
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Runs git in the repository with `args` as argv; stdout on success.
    pub async fn git(&self, args: &[&str]) -> Result<Vec<u8>, GitError> {
        let out = run(Some(&self.dir), args).await?;
        if out.ok {
            Ok(out.stdout)
        } else {
            Err(failed(args, &out))
        }
    }

    /// Clones `url` into `dir` (which must not exist or be empty), without checking out.
    pub async fn clone_into(url: &str, dir: impl AsRef<Path>) -> Result<Self, GitError> {
        if url.starts_with('-') {
            return Err(GitError::Invalid(
                "a clone URL may not start with `-`".into(),
            ));
        }
        let dir = dir.as_ref();
        let d = dir
            .to_str()
            .ok_or_else(|| GitError::Invalid("the work directory must be UTF-8".into()))?;
        let args = ["clone", "--quiet", "--no-checkout", "--", url, d];
        let out = run(None, &args).await?;
        if !out.ok {
            return Err(failed(&args, &out));
        }
        Self::open(dir).await
    }

    /// Fetches one revision (a sha or a ref) from `remote` (a URL or remote name).
    pub async fn fetch(&self, remote: &str, rev: &str) -> Result<(), GitError> {
        check_rev(rev)?;
        if remote.starts_with('-') {
            return Err(GitError::Invalid("a remote may not start with `-`".into()));
        }
        self.git(&["fetch", "--quiet", "--no-tags", "--", remote, rev])
            .await
            .map(drop)
    }

    /// Checks `commit` out, detached, discarding local changes in the work tree.
    pub async fn checkout(&self, commit: &str) -> Result<(), GitError> {
        check_sha(commit).map_err(|e| GitError::Invalid(format!("`{commit}` {e}")))?;
        self.git(&["checkout", "--quiet", "--force", "--detach", commit])
            .await
            .map(drop)
    }

    /// The repository's default branch: `origin/HEAD`'s target, else `main` or `master` when
    /// such a branch exists.
    pub async fn default_branch(&self) -> Result<Option<String>, GitError> {
        let out = run(
            Some(&self.dir),
            &["symbolic-ref", "--quiet", "refs/remotes/origin/HEAD"],
        )
        .await?;
        if out.ok {
            let target = String::from_utf8_lossy(&out.stdout).trim().to_string();
            if let Some(b) = target.strip_prefix("refs/remotes/origin/") {
                return Ok(Some(b.to_string()));
            }
        }
        for b in ["main", "master"] {
            if self.rev_parse(&format!("refs/heads/{b}")).await?.is_some() {
                return Ok(Some(b.to_string()));
            }
        }
        Ok(None)
    }

    /// The commit `rev` names (tags peeled), `None` when it names none.
    pub async fn rev_parse(&self, rev: &str) -> Result<Option<String>, GitError> {
        check_rev(rev)?;
        let spec = format!("{rev}^{{commit}}");
        let out = run(
            Some(&self.dir),
            &[
                "rev-parse",
                "--verify",
                "--quiet",
                "--end-of-options",
                &spec,
            ],
        )
        .await?;
        Ok(out
            .ok
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string()))
    }

    /// The `origin` remote's URL, if any.
    pub async fn origin_url(&self) -> Result<Option<String>, GitError> {
        let out = run(Some(&self.dir), &["remote", "get-url", "origin"]).await?;
        Ok(out
            .ok
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string()))
    }
}

fn split_z(bytes: &[u8]) -> impl Iterator<Item = String> + '_ {
    bytes
        .split(|&b| b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| String::from_utf8_lossy(s).into_owned())
}

impl RepoSource for GitRepo {
    async fn resolve(&self, rev: &str) -> Result<String, SourceError> {
        let mut candidates = vec![rev.to_string()];
        // A local clone may hold the default branch only as `origin/<branch>`.
        if let Some(b) = rev.strip_prefix("refs/heads/") {
            candidates.push(format!("refs/remotes/origin/{b}"));
        }
        for c in &candidates {
            if let Some(sha) = self.rev_parse(c).await? {
                return Ok(sha);
            }
        }
        Err(SourceError::NotFound(format!(
            "`{rev}` is not a commit of the repository at {}",
            self.dir.display()
        )))
    }

    async fn tree(&self, commit: &str) -> Result<Vec<String>, SourceError> {
        check_rev(commit)?;
        let out = self
            .git(&["ls-tree", "-r", "-z", "--end-of-options", commit])
            .await?;
        // `<mode> <type> <object>\t<path>`: files and symlinks are blobs; submodules are commits.
        Ok(split_z(&out)
            .filter_map(|entry| {
                let (meta, path) = entry.split_once('\t')?;
                (meta.split(' ').nth(1) == Some("blob")).then(|| path.to_string())
            })
            .collect())
    }

    async fn read_file(&self, commit: &str, path: &str) -> Result<Option<String>, SourceError> {
        check_rev(commit)?;
        check_repo_path(path)
            .map_err(|e| SourceError::Invalid(format!("the path `{path}` {e}")))?;
        let spec = format!("{commit}:{path}");
        let out = run(Some(&self.dir), &["cat-file", "blob", &spec])
            .await
            .map_err(SourceError::from)?;
        if out.ok {
            Ok(Some(String::from_utf8_lossy(&out.stdout).into_owned()))
        } else if out.code == Some(128) {
            Ok(None)
        } else {
            Err(failed(&["cat-file"], &out).into())
        }
    }

    async fn diff(&self, base: &str, head: &str) -> Result<Diff, SourceError> {
        check_rev(base)?;
        check_rev(head)?;
        for rev in [base, head] {
            if self.rev_parse(rev).await?.is_none() {
                return Err(SourceError::NotFound(format!(
                    "`{rev}` is not a commit of the repository"
                )));
            }
        }
        // Renames are listed as a removal and an addition: both sides are changed paths.
        let out = self
            .git(&[
                "diff",
                "--name-only",
                "-z",
                "--no-renames",
                "--end-of-options",
                base,
                head,
            ])
            .await?;
        let mut paths: Vec<String> = split_z(&out).collect();
        paths.sort();
        paths.dedup();
        Ok(Diff {
            paths,
            complete: true,
        })
    }

    async fn merge_base(&self, a: &str, b: &str) -> Result<Option<String>, SourceError> {
        check_rev(a)?;
        check_rev(b)?;
        for rev in [a, b] {
            if self.rev_parse(rev).await?.is_none() {
                return Err(SourceError::NotFound(format!(
                    "`{rev}` is not a commit of the repository"
                )));
            }
        }
        let out = run(Some(&self.dir), &["merge-base", "--end-of-options", a, b])
            .await
            .map_err(SourceError::from)?;
        if out.ok {
            Ok(Some(
                String::from_utf8_lossy(&out.stdout).trim().to_string(),
            ))
        } else if out.code == Some(1) {
            Ok(None)
        } else {
            Err(failed(&["merge-base"], &out).into())
        }
    }

    async fn tags(&self) -> Result<Vec<String>, SourceError> {
        let out = self
            .git(&["for-each-ref", "--format=%(refname)", "refs/tags"])
            .await?;
        Ok(String::from_utf8_lossy(&out)
            .lines()
            .filter_map(|l| l.strip_prefix("refs/tags/"))
            .map(str::to_string)
            .collect())
    }
}
