//! Docker Hub's `hooks/` with the shipped buildspec on the real engine and the htpasswd registry
//! of `tests/services.sh`: every phase hook runs in Docker Hub's order with Docker Hub's
//! variables, its output in the build log; `build` and `push` overrides replace slipway's steps
//! and their image is pushed; an override that leaves no image fails with a clear error.
//!
//! Needs `source tests/services.sh start` (which also sets SLIPWAY_BUILD_NETWORK=host: the
//! engine has no bridge); fails loudly without it.

mod buildkit_support;

use std::path::Path;

use buildkit_support::*;
use serde_json::json;
use slipway_testkit::git::write;
use slipway_testkit::registry::{Registry, registry, remove_images};

/// A tiny image (no `RUN`: nothing to execute, no network).
const DOCKERFILE: &str = "FROM scratch\nCOPY unique.txt /unique.txt\n";

/// A hook that prints a marker line the test reads back from the build log.
fn marker(name: &str) -> String {
    format!("#!/bin/bash\nset -eu\necho \"hook-marker {name} cwd=$(basename \"$PWD\")\"\n")
}

/// A repository with the context `app` (Dockerfile, a unique file and `hooks`), committed with
/// `message`, and a unique image name in the test registry.
fn hooks_app(
    r: &Registry,
    dir: &Path,
    label: &str,
    hooks: &[(&str, String)],
    message: &str,
) -> App {
    app(r, dir, label, message, |repo| {
        write(repo, "app/Dockerfile", DOCKERFILE);
        for (name, text) in hooks {
            write(repo, &format!("app/hooks/{name}"), text);
        }
    })
}

/// The image of `a`'s context `app` with `tags` for `platforms`.
fn image(a: &App, tags: &[&str], platforms: &[&str]) -> serde_json::Value {
    image_json(
        &a.name,
        "app",
        &a.commit,
        tags,
        &[("platforms", json!(platforms))],
    )
}

/// The lines of the log that start with `prefix`, without it.
fn lines<'a>(log: &'a str, prefix: &str) -> Vec<&'a str> {
    log.lines().filter_map(|l| l.strip_prefix(prefix)).collect()
}

#[test]
fn every_phase_hook_runs_in_docker_hubs_order_with_its_variables() {
    let r = registry();
    let tmp = tempfile::tempdir().unwrap();
    let phases = [
        "post_checkout",
        "pre_build",
        "post_build",
        "pre_test",
        "test",
        "post_test",
        "pre_push",
        "post_push",
    ];
    let mut hooks: Vec<(&str, String)> = phases.iter().map(|p| (*p, marker(p))).collect();
    // pre_build also prints every variable, and whether it can see the registry password.
    hooks[1].1.push_str(
        "for v in SOURCE_BRANCH SOURCE_COMMIT COMMIT_MSG DOCKER_REPO DOCKERFILE_PATH DOCKER_TAG IMAGE_NAME CACHE_TAG; do\n  printf 'hook-var %s=%s\\n' \"$v\" \"${!v}\"\ndone\necho \"hook-secret ${SLIPWAY_REGISTRY_PASSWORD:-unset}\"\n",
    );
    // The test hook (an override of the autotest) sees the built image.
    hooks[4]
        .1
        .push_str("docker image inspect \"$IMAGE_NAME\" >/dev/null && echo hook-image-present\n");
    // A commit message a shell would misread if it ever became command text.
    let message = "hooks: it's \"quoted\" $(touch /tmp/slipway-pwned) `id`";
    let a = hooks_app(&r, tmp.path(), "hooks-all", &hooks, message);
    let short = format!("sha-{}", &a.commit[..7]);
    let b = slipway_build(
        tmp.path(),
        &r,
        "slipway-test",
        &a.repo,
        &plan(&a.commit, vec![image(&a, &["main", &short], &[])]),
        None,
    );
    assert!(b.ok(), "{}", b.log);

    let markers = lines(&b.log, "hook-marker ");
    let expect: Vec<String> = phases.iter().map(|p| format!("{p} cwd=app")).collect();
    assert_eq!(markers, expect, "{}", b.log);
    let vars = lines(&b.log, "hook-var ");
    let image_name = format!("{}:main", a.name);
    assert_eq!(
        vars,
        [
            "SOURCE_BRANCH=main".to_string(),
            format!("SOURCE_COMMIT={}", a.commit),
            format!("COMMIT_MSG={message}"),
            format!("DOCKER_REPO={}", a.name),
            "DOCKERFILE_PATH=Dockerfile".to_string(),
            "DOCKER_TAG=main".to_string(),
            format!("IMAGE_NAME={image_name}"),
            "CACHE_TAG=main".to_string(),
        ],
        "{}",
        b.log
    );
    assert_eq!(lines(&b.log, "hook-secret "), ["unset"], "{}", b.log);
    assert_eq!(lines(&b.log, "hook-image-present").len(), 1, "{}", b.log);
    assert!(b.log.contains("slipway: hooks/test replaces the autotest"));
    assert!(!Path::new("/tmp/slipway-pwned").exists());
    // slipway's own build and push ran: every tag is the exported digest.
    let digest = b.digest(0);
    for t in ["main", short.as_str()] {
        assert_eq!(r.manifest_digest(&a.path, t), Some(digest.clone()), "{t}");
    }
    remove_images(&[image_name, format!("{}:{short}", a.name)]);
}

