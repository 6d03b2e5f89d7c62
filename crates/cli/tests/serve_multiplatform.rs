//! `slipway serve` building an image with two platforms from `slipway.toml`: one build and one
//! notification for the image (not one per platform), both carrying the manifest list's digest,
//! which every tag in the registry points at.
//!
//! Needs `source tests/services.sh start` (SLIPWAY_BUILD_NETWORK=host, SLIPWAY_TEST_BUSYBOX_ARM64).

use std::time::Duration;

use slipway_testkit::git::{commit_all, init, write};
use slipway_testkit::registry::{registry, remove_images};
use slipway_testkit::serve_setup;
use slipway_testkit::unique;

#[test]
fn a_two_platform_image_is_one_result_with_the_lists_digest() {
    let r = registry();
    let tmp = tempfile::tempdir().unwrap();
    let ns_path = unique("multi");
    let namespace = format!("{}/{ns_path}", r.host);
    let image = format!("{namespace}/app");

    let repo = tmp.path().join("site");
    init(&repo);
    std::fs::create_dir_all(repo.join("app")).unwrap();
    std::fs::copy(&r.busybox, repo.join("app/busybox-amd64")).unwrap();
    std::fs::copy(
        std::env::var("SLIPWAY_TEST_BUSYBOX_ARM64").expect("SLIPWAY_TEST_BUSYBOX_ARM64"),
        repo.join("app/busybox-arm64"),
    )
    .unwrap();
    write(&repo, "app/stamp.txt", &unique("serve-multi"));
    write(
        &repo,
        "app/Dockerfile",
        "FROM scratch\nARG TARGETARCH\nCOPY busybox-${TARGETARCH} /bin/busybox\nCOPY stamp.txt /stamp.txt\nRUN [\"/bin/busybox\", \"sh\", \"-c\", \"/bin/busybox uname -m > /arch.txt\"]\nCMD [\"/bin/busybox\", \"cat\", \"/arch.txt\"]\n",
    );
    write(
        &repo,
        "slipway.toml",
        "platforms = [\"linux/amd64\", \"linux/arm64\"]\n",
    );
    let commit = commit_all(&repo, "multi");

    let serve = serve_setup!(&r, tmp.path(), &ns_path, "");
    let server = serve.start(1);
    let answer = server.push(&repo, None, &commit, "multi-1");
    assert_eq!(answer["status"], "queued", "{answer}");
    let builds = server.wait_settled(1, Duration::from_secs(240));
    assert_eq!(builds.len(), 1, "one build per image: {builds:#?}");
    let b = &builds[0];
    assert_eq!(b["state"], "succeeded", "{b:#}\n{}", server.log());
    let digest = b["digest"].as_str().expect("a digest").to_string();

    for t in b["tags"].as_array().unwrap() {
        let t = t.as_str().unwrap();
        let (d, _, entries) = r.list_entries(&format!("{ns_path}/app"), t);
        assert_eq!(d, digest, "{image}:{t}");
        let platforms: Vec<&str> = entries.iter().map(|e| e.platform.as_str()).collect();
        assert_eq!(platforms, ["linux/amd64", "linux/arm64"]);
    }

    let events = server.events();
    let mine: Vec<_> = events
        .iter()
        .filter(|e| e["image"] == image.as_str())
        .collect();
    assert_eq!(mine.len(), 1, "one notification per image: {events:#?}");
    assert_eq!(mine[0]["digest"], digest.as_str(), "{:#}", mine[0]);
    assert_eq!(mine[0]["status"], "SUCCEEDED");

    let refs: Vec<String> = b["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| format!("{image}:{}", t.as_str().unwrap()))
        .collect();
    remove_images(&refs);
}
