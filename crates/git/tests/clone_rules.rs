//! Cloning and fetching follow one set of rules wherever slipway clones (serve's mirrors,
//! `slipway build`'s checkout): git runs with a cleared environment and no user or system
//! configuration, over the transports `https`, `http`, `ssh` and `git` only, and `file` only where
//! the caller allows repositories on this machine.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use slipway_git::{CloneRules, GitRepo, Source};

/// A git remote helper on `PATH` (`git-remote-evil`) that leaves a mark when git runs it.
fn install_helper(dir: &Path) -> std::path::PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let mark = dir.join("helper-ran");
    let helper = bin.join("git-remote-evil");
    std::fs::write(
        &helper,
        format!("#!/bin/sh\ntouch '{}'\nexit 1\n", mark.display()),
    )
    .unwrap();
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    mark
}

#[tokio::test]
async fn a_remote_helper_transport_is_never_run() {
    let tmp = tempfile::tempdir().unwrap();
    let mark = install_helper(tmp.path());
    let path = format!(
        "{}:{}",
        tmp.path().join("bin").display(),
        std::env::var("PATH").unwrap()
    );
    // SAFETY: this test binary runs one test at a time in its own process (nextest).
    unsafe { std::env::set_var("PATH", path) };
    let any = CloneRules { allow_local: true };
    let e = Source::parse("evil::payload", any).unwrap_err();
    assert_eq!(e.code(), "source_refused");
    // Even a source made by hand, past the parser: git itself refuses the transport.
    let by_hand = Source::Remote("evil::payload".into());
    let r = GitRepo::clone_into(&by_hand, tmp.path().join("clone")).await;
    assert!(r.is_err());
    assert!(!mark.exists(), "git ran the `evil` remote helper");
}
