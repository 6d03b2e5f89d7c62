//! Multi-platform images with the shipped buildspec on the real engine (BuildKit, containerd
//! image store, arm64 through QEMU) and the htpasswd registry of `tests/services.sh`: one
//! manifest list per tag, each entry the right architecture, parents' platforms under their
//! children's, provenance only when asked for, and CodeBuild's per-platform builds merged.
//!
//! Needs `source tests/services.sh start` (which also sets SLIPWAY_BUILD_NETWORK=host: the
//! engine has no bridge) and SLIPWAY_TEST_BUSYBOX_ARM64; fails loudly without them.

mod buildkit_support;

use std::path::{Path, PathBuf};
use std::process::Command;

use buildkit_support::*;
use serde_json::json;
use slipway_testkit::git::{commit_all, init, write};
use slipway_testkit::registry::{Registry, registry, remove_images};
use slipway_testkit::unique;

fn arm64_busybox() -> PathBuf {
    let p = std::env::var("SLIPWAY_TEST_BUSYBOX_ARM64").unwrap_or_else(|_| {
        panic!("SLIPWAY_TEST_BUSYBOX_ARM64 is not set: run `source tests/services.sh start`")
    });
    PathBuf::from(p)
}

/// A context holding busybox for both architectures, picked by BuildKit's `TARGETARCH`.
fn busyboxes(r: &Registry, ctx: &Path) {
    std::fs::create_dir_all(ctx).unwrap();
    std::fs::copy(&r.busybox, ctx.join("busybox-amd64")).unwrap();
    std::fs::copy(arm64_busybox(), ctx.join("busybox-arm64")).unwrap();
}

