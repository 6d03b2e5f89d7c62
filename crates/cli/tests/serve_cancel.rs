//! `cancel_superseded`: a newer push to a ref cancels the queued builds of the same images from
//! older pushes; the running one finishes, and the newer push builds everything it changed.

use std::time::{Duration, Instant};

use serde_json::Value;
use slipway_testkit::git::{commit_all, init, write};
use slipway_testkit::registry::{busybox_dockerfile, registry};
use slipway_testkit::serve_setup;
use slipway_testkit::unique;

#[test]
fn a_newer_push_cancels_queued_builds_of_the_same_images() {
    let r = registry();
    let tmp = tempfile::tempdir().unwrap();
    let ns_path = unique("cancel");
    let repo = tmp.path().join("site");
    init(&repo);
    for name in ["one", "two"] {
        r.busybox_context(&repo, name, &busybox_dockerfile(3, ""));
    }
    let c1 = commit_all(&repo, "two images");
    let serve = serve_setup!(
        &r,
        tmp.path(),
        &ns_path,
        "concurrency = 1\ncancel_superseded = true"
    );
    let server = serve.start(1);
    let first = server.push(&repo, None, &c1, "cancel-1");
    let t = Instant::now();
    while !server.builds().iter().any(|b| b["state"] == "running") {
        assert!(t.elapsed() < Duration::from_secs(60), "{}", server.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    for name in ["one", "two"] {
        write(&repo, &format!("{name}/stamp.txt"), &unique(name));
    }
    let c2 = commit_all(&repo, "change both");
    let second = server.push(&repo, Some(&c1), &c2, "cancel-2");
    let builds = server.wait_settled(4, Duration::from_secs(240));
    assert_eq!(builds.len(), 4, "{builds:#?}");
    let of = |job: &Value| -> Vec<&Value> {
        builds
            .iter()
            .filter(|b| b["job_id"] == job["job_id"])
            .collect()
    };
    let old = of(&first);
    let mut states: Vec<&str> = old.iter().map(|b| b["state"].as_str().unwrap()).collect();
    states.sort();
    assert_eq!(states, ["cancelled", "succeeded"], "{old:#?}");
    let cancelled = old.iter().find(|b| b["state"] == "cancelled").unwrap();
    assert!(
        cancelled["error"].as_str().unwrap().contains("superseded"),
        "{cancelled:#}"
    );
    assert_eq!(cancelled["attempts"], 0, "a cancelled build never ran");
    let new = of(&second);
    assert_eq!(new.len(), 2);
    assert!(
        new.iter()
            .all(|b| b["state"] == "succeeded" && b["commit"] == c2.as_str()),
        "{new:#?}"
    );
    let events = server.events();
    assert!(
        events.iter().any(|e| e["state"] == "cancelled"
            && e["status"] == "STOPPED"
            && e["build_id"] == cancelled["id"].to_string().as_str()),
        "{events:#?}"
    );
}
