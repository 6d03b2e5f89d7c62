//! The buildspec proven for real: `slipway build` runs the shipped `buildspec.yml` on the local
//! Docker engine against the htpasswd-protected registry of `tests/services.sh`.
//!
//! Needs `source tests/services.sh start` (SLIPWAY_TEST_REGISTRY, SLIPWAY_TEST_REGISTRY_USER,
//! SLIPWAY_TEST_REGISTRY_PASSWORD_FILE, SLIPWAY_TEST_BUSYBOX); fails loudly without them.

mod buildkit_support;

use std::path::Path;
use std::time::Instant;

use buildkit_support::{Build, image_json, plan, slipway_build_secrets};
use serde_json::{Value, json};
use slipway_testkit::git::{commit_all, init};
use slipway_testkit::registry::{Registry, docker, registry};
use slipway_testkit::unique;

/// A repository with one image context at `context`, committed; returns the commit.
fn repo_with(r: &Registry, dir: &Path, context: &str, extra: &[(&str, &str)]) -> String {
    init(dir);
    let ctx = dir.join(context);
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::copy(&r.busybox, ctx.join("busybox")).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        // The unique file keeps every test's layers apart; the slow RUN step makes the cache
        // visible in the timings.
        "FROM scratch\nCOPY busybox /bin/busybox\nCOPY unique.txt /unique.txt\nRUN [\"/bin/busybox\", \"sh\", \"-c\", \"/bin/busybox sleep 2 && echo built > /built.txt\"]\nCMD [\"/bin/busybox\", \"cat\", \"/built.txt\"]\n",
    )
    .unwrap();
    std::fs::write(ctx.join("unique.txt"), unique("layer")).unwrap();
    for (name, text) in extra {
        std::fs::write(ctx.join(name), text).unwrap();
    }
    commit_all(dir, "image")
}

/// `slipway build` of `image` at `commit` with the secrets file's text `secrets`.
fn build(
    work: &Path,
    repo: &Path,
    image: &Value,
    commit: &str,
    secrets: &str,
    extra_env: &[(&str, &str)],
) -> Build {
    let plan = plan(commit, vec![image.clone()]);
    slipway_build_secrets(work, secrets, repo, &plan, None, extra_env)
}

/// The registry's credentials for `namespace`, with `password` (the right one or not).
fn secrets_for(r: &Registry, namespace: &str, password: &str) -> String {
    Registry {
        password: password.into(),
        ..r.clone()
    }
    .secrets(namespace)
}

/// The image of `context`, with its `autotest` flag.
fn image_with_autotest(
    name: &str,
    context: &str,
    commit: &str,
    tags: &[&str],
    autotest: bool,
) -> Value {
    image_json(
        name,
        context,
        commit,
        tags,
        &[("autotest", json!(autotest))],
    )
}

fn remove_local(name: &str, tags: &[&str]) {
    for t in tags {
        let _ = docker(&["rmi", "--force", &format!("{name}:{t}")], None);
    }
}

