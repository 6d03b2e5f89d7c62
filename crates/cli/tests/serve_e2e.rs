//! The whole pipeline with nothing faked: a git repository with a parent and a child image,
//! `slipway serve` with the real Docker engine and the htpasswd registry on 127.0.0.1, pushes
//! sent as signed webhooks by `slipway replay`.

use std::time::Duration;

use serde_json::Value;
use slipway_testkit::git::{commit_all, init, write};
use slipway_testkit::registry::{busybox_dockerfile, docker, registry};
use slipway_testkit::serve_setup;
use slipway_testkit::unique;

fn by_image<'a>(builds: &'a [Value], image: &str) -> Vec<&'a Value> {
    builds.iter().filter(|b| b["image"] == image).collect()
}

#[test]
fn a_push_becomes_images_in_the_registry_parents_first_and_only_what_changed() {
    let r = registry();
    let tmp = tempfile::tempdir().unwrap();
    let ns_path = unique("e2e");
    let namespace = format!("{}/{ns_path}", r.host);
    let base = format!("{namespace}/base");
    let app = format!("{namespace}/app");

    // A repository: `base` (busybox) and `app`, built FROM base.
    let repo = tmp.path().join("site");
    init(&repo);
    r.busybox_context(&repo, "base", &busybox_dockerfile(1, ""));
    write(
        &repo,
        "app/Dockerfile",
        &format!(
            "FROM {base}:main\nCOPY hello.txt /hello.txt\nCMD [\"/bin/busybox\", \"cat\", \"/hello.txt\"]\n"
        ),
    );
    write(&repo, "app/hello.txt", "hello 1\n");
    let c1 = commit_all(&repo, "two images");

    let serve = serve_setup!(&r, tmp.path(), &ns_path, "concurrency = 2");
    let server = serve.start(1);

    // 1. The first push builds both, the parent first.
    let answer = server.push(&repo, None, &c1, "delivery-1");
    assert_eq!(answer["status"], "queued", "{answer}");
    assert_eq!(answer["commit"], c1.as_str());
    let builds = server.wait_settled(2, Duration::from_secs(240));
    assert_eq!(builds.len(), 2, "{builds:#?}");
    let (b, a) = (by_image(&builds, &base)[0], by_image(&builds, &app)[0]);
    for x in [b, a] {
        assert_eq!(x["state"], "succeeded", "{x:#}\n{}", server.log());
        assert_eq!(x["commit"], c1.as_str());
        assert_eq!(x["attempts"], 1);
    }
    assert!(
        b["finished_ms"].as_i64().unwrap() <= a["started_ms"].as_i64().unwrap(),
        "the child started before its parent finished: {b:#} {a:#}"
    );
    let short = format!("sha-{}", &c1[..7]);
    let tags = ["main", "latest", short.as_str()];
    let pull_config = r.docker_config(tmp.path());
    for (x, path) in [
        (b, format!("{ns_path}/base")),
        (a, format!("{ns_path}/app")),
    ] {
        let listed: Vec<&str> = x["tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap())
            .collect();
        assert_eq!(listed, tags, "planned tags");
        let digest = x["digest"].as_str().expect("a digest").to_string();
        for t in tags {
            assert_eq!(
                r.manifest_digest(&path, t).as_deref(),
                Some(digest.as_str()),
                "{path}:{t} in the registry"
            );
        }
        // Pullable, with the commit in its labels.
        let reference = format!("{}:{short}", x["image"].as_str().unwrap());
        let _ = docker(&["rmi", "--force", &reference], None);
        let pulled = docker(&["pull", "--quiet", &reference], Some(&pull_config));
        assert!(
            pulled.status.success(),
            "pull {reference}: {}",
            String::from_utf8_lossy(&pulled.stderr)
        );
        let labels = docker(
            &[
                "image",
                "inspect",
                "--format",
                "{{json .Config.Labels}}",
                &reference,
            ],
            None,
        );
        let labels: Value = serde_json::from_slice(&labels.stdout).unwrap();
        assert_eq!(
            labels["org.opencontainers.image.revision"],
            c1.as_str(),
            "{reference}"
        );
    }

    // History and logs over HTTP.
    let id = b["id"].as_i64().unwrap();
    let one = server.get_json(&format!("/builds/{id}"));
    assert_eq!(one["image"], base.as_str());
    assert_eq!(one["digest"], b["digest"]);
    assert_eq!(one["job"]["state"], "done");
    assert!(
        one["outcome"]["phases"].as_array().unwrap().len() >= 4,
        "{one:#}"
    );
    let (code, log) = server.get(&format!("/builds/{id}/log"));
    assert_eq!(code, 200);
    assert!(log.contains("built and pushed"), "{log}");
    assert!(
        !log.contains(&r.password),
        "the registry password is in the log"
    );
    let (code, svg) = server.get(&format!("/badge/{app}.svg"));
    assert_eq!(code, 200);
    assert!(svg.contains("passing"), "{svg}");
    let (code, body) = server.get("/builds/999999");
    assert_eq!(code, 404, "{body}");
    assert!(body.contains("build_not_found"));

    // 2. A push touching only the child rebuilds only the child.
    write(&repo, "app/hello.txt", "hello 2\n");
    let c2 = commit_all(&repo, "child only");
    let answer = server.push(&repo, Some(&c1), &c2, "delivery-2");
    assert_eq!(answer["status"], "queued", "{answer}");
    let builds = server.wait_settled(3, Duration::from_secs(240));
    let new: Vec<&Value> = builds
        .iter()
        .filter(|x| x["commit"] == c2.as_str())
        .collect();
    assert_eq!(new.len(), 1, "{builds:#?}");
    assert_eq!(new[0]["image"], app.as_str());
    assert_eq!(new[0]["state"], "succeeded", "{}", server.log());
    assert_eq!(by_image(&builds, &base).len(), 1, "the parent was rebuilt");

    // A redelivery of the same webhook builds nothing.
    let again = server.push(&repo, Some(&c1), &c2, "delivery-2");
    assert_eq!(again["status"], "duplicate", "{again}");

    // 3. A push breaking the parent reports the failure and skips the child.
    write(
        &repo,
        "base/Dockerfile",
        &busybox_dockerfile(0, "RUN [\"/bin/busybox\", \"false\"]\n"),
    );
    let c3 = commit_all(&repo, "break the parent");
    server.push(&repo, Some(&c2), &c3, "delivery-3");
    let builds = server.wait_settled(5, Duration::from_secs(240));
    let new: Vec<&Value> = builds
        .iter()
        .filter(|x| x["commit"] == c3.as_str())
        .collect();
    assert_eq!(new.len(), 2, "{builds:#?}");
    let fb = new.iter().find(|x| x["image"] == base.as_str()).unwrap();
    let sa = new.iter().find(|x| x["image"] == app.as_str()).unwrap();
    assert_eq!(fb["state"], "failed", "{fb:#}");
    assert_eq!(sa["state"], "skipped", "{sa:#}");
    assert!(sa["error"].as_str().unwrap().contains("failed"), "{sa:#}");
    let (_, svg) = server.get(&format!("/badge/{base}.svg"));
    assert!(svg.contains("failing"), "{svg}");
    // The registry still serves the last good parent.
    assert_eq!(
        r.manifest_digest(&format!("{ns_path}/base"), "main")
            .as_deref(),
        b["digest"].as_str()
    );

    // The notifications: one per finished build, with its status.
    let events = server.events();
    let statuses: Vec<(String, String)> = events
        .iter()
        .map(|e| {
            (
                e["image"].as_str().unwrap().to_string(),
                e["state"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        statuses,
        [
            (base.clone(), "succeeded".into()),
            (app.clone(), "succeeded".into()),
            (app.clone(), "succeeded".into()),
            (base.clone(), "failed".into()),
            (app.clone(), "skipped".into()),
        ],
        "{events:#?}"
    );
    // The failed parent's notification names the child it leaves unbuilt; the first success
    // queued none (the child was in its own push).
    assert_eq!(
        events[3]["subject"],
        format!("✘ {base}:main failed"),
        "{:#}",
        events[3]
    );
    assert_eq!(
        events[3]["children"]["skipped"],
        serde_json::json!([app]),
        "{:#}",
        events[3]
    );
    assert_eq!(
        events[0]["children"]["queued"],
        serde_json::json!([]),
        "{:#}",
        events[0]
    );
    assert_eq!(
        events[4]["failed_phase"]["status"], "SKIPPED",
        "{:#}",
        events[4]
    );
    for t in tags {
        let _ = docker(&["rmi", "--force", &format!("{base}:{t}")], None);
        let _ = docker(&["rmi", "--force", &format!("{app}:{t}")], None);
    }
}
