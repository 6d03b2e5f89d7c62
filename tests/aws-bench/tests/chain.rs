//! The AWS pipeline as one, on the bench: a signed API Gateway event → listener → SQS → spawner
//! → CodeBuild (the buildspec run for real) → images in the registry → EventBridge → notifier →
//! SNS, commit statuses, the child image after its parent → the weekly cleanup; then the same
//! delivery an hour later queues nothing. Each hop's cargo is asserted.
//!
//! Needs `source tests/services.sh start` (moto, the engine, the registry) and the four Lambda
//! binaries (`bash tests/aws-bench/run` builds them; `cargo test --workspace` does too).

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};
use slipway_aws_bench::{Bench, GITHUB_TOKEN};

const SETTLE: Duration = Duration::from_secs(300);

fn tags_of(env: &BTreeMap<String, String>) -> Vec<String> {
    env["SLIPWAY_TAGS"].split(' ').map(str::to_string).collect()
}

/// The jobs the spawner was handed, as (message body, SQS attributes), in order.
fn spawner_messages(bench: &Bench) -> Vec<(Value, Value)> {
    bench
        .traffic
        .spawner_batches
        .lock()
        .unwrap()
        .iter()
        .flat_map(|(records, _)| records.clone())
        .map(|r| {
            (
                serde_json::from_str(r["body"].as_str().unwrap()).unwrap(),
                r["attributes"].clone(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_signed_push_becomes_images_notifications_statuses_and_children_then_cleanup() {
    let repository = format!("bench-org/{}", slipway_aws_bench::unique("site"));
    let mut bench = Bench::start(&repository).await;
    let c0 = bench.head();
    let ns = bench.namespace.clone();
    let base = format!("{ns}/base");
    let app = format!("{ns}/app");
    // Two tiny images: `base` from scratch, `app` FROM base (so built after it, by the notifier's
    // child job). No RUN step: nothing needs a network inside the build.
    bench.write(
        "base/Dockerfile",
        "FROM scratch\nCOPY stamp.txt /stamp.txt\n",
    );
    bench.write("base/stamp.txt", &bench.unique.clone());
    bench.write(
        "app/Dockerfile",
        &format!("FROM {base}:main\nCOPY hello.txt /hello.txt\n"),
    );
    bench.write("app/hello.txt", "hello\n");
    let c1 = bench.commit("two images");
    let short = format!("sha-{}", &c1[..7]);

    // 1. GitHub → API Gateway → listener: 202 queued.
    let delivery = uuid::Uuid::new_v4().to_string();
    let body = bench.push_body("refs/heads/main", &c0, &c1);
    let (status, answer) = bench.deliver("push", &delivery, &body).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["status"], "queued", "{answer}");
    assert_eq!(answer["job_id"], format!("push-{delivery}"));
    assert_eq!(answer["commit"], c1.as_str());

    bench.wait_idle(SETTLE).await;

    // 2. The queue → spawner: the listener's job, then the notifier's child job.
    let messages = spawner_messages(&bench);
    assert_eq!(messages.len(), 2, "{messages:#?}");
    let (job, attrs) = &messages[0];
    assert_eq!(job["id"], format!("push-{delivery}"));
    assert_eq!(job["trigger"]["kind"], "push");
    assert_eq!(job["repository"], repository.as_str());
    assert_eq!(job["commit"], c1.as_str());
    assert_eq!(job["before"], c0.as_str());
    assert_eq!(attrs["MessageGroupId"], repository.to_ascii_lowercase());
    assert_eq!(attrs["MessageDeduplicationId"], format!("push-{delivery}"));
    let (child, _) = &messages[1];
    assert_eq!(child["trigger"]["kind"], "parent", "{child:#}");
    assert_eq!(child["trigger"]["image"], base.as_str());
    assert_eq!(child["images"], json!([app]));
    assert_eq!(child["commit"], c1.as_str());
    assert!(child["id"].as_str().unwrap().starts_with("parent-"));

    // 3. spawner → CodeBuild: one build per image, the overrides as executed, child after parent.
    let builds = bench.codebuild.builds();
    assert_eq!(builds.len(), 2, "{builds:#?}");
    let (b, a) = (&builds[0], &builds[1]);
    assert!(
        b.end.unwrap() <= a.start,
        "the child started before its parent finished"
    );
    for (build, image, children) in [(b, &base, app.as_str()), (a, &app, "")] {
        assert_eq!(build.status, "SUCCEEDED", "{}", build.log.join("\n"));
        let r = &build.request;
        assert_eq!(r["projectName"], bench.project.as_str());
        assert_eq!(r["sourceTypeOverride"], "GITHUB");
        assert_eq!(
            r["sourceLocationOverride"],
            format!("https://github.com/{repository}.git")
        );
        assert_eq!(r["sourceVersion"], c1.as_str());
        assert_eq!(r["buildspecOverride"], slipway_spawner::BUILDSPEC);
        assert_eq!(r["reportBuildStatusOverride"], true);
        assert_eq!(
            r["buildStatusConfigOverride"]["context"],
            format!("slipway/{image}")
        );
        assert_eq!(r["idempotencyToken"].as_str().unwrap().len(), 64);
        let env = build.env();
        assert_eq!(env["SLIPWAY_IMAGE"], image.as_str());
        assert_eq!(env["SLIPWAY_COMMIT"], c1.as_str());
        assert_eq!(env["SLIPWAY_REPOSITORY"], repository.as_str());
        assert_eq!(env["SLIPWAY_REF"], "refs/heads/main");
        assert_eq!(env["SLIPWAY_CHILDREN"], children);
        assert_eq!(tags_of(&env), ["main", "latest", short.as_str()]);
        // Registry credentials are parameter names, resolved by "CodeBuild" from SSM.
        let stored: Vec<&Value> = r["environmentVariablesOverride"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|v| v["type"] == "PARAMETER_STORE")
            .collect();
        let host = bench.registry.host.replace(':', "_");
        assert_eq!(
            stored
                .iter()
                .map(|v| v["value"].as_str().unwrap())
                .collect::<Vec<_>>(),
            [
                format!(
                    "{}/registry/{host}/{}/username",
                    bench.parameter_prefix, bench.namespace_path
                ),
                format!(
                    "{}/registry/{host}/{}/password",
                    bench.parameter_prefix, bench.namespace_path
                ),
            ]
        );
        // The password never reaches the log.
        assert!(
            !build
                .log
                .iter()
                .any(|l| l.contains(&bench.registry.password)),
            "the registry password is in the build log"
        );
        // 4. The images are in the registry under every planned tag, at the exported digest.
        let digest = &build.exported["SLIPWAY_DIGEST"];
        assert!(digest.starts_with("sha256:"), "{digest}");
        let path = image
            .strip_prefix(&format!("{}/", bench.registry.host))
            .unwrap();
        for t in tags_of(&env) {
            assert_eq!(
                bench.registry.digest(path, &t).await.as_deref(),
                Some(digest.as_str()),
                "{image}:{t}"
            );
        }
    }

    // 5. CodeBuild → EventBridge (the template's rule) → notifier: a start and an end per build.
    let calls = bench.traffic.notifier_calls.lock().unwrap().clone();
    let statuses: Vec<&str> = calls
        .iter()
        .map(|(e, _)| e["detail"]["build-status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        ["IN_PROGRESS", "SUCCEEDED", "IN_PROGRESS", "SUCCEEDED"]
    );
    for (event, result) in &calls {
        assert_eq!(event["detail-type"], "CodeBuild Build State Change");
        assert_eq!(event["source"], "aws.codebuild");
        assert_eq!(event["detail"]["project-name"], bench.project.as_str());
        let report = result.as_ref().expect("the notifier succeeded");
        let expected = if event["detail"]["build-status"] == "SUCCEEDED" {
            "published"
        } else {
            "not_published"
        };
        assert_eq!(report["publish"], expected, "{report:#}");
        // CodeBuild reports the commit statuses itself (the template's setting).
        assert_eq!(report["commit_status"], "not_used", "{report:#}");
    }
    let (_, parent_report) = &calls[1];
    assert_eq!(
        parent_report.as_ref().unwrap()["children"]["queued"][0][0],
        app.as_str()
    );

    // 6. SNS: three forms per result, told apart by `format`, with the result's attributes.
    for format in ["text", "json", "chatbot"] {
        let msgs = bench.sns_messages(format).await;
        assert_eq!(msgs.len(), 2, "{format}: {msgs:#?}");
        for (m, image) in msgs.iter().zip([&base, &app]) {
            let attrs = &m["MessageAttributes"];
            assert_eq!(attrs["format"]["Value"], format, "{m:#}");
            assert_eq!(attrs["status"]["Value"], "SUCCEEDED", "{m:#}");
            assert_eq!(attrs["repository"]["Value"], repository.as_str());
            assert_eq!(attrs["image"]["Value"], image.as_str());
            assert!(
                m["Subject"].as_str().unwrap().contains("base")
                    || m["Subject"].as_str().unwrap().contains("app")
            );
        }
    }
    let json_msgs = bench.sns_messages("json").await;
    let first: Value = serde_json::from_str(json_msgs[0]["Message"].as_str().unwrap()).unwrap();
    assert_eq!(first["image"], base.as_str(), "{first:#}");
    assert_eq!(
        first["digest"],
        b.exported["SLIPWAY_DIGEST"].as_str(),
        "{first:#}"
    );

    // 7. Commit statuses on GitHub, set by CodeBuild with its source credential.
    let statuses = bench.github.statuses();
    let seen: Vec<(String, String)> = statuses
        .iter()
        .map(|s| {
            (
                s.body["context"].as_str().unwrap().to_string(),
                s.body["state"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let ctx = |i: &str| format!("slipway/{i}");
    assert_eq!(
        seen,
        [
            (ctx(&base), "pending".into()),
            (ctx(&base), "success".into()),
            (ctx(&app), "pending".into()),
            (ctx(&app), "success".into()),
        ]
    );
    for s in &statuses {
        assert_eq!(s.sha, c1);
        assert_eq!(s.credential.as_deref(), Some(GITHUB_TOKEN));
    }
    // The spawner read the repository with the token too.
    assert!(
        bench
            .github
            .seen()
            .iter()
            .any(|s| s.path.contains("/compare/") && s.credential.as_deref() == Some(GITHUB_TOKEN))
    );

    // 8. The weekly cleanup, a month later: both builds are deleted.
    let summary = bench
        .cleanup_at(Duration::from_secs(31 * 24 * 3600))
        .await
        .unwrap_or_else(|e| panic!("cleanup failed: {e}\n{}", bench.tasks.log_text()));
    assert_eq!(summary["examined"], 2, "{summary:#}");
    let mut deleted: Vec<String> = summary["deleted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    deleted.sort();
    let mut ids = vec![b.id.clone(), a.id.clone()];
    ids.sort();
    assert_eq!(deleted, ids);
    assert!(bench.codebuild.builds().is_empty());

    // 9. The same delivery an hour later (GitHub's "Redeliver"): nothing is queued.
    bench
        .listener
        .restart(&[("SLIPWAY_TEST_CLOCK_OFFSET_SECONDS", "3600")])
        .await;
    let (status, answer) = bench.deliver("push", &delivery, &body).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["status"], "duplicate", "{answer}");
    bench.wait_idle(SETTLE).await;
    assert_eq!(spawner_messages(&bench).len(), 2, "a job was queued again");
    assert!(
        bench.codebuild.builds().is_empty(),
        "something was built again"
    );
}