/// Prints the machine the image's `RUN` step ran on, then the machine it runs on.
const ARCH_DOCKERFILE: &str = "FROM scratch
ARG TARGETARCH
COPY busybox-${TARGETARCH} /bin/busybox
COPY unique.txt /unique.txt
RUN [\"/bin/busybox\", \"sh\", \"-c\", \"/bin/busybox uname -m > /built-on.txt\"]
CMD [\"/bin/busybox\", \"sh\", \"-c\", \"/bin/busybox cat /built-on.txt; /bin/busybox uname -m\"]
";

/// The image of `context` for both platforms.
fn image_both(name: &str, context: &str, commit: &str, tags: &[&str]) -> serde_json::Value {
    image_json(
        name,
        context,
        commit,
        tags,
        &[("platforms", json!(["linux/amd64", "linux/arm64"]))],
    )
}

/// A repository with one context `app` (both busyboxes, `dockerfile`, a unique file) committed,
/// and a unique image name in the test registry.
fn busybox_app(r: &Registry, dir: &Path, dockerfile: &str, label: &str) -> App {
    app(r, dir, label, "app", |repo| {
        busyboxes(r, &repo.join("app"));
        write(repo, "app/Dockerfile", dockerfile);
    })
}

fn local_refs(name: &str, tags: &[&str]) -> Vec<String> {
    tags.iter().map(|t| format!("{name}:{t}")).collect()
}

#[test]
fn an_amd64_and_arm64_image_is_one_manifest_list_under_every_tag() {
    let r = registry();
    let tmp = tempfile::tempdir().unwrap();
    let App {
        repo,
        commit,
        path,
        name,
    } = busybox_app(&r, tmp.path(), ARCH_DOCKERFILE, "multi");
    let short = format!("sha-{}", &commit[..7]);
    let tags = ["main", short.as_str(), "latest"];

    let b = slipway_build(
        tmp.path(),
        &r,
        "slipway-test",
        &repo,
        &plan(&commit, vec![image_both(&name, "app", &commit, &tags)]),
        None,
    );
    assert!(b.ok(), "{}", b.log);
    let digest = b.digest(0);
    assert!(
        b.log.contains("building") && b.log.contains("linux/amd64,linux/arm64"),
        "{}",
        b.log
    );

    for t in tags {
        let (d, list, entries) = r.list_entries(&path, t);
        assert_eq!(d, digest, "tag {t}: the exported digest is the list's");
        let platforms: Vec<&str> = entries.iter().map(|e| e.platform.as_str()).collect();
        // No provenance unless asked for: no `unknown/unknown` attestation entry.
        assert_eq!(platforms, ["linux/amd64", "linux/arm64"], "{list}");
        for e in &entries {
            assert_eq!(e.config_platform, e.platform, "config of {}", e.digest);
        }
    }

    // What users get: each platform runs its own binary, the arm64 one under QEMU here.
    remove_images(&local_refs(&name, &tags));
    let cfg = r.docker_config(tmp.path());
    let reference = format!("{name}:main");
    assert_eq!(
        run_image("linux/arm64", &reference, &cfg),
        "aarch64\naarch64"
    );
    assert_eq!(run_image("linux/amd64", &reference, &cfg), "x86_64\nx86_64");
    remove_images(&local_refs(&name, &tags));
}

#[test]
fn a_child_is_built_on_its_parents_entry_of_the_same_platform() {
    let r = registry();
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    init(&repo);
    let ns = unique("slipway-test/family");
    let base = format!("{}/{ns}/base", r.host);
    busyboxes(&r, &repo.join("base"));
    write(&repo, "base/Dockerfile", ARCH_DOCKERFILE);
    write(&repo, "base/unique.txt", &unique("base"));
    write(
        &repo,
        "app/Dockerfile",
        &format!(
            "FROM {base}:main\nCOPY hello.txt /hello.txt\nRUN [\"/bin/busybox\", \"sh\", \"-c\", \"/bin/busybox uname -m > /app-built-on.txt\"]\nCMD [\"/bin/busybox\", \"cat\", \"/built-on.txt\", \"/app-built-on.txt\"]\n"
        ),
    );
    write(&repo, "app/hello.txt", "hello\n");
    write(
        &repo,
        "slipway.toml",
        "platforms = [\"linux/amd64\", \"linux/arm64\"]\n",
    );
    let commit = commit_all(&repo, "family");

    // The real planner, from slipway.toml: both images get both platforms, base first.
    let planned = Command::new(env!("CARGO_BIN_EXE_slipway"))
        .args(["plan", "--repo"])
        .arg(&repo)
        .args(["--before", &"0".repeat(40), "--after", &commit])
        .args(["--ref", "refs/heads/main", "--namespace"])
        .arg(format!("{}/{ns}", r.host))
        .output()
        .unwrap();
    assert!(
        planned.status.success(),
        "{}",
        String::from_utf8_lossy(&planned.stderr)
    );
    let plan_json: serde_json::Value = serde_json::from_slice(&planned.stdout).unwrap();
    let names: Vec<&str> = plan_json["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    let app = format!("{}/{ns}/app", r.host);
    assert_eq!(names, [base.as_str(), app.as_str()]);
    for i in plan_json["images"].as_array().unwrap() {
        assert_eq!(i["platforms"], json!(["linux/amd64", "linux/arm64"]));
    }

    let b = slipway_build(tmp.path(), &r, "slipway-test", &repo, &plan_json, None);
    assert!(b.ok(), "{}", b.log);
    let path_of = |n: &str| n.strip_prefix(&format!("{}/", r.host)).unwrap().to_string();
    let (_, _, parent) = r.list_entries(&path_of(&base), "main");
    let (child_digest, _, child) = r.list_entries(&path_of(&app), "main");
    assert_eq!(child_digest, b.digest(1));
    for (p, c) in parent.iter().zip(&child) {
        assert_eq!(p.platform, c.platform);
        assert_eq!(c.config_platform, c.platform);
        // The child's layers start with exactly its platform's parent layers.
        assert_eq!(
            &c.layers[..p.layers.len()],
            &p.layers[..],
            "{} child not built on the {} parent",
            c.platform,
            p.platform
        );
    }
    assert_ne!(parent[0].layers, parent[1].layers);

    let tags: Vec<String> = plan_json["images"][0]["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_string())
        .collect();
    let mut locals = Vec::new();
    for n in [&base, &app] {
        for t in &tags {
            locals.push(format!("{n}:{t}"));
        }
    }
    remove_images(&locals);
    let cfg = r.docker_config(tmp.path());
    assert_eq!(
        run_image("linux/arm64", &format!("{app}:main"), &cfg),
        "aarch64\naarch64"
    );
    remove_images(&locals);
}

#[test]
fn a_platform_that_fails_fails_the_image_and_pushes_nothing() {
    let r = registry();
    let tmp = tempfile::tempdir().unwrap();
    // Fails on arm64 only.
    let App {
        repo,
        commit,
        path,
        name,
    } = busybox_app(
        &r,
        tmp.path(),
        "FROM scratch\nARG TARGETARCH\nCOPY busybox-${TARGETARCH} /bin/busybox\nCOPY unique.txt /unique.txt\nRUN [\"/bin/busybox\", \"sh\", \"-c\", \"test \\\"$(/bin/busybox uname -m)\\\" != aarch64\"]\n",
        "armfails",
    );
    let b = slipway_build(
        tmp.path(),
        &r,
        "slipway-test",
        &repo,
        &plan(&commit, vec![image_both(&name, "app", &commit, &["main"])]),
        None,
    );
    assert!(!b.ok(), "{}", b.log);
    assert_eq!(b.result["builds"][0]["status"], "FAILED");
    assert!(
        b.result["builds"][0]["error"]
            .as_str()
            .unwrap()
            .starts_with("BUILD"),
        "{}",
        b.result
    );
    assert!(b.log.contains("linux/arm64"), "{}", b.log);
    assert!(r.manifest(&path, "main").is_none(), "a tag was pushed");
    assert!(b.result["builds"][0]["exported"]["SLIPWAY_DIGEST"].is_null());
}

#[test]
fn provenance_is_attached_only_when_asked_for() {
    let r = registry();
    let tmp = tempfile::tempdir().unwrap();
    let App {
        repo,
        commit,
        path,
        name,
    } = busybox_app(&r, tmp.path(), ARCH_DOCKERFILE, "prov");
    let mut image = image_both(&name, "app", &commit, &["main"]);
    image["attestations"] = json!(["provenance"]);
    let b = slipway_build(
        tmp.path(),
        &r,
        "slipway-test",
        &repo,
        &plan(&commit, vec![image]),
        None,
    );
    assert!(b.ok(), "{}", b.log);
    let (d, list) = r.manifest(&path, "main").expect("the tag exists");
    assert_eq!(d, b.digest(0));
    let manifests = list["manifests"].as_array().unwrap();
    let attestations: Vec<_> = manifests
        .iter()
        .filter(|m| m["annotations"]["vnd.docker.reference.type"] == "attestation-manifest")
        .collect();
    // One provenance per platform, each pointing at its image.
    assert_eq!(attestations.len(), 2, "{list}");
    for a in attestations {
        assert_eq!(a["platform"]["architecture"], "unknown");
        let target = a["annotations"]["vnd.docker.reference.digest"]
            .as_str()
            .unwrap();
        assert!(manifests.iter().any(|m| m["digest"] == target));
    }
    remove_images(&local_refs(&name, &["main"]));
}

/// CodeBuild's native path, run here on one engine: the buildspec's `platform` part for each
/// platform (pushed by digest, no tag), then its `merge` part, with the variables a batch's
/// build graph gives each build.
#[test]
fn per_platform_builds_are_merged_into_one_list_and_keep_their_own_caches() {
    let r = registry();
    let tmp = tempfile::tempdir().unwrap();
    let App {
        repo,
        commit,
        path,
        name,
    } = busybox_app(&r, tmp.path(), ARCH_DOCKERFILE, "parts");
    let tags = ["main", "latest"];
    let the_plan = plan(&commit, vec![image_both(&name, "app", &commit, &tags)]);

    let mut digests = Vec::new();
    for platform in ["linux/amd64", "linux/arm64"] {
        let spec = buildspec_with(
            tmp.path(),
            &unique("platform-buildspec"),
            &[
                ("SLIPWAY_BUILD_PART", "platform"),
                ("SLIPWAY_PART_PLATFORM", platform),
            ],
        );
        let b = slipway_build(
            tmp.path(),
            &r,
            "slipway-test",
            &repo,
            &the_plan,
            Some(&spec),
        );
        assert!(b.ok(), "{platform}: {}", b.log);
        // Nothing users pull exists until the merge.
        assert!(r.manifest(&path, "main").is_none());
        let d = b.digest(0);
        let (_, m) = r.manifest(&path, &d).expect("pushed by digest");
        let config = r.blob(&path, m["config"]["digest"].as_str().unwrap());
        assert_eq!(
            format!(
                "{}/{}",
                config["os"].as_str().unwrap(),
                config["architecture"].as_str().unwrap()
            ),
            platform
        );
        // The platform's own cache reference.
        let cache_tag = format!("buildcache-main-{}", platform.replace('/', "-"));
        assert!(
            r.manifest(&path, &cache_tag).is_some(),
            "no cache {cache_tag}"
        );
        digests.push(d);
    }

    let spec = buildspec_with(
        tmp.path(),
        "merge-buildspec",
        &[
            ("SLIPWAY_BUILD_PART", "merge"),
            ("SLIPWAY_PLATFORM_DIGESTS", &digests.join(" ")),
        ],
    );
    let b = slipway_build(
        tmp.path(),
        &r,
        "slipway-test",
        &repo,
        &the_plan,
        Some(&spec),
    );
    assert!(b.ok(), "{}", b.log);
    let list_digest = b.digest(0);
    for t in tags {
        let (d, _, entries) = r.list_entries(&path, t);
        assert_eq!(d, list_digest, "{t}");
        let platforms: Vec<&str> = entries.iter().map(|e| e.platform.as_str()).collect();
        assert_eq!(platforms, ["linux/amd64", "linux/arm64"]);
        let entry_digests: Vec<&str> = entries.iter().map(|e| e.digest.as_str()).collect();
        assert_eq!(entry_digests, digests);
    }
    let cfg = r.docker_config(tmp.path());
    assert_eq!(
        run_image("linux/arm64", &format!("{name}:latest"), &cfg),
        "aarch64\naarch64"
    );
    remove_images(&local_refs(&name, &tags));

    // A merge that does not get one image per platform pushes nothing.
    let spec = buildspec_with(
        tmp.path(),
        "bad-merge-buildspec",
        &[
            ("SLIPWAY_BUILD_PART", "merge"),
            ("SLIPWAY_PLATFORM_DIGESTS", &digests[0]),
        ],
    );
    let mut other = the_plan.clone();
    other["images"][0]["tags"] = json!(["other"]);
    let b = slipway_build(tmp.path(), &r, "slipway-test", &repo, &other, Some(&spec));
    assert!(!b.ok());
    assert!(
        b.log
            .contains("merging needs one image per platform (2), found 1"),
        "{}",
        b.log
    );
    assert!(r.manifest(&path, "other").is_none());
}