#[test]
fn builds_pushes_every_tag_with_labels_and_reuses_the_cache() {
    let r = registry();
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    let commit = repo_with(&r, &repo, "app", &[]);
    let path = unique("slipway-test/build");
    let name = format!("{}/{path}", r.host);
    let short = format!("sha-{}", &commit[..7]);
    let tags = ["main", short.as_str(), "latest"];
    let image = image_with_autotest(&name, "app", &commit, &tags, false);
    let secrets = secrets_for(&r, "slipway-test", &r.password);

    let t1 = Instant::now();
    let first = build(tmp.path(), &repo, &image, &commit, &secrets, &[]);
    let first_time = t1.elapsed();
    assert!(
        first.output.status.success(),
        "build failed:\n{}",
        first.log
    );
    let b = &first.result["builds"][0];
    assert_eq!(b["status"], "SUCCEEDED", "{}", first.log);
    let digest = b["exported"]["SLIPWAY_DIGEST"]
        .as_str()
        .unwrap_or_else(|| panic!("no exported digest: {}", first.result))
        .to_string();
    assert!(
        digest.starts_with("sha256:") && digest.len() == 71,
        "{digest}"
    );
    let phases: Vec<&str> = b["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["phase"].as_str().unwrap())
        .collect();
    assert_eq!(
        phases,
        [
            "DOWNLOAD_SOURCE",
            "INSTALL",
            "PRE_BUILD",
            "BUILD",
            "POST_BUILD"
        ]
    );
    assert!(!first.log.contains(&r.password), "password in the log");

    // Every tag is in the registry at the exported digest, and pulls back with the labels.
    let pull_config = tmp.path().join("pull-config");
    r.login(Some(&pull_config));
    remove_local(&name, &tags);
    for t in tags {
        assert_eq!(
            r.manifest_digest(&path, t).as_deref(),
            Some(digest.as_str()),
            "tag {t} in the registry"
        );
        let reference = format!("{name}:{t}");
        let pulled = docker(&["pull", "--quiet", &reference], Some(&pull_config));
        assert!(
            pulled.status.success(),
            "pull {reference}: {}",
            String::from_utf8_lossy(&pulled.stderr)
        );
        let inspect = docker(
            &[
                "image",
                "inspect",
                "--format",
                "{{json .RepoDigests}}|{{json .Config.Labels}}",
                &reference,
            ],
            None,
        );
        let text = String::from_utf8_lossy(&inspect.stdout).to_string();
        let (digests, labels) = text.trim().split_once('|').unwrap();
        let digests: Vec<String> = serde_json::from_str(digests).unwrap();
        assert!(
            digests.contains(&format!("{name}@{digest}")),
            "{reference}: {digests:?}"
        );
        let labels: Value = serde_json::from_str(labels).unwrap();
        assert_eq!(
            labels["org.opencontainers.image.source"],
            "https://github.com/acme/site"
        );
        assert_eq!(labels["org.opencontainers.image.revision"], commit.as_str());
        let created = labels["org.opencontainers.image.created"].as_str().unwrap();
        assert!(
            created.len() == 20 && created.ends_with('Z') && created.as_bytes()[10] == b'T',
            "created label {created}"
        );
    }

    // A second build of the unchanged context, with no local image left: the registry cache
    // the first build wrote (`buildcache-main`) is read back (crates/cli/tests/build_cache.rs
    // shows which steps it serves, with the local build cache gone too).
    remove_local(&name, &tags);
    let t2 = Instant::now();
    let second = build(tmp.path(), &repo, &image, &commit, &secrets, &[]);
    let second_time = t2.elapsed();
    assert!(second.output.status.success(), "{}", second.log);
    let cache = format!("importing cache manifest from {name}:buildcache-main");
    assert!(second.log.contains(&cache), "{}", second.log);
    assert!(
        second.log.contains("CACHED"),
        "the second build did not use the cache:\n{}",
        second.log
    );

    eprintln!(
        "build timing: first {} ms, second (cache from registry) {} ms",
        first_time.as_millis(),
        second_time.as_millis()
    );
    remove_local(&name, &tags);
}

#[test]
fn a_failing_autotest_pushes_nothing() {
    let r = registry();
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    let compose = "version: \"2.4\"\nservices:\n  sut:\n    image: ${IMAGE_NAME}\n    network_mode: host\n    command: [\"/bin/busybox\", \"sh\", \"-c\", \"echo the test fails; exit 3\"]\n";
    let commit = repo_with(&r, &repo, "svc", &[("docker-compose.test.yml", compose)]);
    let path = unique("slipway-test/autotest");
    let name = format!("{}/{path}", r.host);
    let tags = ["main", "extra"];
    let image = image_with_autotest(&name, "svc", &commit, &tags, true);
    let out = build(
        tmp.path(),
        &repo,
        &image,
        &commit,
        &secrets_for(&r, "slipway-test", &r.password),
        &[],
    );
    assert!(!out.output.status.success(), "{}", out.log);
    assert_eq!(out.result["builds"][0]["status"], "FAILED");
    assert!(out.log.contains("the test fails"), "{}", out.log);
    assert!(
        out.log
            .contains("autotest failed: service sut exited with 3; nothing is pushed"),
        "{}",
        out.log
    );
    assert!(out.result["builds"][0]["exported"]["SLIPWAY_DIGEST"].is_null());
    for t in tags {
        assert_eq!(r.manifest_digest(&path, t), None, "tag {t} was pushed");
    }
    remove_local(&name, &tags);
}

#[test]
fn a_passing_autotest_pushes() {
    let r = registry();
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    let compose = "version: \"2.4\"\nservices:\n  sut:\n    image: ${IMAGE_NAME}\n    network_mode: host\n    command: [\"/bin/busybox\", \"grep\", \"-q\", \"built\", \"/built.txt\"]\n";
    let commit = repo_with(&r, &repo, "svc", &[("docker-compose.test.yml", compose)]);
    let path = unique("slipway-test/autotest-ok");
    let name = format!("{}/{path}", r.host);
    let image = image_with_autotest(&name, "svc", &commit, &["main"], true);
    let out = build(
        tmp.path(),
        &repo,
        &image,
        &commit,
        &secrets_for(&r, "slipway-test", &r.password),
        &[],
    );
    assert!(out.output.status.success(), "{}", out.log);
    assert!(out.log.contains("autotest passed"), "{}", out.log);
    let digest = out.result["builds"][0]["exported"]["SLIPWAY_DIGEST"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(r.manifest_digest(&path, "main"), Some(digest));
    remove_local(&name, &["main"]);
}

#[test]
fn a_wrong_registry_password_fails_clearly_without_the_password_in_the_log() {
    let r = registry();
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    let commit = repo_with(&r, &repo, "app", &[]);
    let path = unique("slipway-test/badlogin");
    let name = format!("{}/{path}", r.host);
    let wrong = "wrong-Pa55word-that-must-not-leak";
    let image = image_with_autotest(&name, "app", &commit, &["main"], false);
    let out = build(
        tmp.path(),
        &repo,
        &image,
        &commit,
        &secrets_for(&r, "slipway-test", wrong),
        &[],
    );
    assert!(!out.output.status.success(), "{}", out.log);
    let b = &out.result["builds"][0];
    assert_eq!(b["status"], "FAILED");
    assert!(
        out.log.contains(&format!(
            "docker login to {} as {} failed: check the registry credential parameters",
            r.host, r.user
        )),
        "{}",
        out.log
    );
    assert!(
        b["error"].as_str().unwrap().starts_with("PRE_BUILD"),
        "{}",
        b
    );
    // A failed pre_build ends the build: the build phase never ran.
    assert!(
        !b["phases"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["phase"] == "BUILD")
    );
    assert!(!out.log.contains(wrong), "the password is in the log");
    assert!(!out.result.to_string().contains(wrong));
    assert!(!out.log.contains(&r.password));
    assert_eq!(r.manifest_digest(&path, "main"), None);
}

#[test]
fn a_context_named_with_shell_metacharacters_is_built_as_data() {
    let r = registry();
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    let markers = [
        "/tmp/pwned",
        "/tmp/slipway-pwned-subst",
        "/tmp/slipway-pwned-backtick",
    ];
    for m in markers {
        let _ = std::fs::remove_dir_all(m);
        let _ = std::fs::remove_file(m);
    }
    // One directory per hostile name, nested: `a;touch /tmp/pwned` holds a `/` and so is a path.
    let context = "ctx/a;touch /tmp/pwned/$(touch /tmp/slipway-pwned-subst)/`touch /tmp/slipway-pwned-backtick`/it's \"quoted\" & spaced $(id)";
    let commit = repo_with(&r, &repo, context, &[]);
    let path = unique("slipway-test/meta");
    let name = format!("{}/{path}", r.host);
    let image = image_with_autotest(&name, context, &commit, &["main"], false);
    let out = build(
        tmp.path(),
        &repo,
        &image,
        &commit,
        &secrets_for(&r, "slipway-test", &r.password),
        &[],
    );
    for m in markers {
        assert!(
            !Path::new(m).exists(),
            "{m} exists: a context name ran as a command"
        );
    }
    assert!(out.output.status.success(), "{}", out.log);
    let digest = out.result["builds"][0]["exported"]["SLIPWAY_DIGEST"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(r.manifest_digest(&path, "main"), Some(digest));
    remove_local(&name, &["main"]);
}

#[test]
fn an_invalid_image_name_is_refused_before_anything_runs() {
    let r = registry();
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    let commit = repo_with(&r, &repo, "app", &[]);
    let image = image_with_autotest(
        "acme/web;touch /tmp/slipway-pwned-name",
        "app",
        &commit,
        &["main"],
        false,
    );
    let out = build(tmp.path(), &repo, &image, &commit, "", &[]);
    assert!(!out.output.status.success());
    assert!(out.log.contains("image name is invalid"), "{}", out.log);
    assert!(!Path::new("/tmp/slipway-pwned-name").exists());
    assert!(
        out.result["builds"][0]["phases"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}
