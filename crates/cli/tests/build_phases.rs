//! `slipway build` runs a buildspec the way CodeBuild (version 0.2) does: phases in order,
//! variables and the working directory carried from one command to the next, `finally` blocks,
//! `on-failure` ABORT/CONTINUE, the CodeBuild environment, start-build overrides over the
//! buildspec's variables, exported variables, and parameters resolved from a local source.
//! No Docker needed: these buildspecs only run bash.

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};
use slipway_testkit::git::{commit_all, init, write};

const EXPORTED: &str = "[ORDER, PERSISTED, CWD_NAME, SUCCEEDING_IN_POST, SEEN_IMAGE, SEEN_SOURCE, SRC_OK, FROM_SPEC, SEEN_TRIGGER, PW_LEN]";

/// Runs `buildspec` for one image of a fresh repository; returns (log, build result).
fn run(dir: &Path, buildspec: &str) -> (bool, String, Value) {
    run_with_env(dir, buildspec, &[])
}

/// [`run`] with these variables in `slipway build`'s environment.
fn run_with_env(dir: &Path, buildspec: &str, env: &[(&str, &str)]) -> (bool, String, Value) {
    let repo = dir.join("repo");
    init(&repo);
    write(&repo, "app/Dockerfile", "FROM scratch\n");
    let commit = commit_all(&repo, "x");
    let plan = json!({
        "repository": "acme/site", "ref": "refs/heads/main", "commit": commit,
        "changes": {"source": "all", "reason": "test"},
        "images": [{
            "name": "acme/web", "context": "app", "dockerfile": "app/Dockerfile",
            "commit": commit, "tags": ["main"], "reasons": ["test"], "order": 0
        }]
    });
    std::fs::write(dir.join("plan.json"), plan.to_string()).unwrap();
    std::fs::write(dir.join("buildspec.yml"), buildspec).unwrap();
    std::fs::write(
        dir.join("secrets"),
        "# local stand-ins for Parameter Store\n/slipway/registry/docker.io/acme/username=bot\n/slipway/registry/docker.io/acme/password=s3cret-value-xyz\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_slipway"))
        .arg("build")
        .arg("--plan")
        .arg(dir.join("plan.json"))
        .arg("--source")
        .arg(&repo)
        .arg("--buildspec")
        .arg(dir.join("buildspec.yml"))
        .arg("--secrets-file")
        .arg(dir.join("secrets"))
        .arg("--work-dir")
        .arg(dir)
        .arg("--result")
        .arg(dir.join("result.json"))
        .env_remove("SLIPWAY_SECRETS_FILE")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let result: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("result.json")).unwrap()).unwrap();
    (
        out.status.success(),
        log,
        result["builds"][0].clone(),
        // commit is checked through SEEN_SOURCE
    )
}

#[test]
fn phases_finally_continue_and_state_carried_between_commands() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = format!(
        r#"version: 0.2
env:
  shell: bash
  variables:
    FROM_SPEC: spec
    SLIPWAY_IMAGE: the-buildspec-loses
  exported-variables: {EXPORTED}
phases:
  install:
    commands:
      - ORDER=install
      - PERSISTED=plain-assignment; mkdir -p sub && cd sub
      - CWD_NAME="$(basename "$PWD")"
  pre_build:
    on-failure: CONTINUE
    commands:
      - ORDER="$ORDER pre_build"
      - exit 3
      - ORDER="$ORDER never"
    finally:
      - ORDER="$ORDER pre_build-finally"
  build:
    commands:
      - ORDER="$ORDER build"
      - SEEN_IMAGE="$SLIPWAY_IMAGE"; SEEN_SOURCE="$CODEBUILD_RESOLVED_SOURCE_VERSION"; SEEN_TRIGGER="$CODEBUILD_WEBHOOK_TRIGGER"
      - test -f "$CODEBUILD_SRC_DIR/app/Dockerfile" && SRC_OK=yes
      - PW_LEN="${{#SLIPWAY_REGISTRY_PASSWORD}}"; echo "the password is $SLIPWAY_REGISTRY_PASSWORD"
      - "false"
      - ORDER="$ORDER never"
    finally:
      - ORDER="$ORDER build-finally"
  post_build:
    commands:
      - ORDER="$ORDER post_build"; SUCCEEDING_IN_POST="$CODEBUILD_BUILD_SUCCEEDING"
"#
    );
    let (ok, log, b) = run(tmp.path(), &spec);
    assert!(!ok, "a failed phase fails the build:\n{log}");
    assert_eq!(b["status"], "FAILED");
    let e = &b["exported"];
    assert_eq!(
        e["ORDER"], "install pre_build pre_build-finally build build-finally post_build",
        "{log}"
    );
    assert_eq!(e["PERSISTED"], "plain-assignment");
    assert_eq!(e["CWD_NAME"], "sub");
    assert_eq!(e["SUCCEEDING_IN_POST"], "0");
    // Start-build overrides win over the buildspec's variables, as on CodeBuild.
    assert_eq!(e["SEEN_IMAGE"], "acme/web");
    assert_eq!(e["FROM_SPEC"], "spec");
    assert_eq!(e["SEEN_SOURCE"].as_str().unwrap().len(), 40);
    assert_eq!(e["SEEN_TRIGGER"], "branch/main");
    assert_eq!(e["SRC_OK"], "yes");
    // The parameter resolved from the secrets file, and masked in the log.
    assert_eq!(e["PW_LEN"], "16");
    assert!(log.contains("the password is ***"), "{log}");
    assert!(!log.contains("s3cret-value-xyz"));
    let phases: Vec<(String, String)> = b["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["phase"].as_str().unwrap().to_string(),
                p["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let expect = [
        ("DOWNLOAD_SOURCE", "SUCCEEDED"),
        ("INSTALL", "SUCCEEDED"),
        ("PRE_BUILD", "FAILED"),
        ("BUILD", "FAILED"),
        ("POST_BUILD", "SUCCEEDED"),
    ];
    assert_eq!(
        phases,
        expect.map(|(a, b)| (a.to_string(), b.to_string())).to_vec()
    );
    assert!(
        b["error"]
            .as_str()
            .unwrap()
            .contains("command 2 of pre_build exited with 3")
    );
}