#[test]
fn build_and_push_overrides_replace_slipways_steps_for_the_host_platform() {
    let r = registry();
    let tmp = tempfile::tempdir().unwrap();
    let hooks = vec![
        (
            "build",
            format!(
                "{}docker build --network host -t \"$IMAGE_NAME\" -f \"$DOCKERFILE_PATH\" .\n",
                marker("build")
            ),
        ),
        (
            "push",
            format!("{}docker push \"$IMAGE_NAME\"\n", marker("push")),
        ),
    ];
    let a = hooks_app(&r, tmp.path(), "hooks-override", &hooks, "override");
    let b = slipway_build(
        tmp.path(),
        &r,
        "slipway-test",
        &a.repo,
        &plan(
            &a.commit,
            vec![image(&a, &["main", "v1"], &["linux/amd64", "linux/arm64"])],
        ),
        None,
    );
    assert!(b.ok(), "{}", b.log);
    assert_eq!(
        lines(&b.log, "hook-marker "),
        ["build cwd=app", "push cwd=app"],
        "{}",
        b.log
    );
    assert!(
        b.log.contains(&format!(
            "slipway: hooks/build replaces slipway's build: {}:main is built for the builder's platform only, not for linux/amd64,linux/arm64",
            a.name
        )),
        "{}",
        b.log
    );
    assert!(!b.log.contains("slipway: building "), "{}", b.log);
    // The hook pushed `main` (the engine's `docker build` may push an index: read any kind);
    // slipway pushed `v1` as the same image.
    let digest = b.digest(0);
    for t in ["main", "v1"] {
        let (d, _) = r
            .manifest(&a.path, t)
            .unwrap_or_else(|| panic!("{t} is missing"));
        assert_eq!(d, digest, "{t}");
    }
    remove_images(&[format!("{}:main", a.name), format!("{}:v1", a.name)]);
}

#[test]
fn a_build_override_that_leaves_no_image_fails_clearly_and_pushes_nothing() {
    let r = registry();
    let tmp = tempfile::tempdir().unwrap();
    let hooks = vec![("build", marker("build"))];
    let a = hooks_app(&r, tmp.path(), "hooks-noimage", &hooks, "no image");
    let b = slipway_build(
        tmp.path(),
        &r,
        "slipway-test",
        &a.repo,
        &plan(&a.commit, vec![image(&a, &["main"], &[])]),
        None,
    );
    assert!(!b.ok(), "{}", b.log);
    assert!(
        b.log.contains(&format!(
            "slipway: hooks/build succeeded but left no image {}:main in the engine: a build hook must build and tag $IMAGE_NAME",
            a.name
        )),
        "{}",
        b.log
    );
    assert_eq!(b.result["builds"][0]["status"], "FAILED");
    assert_eq!(r.manifest_digest(&a.path, "main"), None);
}
