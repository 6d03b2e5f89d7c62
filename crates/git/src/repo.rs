//! A repository on disk: what `slipway plan` and serve's planner read (the [`RepoSource`] port),
//! and the clones, fetches and checkouts the clone rules ([`crate::rules`]) allow.

use std::path::{Path, PathBuf};

use slipway_core::names::{check_ref, check_repo_path, check_sha};
use slipway_core::plan::{Diff, RepoSource, SourceError};

use crate::GitError;
use crate::rules::{Output, Source, run};

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
        let out = run(Some(&dir), None, &["rev-parse", "--git-dir"]).await?;
        if !out.ok {
            return Err(GitError::NotARepository(dir));
        }
        Ok(Self { dir })
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Runs git in the repository with `args` as argv; stdout on success. No transport is
    /// allowed: clones and fetches go through [`GitRepo::fetch`] and its kin.
    pub async fn git(&self, args: &[&str]) -> Result<Vec<u8>, GitError> {
        let out = run(Some(&self.dir), None, args).await?;
        if out.ok {
            Ok(out.stdout)
        } else {
            Err(failed(args, &out))
        }
    }

    /// Clones `from` into `dir` (which must not exist or be empty), without checking out.
    pub async fn clone_into(from: &Source, dir: impl AsRef<Path>) -> Result<Self, GitError> {
        let dir = dir.as_ref();
        let d = dir
            .to_str()
            .ok_or_else(|| GitError::Invalid("the work directory must be UTF-8".into()))?;
        let args = ["clone", "--quiet", "--no-checkout", "--", from.arg()?, d];
        let out = run(None, Some(from), &args).await?;
        if !out.ok {
            return Err(failed(&args, &out));
        }
        Self::open(dir).await
    }

    /// The mirror of `repository` (`owner/name`) under `repos`: opened when it is there, else
    /// cloned from `from`. One directory per repository, whatever its case.
    pub async fn mirror(repos: &Path, repository: &str, from: &Source) -> Result<Self, GitError> {
        let dir = repos.join(repository.to_ascii_lowercase().replace('/', "__"));
        if dir.join(".git").exists() || dir.join("HEAD").exists() {
            Self::open(&dir).await
        } else {
            Self::clone_into(from, &dir).await
        }
    }

    /// A clean checkout of `commit` from `from` into `dir`, detached.
    pub async fn checkout_at(from: &Source, commit: &str, dir: &Path) -> Result<Self, GitError> {
        check_sha(commit).map_err(|e| GitError::Invalid(format!("the commit {e}")))?;
        let repo = Self::clone_into(from, dir).await?;
        repo.checkout(commit).await.map_err(|e| match e {
            GitError::Failed { .. } => GitError::NoSuchCommit(commit.to_string()),
            other => other,
        })?;
        Ok(repo)
    }

    /// Fetches one revision (a sha or a ref) from `from`.
    pub async fn fetch(&self, from: &Source, rev: &str) -> Result<(), GitError> {
        check_rev(rev)?;
        let args = ["fetch", "--quiet", "--no-tags", "--", from.arg()?, rev];
        let out = run(Some(&self.dir), Some(from), &args).await?;
        if out.ok {
            Ok(())
        } else {
            Err(failed(&args, &out))
        }
    }

    /// Fetches `branch` from `from` as `refs/remotes/origin/<branch>`, which it returns.
    pub async fn fetch_branch(&self, from: &Source, branch: &str) -> Result<String, GitError> {
        let head = format!("refs/heads/{branch}");
        check_ref(&head).map_err(|e| GitError::Invalid(format!("the branch `{branch}` {e}")))?;
        let remote = format!("refs/remotes/origin/{branch}");
        let refspec = format!("+{head}:{remote}");
        let args = ["fetch", "--quiet", "--no-tags", "--", from.arg()?, &refspec];
        let out = run(Some(&self.dir), Some(from), &args).await?;
        if out.ok {
            Ok(remote)
        } else {
            Err(failed(&args, &out))
        }
    }

    /// Checks `commit` out, detached, discarding local changes in the work tree.
    pub async fn checkout(&self, commit: &str) -> Result<(), GitError> {
        check_sha(commit).map_err(|e| GitError::Invalid(format!("`{commit}` {e}")))?;
        self.git(&[
            "-c",
            "advice.detachedHead=false",
            "checkout",
            "--quiet",
            "--force",
            "--detach",
            commit,
        ])
        .await
        .map(drop)
    }

    /// The repository's default branch: `origin/HEAD`'s target, else `main` or `master` when
    /// such a branch exists.
    pub async fn default_branch(&self) -> Result<Option<String>, GitError> {
        let out = run(
            Some(&self.dir),
            None,
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
            None,
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
        let out = run(Some(&self.dir), None, &["remote", "get-url", "origin"]).await?;
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
        let out = run(Some(&self.dir), None, &["cat-file", "blob", &spec])
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
        let out = run(
            Some(&self.dir),
            None,
            &["merge-base", "--end-of-options", a, b],
        )
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
