//! `slipway serve` runs Docker Hub's `hooks/` like CodeBuild and `slipway build` do (the same
//! buildspec): a pushed repository's hooks run at their phases, with Docker Hub's variables, and
//! their output is in the build's log over HTTP, without the registry password.
//!
//! Needs `source tests/services.sh start` (SLIPWAY_BUILD_NETWORK=host); fails loudly without it.

use std::time::Duration;

use slipway_testkit::git::{commit_all, init, write};
use slipway_testkit::registry::{registry, remove_images};
use slipway_testkit::{serve_setup, unique};

#[test]
fn a_pushed_repositorys_hooks_run_under_serve() {
    let r = registry();
    let tmp = tempfile::tempdir().unwrap();
    let ns_path = unique("hooks");
    let namespace = format!("{}/{ns_path}", r.host);
    let image = format!("{namespace}/app");

    let repo = tmp.path().join("site");
    init(&repo);
    write(
        &repo,
        "app/Dockerfile",
        "FROM scratch\nCOPY stamp.txt /stamp.txt\n",
    );
    write(&repo, "app/stamp.txt", &unique("serve-hooks"));
    for phase in ["pre_build", "post_push"] {
        write(
            &repo,
            &format!("app/hooks/{phase}"),
            &format!(
                "echo \"hook-marker {phase} $SOURCE_BRANCH $IMAGE_NAME password=${{SLIPWAY_REGISTRY_PASSWORD:-unset}}\"\n"
            ),
        );
    }
    let commit = commit_all(&repo, "hooks");

    let serve = serve_setup!(&r, tmp.path(), &ns_path, "");
    let server = serve.start(1);
    let answer = server.push(&repo, None, &commit, "hooks-1");
    assert_eq!(answer["status"], "queued", "{answer}");
    let builds = server.wait_settled(1, Duration::from_secs(180));
    let b = &builds[0];
    assert_eq!(b["state"], "succeeded", "{b:#}\n{}", server.log());
    let id = b["id"].as_i64().unwrap();
    let (code, log) = server.get(&format!("/builds/{id}/log"));
    assert_eq!(code, 200);
    let first_tag = b["tags"][0].as_str().unwrap();
    let markers: Vec<&str> = log
        .lines()
        .filter_map(|l| l.strip_prefix("hook-marker "))
        .collect();
    assert_eq!(
        markers,
        [
            format!("pre_build main {image}:{first_tag} password=unset"),
            format!("post_push main {image}:{first_tag} password=unset"),
        ],
        "{log}"
    );
    assert!(
        !log.contains(&r.password),
        "the registry password is in the log"
    );

    let refs: Vec<String> = b["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| format!("{image}:{}", t.as_str().unwrap()))
        .collect();
    remove_images(&refs);
}
