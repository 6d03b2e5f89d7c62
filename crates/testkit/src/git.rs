//! Git repositories made by the tests. Git runs with the test identity and neither the user's
//! nor the system's configuration, so a developer's `~/.gitconfig` (signing, hooks, default
//! branch) changes nothing.

use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

/// Runs git in `dir` with `args`; its standard output, trimmed. Panics with git's message when
/// git fails.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args([
            "-c",
            "user.name=slipway test",
            "-c",
            "user.email=test@slipway.invalid",
        ])
        .args(["-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false"])
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?} in {}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Makes `dir` (and its parents) a new repository whose branch is `main`.
pub fn init(dir: &Path) {
    init_on(dir, "main");
}

/// Makes `dir` a new repository whose first branch is `branch`.
pub fn init_on(dir: &Path, branch: &str) {
    std::fs::create_dir_all(dir).expect("create the repository's directory");
    git(
        dir,
        &["init", "--quiet", &format!("--initial-branch={branch}")],
    );
}

/// Writes `text` to `path` below `dir`, making the directories on the way.
pub fn write(dir: &Path, path: &str, text: &str) {
    let p = dir.join(path);
    std::fs::create_dir_all(p.parent().expect("a path below the repository"))
        .expect("create the file's directory");
    std::fs::write(&p, text).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
}

/// Commits everything in the work tree (an empty commit when nothing changed); the new commit.
pub fn commit_all(dir: &Path, message: &str) -> String {
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "--quiet", "--allow-empty", "-m", message]);
    git(dir, &["rev-parse", "HEAD"])
}

/// A repository in a temporary directory (removed when dropped), on branch `main`.
pub struct Repo {
    dir: TempDir,
}

impl Default for Repo {
    fn default() -> Self {
        Self::new()
    }
}

impl Repo {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        init(dir.path());
        Repo { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn path_buf(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    pub fn git(&self, args: &[&str]) -> String {
        git(self.path(), args)
    }

    pub fn write(&self, path: &str, text: &str) -> &Self {
        write(self.path(), path, text);
        self
    }

    /// Removes `path` from the work tree.
    pub fn remove(&self, path: &str) -> &Self {
        std::fs::remove_file(self.path().join(path)).expect("remove a file of the repository");
        self
    }

    /// Commits everything; the new commit.
    pub fn commit(&self, message: &str) -> String {
        commit_all(self.path(), message)
    }
}
