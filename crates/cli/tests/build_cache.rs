//! The registry cache hits: a second push that changes one file of the context, built after
//! every local image and every build cache record of this test are gone (as on a fresh
//! CodeBuild host), takes every step before that file from the registry cache
//! (`<image>:buildcache-<branch>`), as BuildKit's own output says (`CACHED`). And the first
//! build of a new tag reads the default branch's cache.
//!
//! The engine's build cache is shared with everyone's tests (the `docker` driver has one), so
//! this test never prunes it wholesale: its Dockerfile's first step copies a file with a name
//! unique to the run, which makes every cache key below it unique too; the test removes exactly
//! the records whose description names that file and their descendants, by id. Another test's
//! records cannot match these keys, so a `CACHED` step can only come from the registry.
//!
//! Needs `source tests/services.sh start`; fails loudly without it.

mod buildkit_support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use buildkit_support::*;
use serde_json::{Value, json};
use slipway_testkit::git::{commit_all, git, init, write};
use slipway_testkit::registry::{Registry, registry, remove_images};
use slipway_testkit::unique;

const PLATFORMS: [&str; 2] = ["linux/amd64", "linux/arm64"];

fn dockerfile(marker: &str) -> String {
    format!(
        "FROM scratch
ARG TARGETARCH
COPY {marker} /marker.txt
COPY busybox-${{TARGETARCH}} /bin/busybox
RUN [\"/bin/busybox\", \"sh\", \"-c\", \"/bin/busybox sleep 1; /bin/busybox uname -m > /arch.txt\"]
COPY changing.txt /changing.txt
RUN [\"/bin/busybox\", \"sh\", \"-c\", \"/bin/busybox cat /changing.txt /arch.txt > /out.txt\"]
CMD [\"/bin/busybox\", \"cat\", \"/out.txt\"]
"
    )
}

/// The engine's build cache records: id → (parent, description).
fn cache_records() -> BTreeMap<String, (String, String)> {
    let out = Command::new("docker")
        .args(["system", "df", "-v", "--format", "{{json .BuildCache}}"])
        .output()
        .unwrap();
    assert!(out.status.success(), "docker system df failed");
    let records: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap_or_default();
    records
        .iter()
        .map(|r| {
            (
                r["ID"].as_str().unwrap_or_default().to_string(),
                (
                    r["Parent"].as_str().unwrap_or_default().to_string(),
                    r["Description"].as_str().unwrap_or_default().to_string(),
                ),
            )
        })
        .collect()
}

/// The records of this test: those naming `marker` (made by a step) or importing `first_layer`
/// (the marker's layer, taken from the registry cache), and everything built on them.
fn own_records(marker: &str, first_layer: &str) -> Vec<String> {
    let all = cache_records();
    let imported = format!("imported {first_layer}");
    let mut own: BTreeSet<String> = all
        .iter()
        .filter(|(_, (_, d))| d.contains(marker) || *d == imported)
        .map(|(id, _)| id.clone())
        .collect();
    loop {
        let more: Vec<String> = all
            .iter()
            .filter(|(id, (p, _))| own.contains(p) && !own.contains(*id))
            .map(|(id, _)| id.clone())
            .collect();
        if more.is_empty() {
            break;
        }
        own.extend(more);
    }
    own.into_iter().collect()
}

/// Removes this test's build cache records, and only those: one prune whose `id` filter (a
/// regular expression to the engine) is anchored to exactly these ids; BuildKit removes a parent
/// once its children are gone.
fn prune_own_cache(marker: &str, first_layer: &str) {
    let own = own_records(marker, first_layer);
    assert!(!own.is_empty(), "no build cache record names {marker}");
    let out = Command::new("docker")
        .args(["buildx", "prune", "--force", "--all", "--filter"])
        .arg(format!("id=^({})$", own.join("|")))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "prune: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        own_records(marker, first_layer).is_empty(),
        "records of {marker} are left"
    );
}

/// The image of the context `app` for `PLATFORMS`.
fn app_image(name: &str, commit: &str, tags: &[&str]) -> Value {
    image_json(
        name,
        "app",
        commit,
        tags,
        &[("platforms", json!(PLATFORMS))],
    )
}

fn build_ref(
    tmp: &Path,
    r: &Registry,
    repo: &Path,
    name: &str,
    git_ref: &str,
    commit: &str,
    tag: &str,
) -> (Build, u128) {
    let mut p = plan(commit, vec![app_image(name, commit, &[tag])]);
    p["ref"] = json!(git_ref);
    let t = Instant::now();
    let b = slipway_build_with(
        tmp,
        r,
        "slipway-test",
        repo,
        &p,
        None,
        &[("BUILDKIT_PROGRESS", "rawjson")],
    );
    let ms = t.elapsed().as_millis();
    assert!(b.ok(), "{}", b.log);
    (b, ms)
}

/// `(step, cached)` for the Dockerfile's five steps of both platforms: `[linux/amd64 2/5] COPY
/// ...`, and `[3/5] RUN ...` (BuildKit names `RUN` steps without the platform).
fn dockerfile_steps(log: &str) -> Vec<(String, bool)> {
    steps(log)
        .into_iter()
        .filter(|(s, _)| s.split(']').next().is_some_and(|b| b.ends_with("/5")))
        .collect()
}

/// The step number (`3/5`) of a step name.
fn number(step: &str) -> &str {
    step.split(']')
        .next()
        .and_then(|b| b.rsplit([' ', '[']).next())
        .unwrap_or_default()
}

#[test]
fn a_second_push_reuses_every_layer_before_the_changed_file_from_the_registry() {
    let r = registry();
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    init(&repo);
    let marker = format!("{}.txt", unique("cachemarker-"));
    let ctx = repo.join("app");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::copy(&r.busybox, ctx.join("busybox-amd64")).unwrap();
    std::fs::copy(
        std::env::var("SLIPWAY_TEST_BUSYBOX_ARM64").expect("SLIPWAY_TEST_BUSYBOX_ARM64"),
        ctx.join("busybox-arm64"),
    )
    .unwrap();
    write(&repo, &format!("app/{marker}"), &marker);
    write(&repo, "app/Dockerfile", &dockerfile(&marker));
    write(&repo, "app/changing.txt", "one\n");
    let first_commit = commit_all(&repo, "first");
    let path = unique("slipway-test/cache");
    let name = format!("{}/{path}", r.host);

    let (first, first_ms) = build_ref(
        tmp.path(),
        &r,
        &repo,
        &name,
        "refs/heads/main",
        &first_commit,
        "main",
    );
    let cold = dockerfile_steps(&first.log);
    assert_eq!(
        cold.len(),
        10,
        "5 steps per platform: {cold:?}\n{}",
        first.log
    );
    // Cold: nothing cached, except that BuildKit makes the first step (the same file on the same
    // empty base for both platforms) once and reports the other platform's as `CACHED`.
    let cold_hits: Vec<_> = cold.iter().filter(|(_, c)| *c).collect();
    assert!(
        cold_hits.len() <= 1 && cold_hits.iter().all(|(s, _)| number(s) == "1/5"),
        "a cold build hit a cache: {cold:?}"
    );
    assert!(
        r.manifest(&path, "buildcache-main").is_some(),
        "the cache was not written"
    );

    // The marker's layer, first in every entry: records imported from the cache start there.
    let (_, _, entries) = r.list_entries(&path, "main");
    let first_layer = entries[0].layers[0].clone();
    assert!(entries.iter().all(|e| e.layers[0] == first_layer));

    // A fresh machine: no local image, none of this test's build cache.
    remove_images(&[format!("{name}:main")]);
    prune_own_cache(&marker, &first_layer);

    write(&repo, "app/changing.txt", "two\n");
    let second_commit = commit_all(&repo, "second");
    let (second, second_ms) = build_ref(
        tmp.path(),
        &r,
        &repo,
        &name,
        "refs/heads/main",
        &second_commit,
        "main",
    );
    assert!(
        second.log.contains(&format!(
            "importing cache manifest from {name}:buildcache-main"
        )),
        "{}",
        second.log
    );
    let warm = dockerfile_steps(&second.log);
    assert_eq!(warm.len(), 10, "{warm:?}");
    for (step, cached) in &warm {
        let before_change = ["1/5", "2/5", "3/5"].contains(&number(step));
        assert_eq!(
            *cached, before_change,
            "{step}: cached {cached}\n{}",
            second.log
        );
    }
    let hits = warm.iter().filter(|(_, c)| *c).count();
    eprintln!(
        "registry cache: first build {first_ms} ms ({}/10 steps cached), second build {second_ms} ms ({hits}/10 steps cached)",
        cold_hits.len()
    );

    // The first build of a new tag: no cache of its own, it reads the default branch's.
    remove_images(&[format!("{name}:main")]);
    prune_own_cache(&marker, &first_layer);
    write(&repo, "app/changing.txt", "three\n");
    let release_commit = commit_all(&repo, "release");
    git(&repo, &["tag", "v1.0.0"]);
    let (third, _) = build_ref(
        tmp.path(),
        &r,
        &repo,
        &name,
        "refs/tags/v1.0.0",
        &release_commit,
        "1.0.0",
    );
    let hits: Vec<_> = dockerfile_steps(&third.log)
        .into_iter()
        .filter(|(_, c)| *c)
        .collect();
    assert_eq!(hits.len(), 6, "{hits:?}\n{}", third.log);
    assert!(
        third.log.contains(&format!(
            "importing cache manifest from {name}:buildcache-main"
        )),
        "{}",
        third.log
    );
    remove_images(&[format!("{name}:main"), format!("{name}:1.0.0")]);
    prune_own_cache(&marker, &first_layer);
}