#[test]
fn abort_and_a_failed_install_end_the_build() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = format!(
        r#"version: 0.2
env:
  exported-variables: {EXPORTED}
phases:
  build:
    on-failure: ABORT
    commands:
      - ORDER=build
      - exit 1
  post_build:
    commands:
      - ORDER="$ORDER post_build"
"#
    );
    let (ok, log, b) = run(tmp.path(), &spec);
    assert!(!ok);
    assert_eq!(b["exported"]["ORDER"], "build", "{log}");

    let tmp = tempfile::tempdir().unwrap();
    let spec = format!(
        r#"version: 0.2
env:
  exported-variables: {EXPORTED}
phases:
  install:
    commands:
      - ORDER=install; false
    finally:
      - ORDER="$ORDER install-finally"
  build:
    commands:
      - ORDER="$ORDER build"
  post_build:
    commands:
      - ORDER="$ORDER post_build"
"#
    );
    let (ok, log, b) = run(tmp.path(), &spec);
    assert!(!ok);
    assert_eq!(
        b["exported"]["ORDER"], "install install-finally",
        "a failed install skips the rest:\n{log}"
    );
}

#[test]
fn a_missing_parameter_fails_before_any_command_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = r#"version: 0.2
env:
  parameter-store:
    EXTRA_TOKEN: /slipway/not-in-the-file
phases:
  build:
    commands:
      - touch "$CODEBUILD_SRC_DIR/../ran"
"#;
    let (ok, log, b) = run(tmp.path(), spec);
    assert!(!ok);
    assert!(
        log.contains("the parameter /slipway/not-in-the-file (for EXTRA_TOKEN) is not in the secrets file nor in SLIPWAY_SECRET_SLIPWAY_NOT_IN_THE_FILE"),
        "{log}"
    );
    assert_eq!(b["status"], "FAILED");
}

#[test]
fn the_users_git_configuration_does_not_change_what_is_checked_out() {
    // A decoy repository, and git configuration in the environment that swaps it in for the
    // source: `slipway build` checks out the source it was given all the same.
    let tmp = tempfile::tempdir().unwrap();
    let decoy = tmp.path().join("decoy");
    init(&decoy);
    commit_all(&decoy, "decoy");
    let source = tmp.path().join("repo");
    let rewrite = format!("url.{}.insteadOf", decoy.display());
    let spec = format!(
        r#"version: 0.2
env:
  exported-variables: {EXPORTED}
phases:
  build:
    commands:
      - test -f "$CODEBUILD_SRC_DIR/app/Dockerfile" && SRC_OK=yes
"#
    );
    let (ok, log, b) = run_with_env(
        tmp.path(),
        &spec,
        &[
            ("GIT_CONFIG_COUNT", "1"),
            ("GIT_CONFIG_KEY_0", &rewrite),
            ("GIT_CONFIG_VALUE_0", source.to_str().unwrap()),
        ],
    );
    assert!(ok, "{log}");
    assert_eq!(b["exported"]["SRC_OK"], "yes", "{log}");
}
