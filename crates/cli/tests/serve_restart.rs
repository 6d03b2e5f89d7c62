//! `slipway serve` killed with SIGKILL while a build runs and jobs wait: after a restart on the
//! same data directory every job completes, exactly once.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::Value;
use slipway_testkit::git::{commit_all, init, write};
use slipway_testkit::registry::{busybox_dockerfile, registry};
use slipway_testkit::serve_setup;
use slipway_testkit::unique;

#[test]
fn after_sigkill_and_restart_every_job_completes_exactly_once() {
    let r = registry();
    let tmp = tempfile::tempdir().unwrap();
    let ns_path = unique("restart");

    // Two independent images, each with a slow step, so that one runs while the other waits.
    let repo = tmp.path().join("site");
    init(&repo);
    for name in ["one", "two"] {
        r.busybox_context(&repo, name, &busybox_dockerfile(4, ""));
    }
    let c1 = commit_all(&repo, "two slow images");
    write(&repo, "two/stamp.txt", &unique("two-again"));
    let c2 = commit_all(&repo, "change two");

    // One build at a time: the second image and the second job wait in the queue.
    let serve = serve_setup!(
        &r,
        tmp.path(),
        &ns_path,
        "concurrency = 1\ncancel_superseded = false"
    );
    let mut server = serve.start(1);
    assert_eq!(
        server.push(&repo, None, &c1, "restart-1")["status"],
        "queued"
    );

    // Kill while the first build runs.
    let t = Instant::now();
    loop {
        let b = server.builds();
        if b.iter().any(|x| x["state"] == "running") {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "no build started: {b:#?}\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(1500));
    // A second job is accepted (committed before the 202) and the server is killed at once.
    assert_eq!(
        server.push(&repo, Some(&c1), &c2, "restart-2")["status"],
        "queued"
    );
    server.kill();
    let first_events = server.events();
    assert!(
        first_events.is_empty(),
        "a build finished before the kill; the test must kill during a build: {first_events:#?}"
    );

    // Restart on the same data directory: the interrupted build runs again, the rest once.
    let mut server = serve.start(2);
    let builds = server.wait_settled(3, Duration::from_secs(300));
    let mut per_job_image: BTreeMap<(String, String), Vec<&Value>> = BTreeMap::new();
    for b in &builds {
        per_job_image
            .entry((
                b["job_id"].as_str().unwrap().into(),
                b["image"].as_str().unwrap().into(),
            ))
            .or_default()
            .push(b);
    }
    assert_eq!(per_job_image.len(), 3, "{builds:#?}");
    for ((job, image), list) in &per_job_image {
        assert_eq!(
            list.len(),
            1,
            "{job} built {image} more than once: {list:#?}"
        );
        assert_eq!(
            list[0]["state"],
            "succeeded",
            "{:#}\n{}",
            list[0],
            server.log()
        );
    }
    let attempts: Vec<i64> = builds
        .iter()
        .map(|b| b["attempts"].as_i64().unwrap())
        .collect();
    assert_eq!(
        attempts.iter().filter(|&&a| a == 2).count(),
        1,
        "exactly the interrupted build runs a second time: {builds:#?}"
    );
    assert!(attempts.iter().all(|&a| a == 1 || a == 2), "{attempts:?}");
    let log = server.log();
    assert!(log.contains("queued again"), "{log}");
    let interrupted = builds.iter().find(|b| b["attempts"] == 2).unwrap();
    let (_, text) = server.get(&format!("/builds/{}/log", interrupted["id"]));
    assert!(text.contains("interrupted by a stop"), "{text}");

    // One notification per build, none twice.
    let events = server.events();
    assert_eq!(events.len(), 3, "{events:#?}");

    // A redelivery after the restart queues nothing new; a third start runs nothing again.
    assert_eq!(
        server.push(&repo, Some(&c1), &c2, "restart-2")["status"],
        "duplicate"
    );
    server.kill();
    let server = serve.start(3);
    std::thread::sleep(Duration::from_secs(3));
    let after = server.builds();
    assert_eq!(after.len(), 3);
    assert!(
        after.iter().all(|b| b["state"] == "succeeded"),
        "{after:#?}"
    );
    assert!(server.events().is_empty(), "a third start ran builds again");
}
