//! The builds of a CodeBuild batch (one native build per platform, then the merge) through the
//! notifier: one result per image. A platform's success and the builds that fast-fail stopped say
//! nothing; a failed platform is the image's failure (no child, the failure status); the merge is
//! the image's result, with the list's digest, its children and deploy targets. The events are
//! the documented fixtures with the variables the build graph gives each build.

mod common;

use common::{Recorder, cfg, fixture};
use serde_json::{Value, json};
use slipway_notifier::handle_event;

/// `name`'s fixture as a build of the batch: `part` (and `platform`) among its variables.
fn part_event(name: &str, part: &str, platform: Option<&str>) -> Value {
    let mut e = fixture(name);
    let vars = e["detail"]["additional-information"]["environment"]["environment-variables"]
        .as_array_mut()
        .unwrap();
    vars.push(json!({"name": "SLIPWAY_BUILD_PART", "type": "PLAINTEXT", "value": part}));
    vars.push(json!({"name": "SLIPWAY_PLATFORMS", "type": "PLAINTEXT", "value": "linux/amd64,linux/arm64"}));
    if let Some(p) = platform {
        vars.push(json!({"name": "SLIPWAY_PART_PLATFORM", "type": "PLAINTEXT", "value": p}));
    }
    e
}

#[tokio::test]
async fn platform_builds_stay_silent_unless_they_fail_and_the_merge_reports_the_image() {
    let sinks = Recorder::default();
    for (name, status) in [("succeeded.json", "SUCCEEDED"), ("stopped.json", "STOPPED")] {
        let r = handle_event(
            &part_event(name, "platform", Some("linux/arm64")),
            &cfg(),
            &sinks,
        )
        .await;
        assert_eq!(r["status"], status, "{r}");
        assert_eq!(r["publish"], "not_published", "{r}");
        assert_eq!(r["commit_status"], "not_used", "{r}");
    }
    assert!(sinks.published.lock().unwrap().is_empty());
    assert!(sinks.jobs.lock().unwrap().is_empty());
    assert!(sinks.statuses.lock().unwrap().is_empty());
    assert!(sinks.deploys.lock().unwrap().is_empty());

    // The merge: the image's one result, with the list's digest (the exported SLIPWAY_DIGEST).
    let r = handle_event(&part_event("succeeded.json", "merge", None), &cfg(), &sinks).await;
    assert_eq!(r["publish"], "published", "{r}");
    let published = sinks.published.lock().unwrap().clone();
    assert_eq!(published.len(), 1);
    assert_eq!(published[0].subject, "✔ acme/web:main built");
    assert_eq!(
        published[0].json["digest"],
        format!("sha256:{}", "4f".repeat(32))
    );
    let statuses = sinks.statuses.lock().unwrap().clone();
    assert_eq!(statuses.len(), 1);
    assert_eq!(statuses[0].context, "slipway/acme/web");
    assert_eq!(statuses[0].state, "success");
    let children: Vec<String> = sinks
        .jobs
        .lock()
        .unwrap()
        .iter()
        .map(|j| j.images[0].clone())
        .collect();
    assert_eq!(children, ["acme/web-debug", "acme/web-slim"]);
    assert_eq!(*sinks.deploys.lock().unwrap(), ["prod-web", "staging-web"]);
}

#[tokio::test]
async fn a_failed_platform_is_the_images_failure() {
    let sinks = Recorder::default();
    let r = handle_event(
        &part_event("failed.json", "platform", Some("linux/arm64")),
        &cfg(),
        &sinks,
    )
    .await;
    assert_eq!(r["publish"], "published", "{r}");
    let published = sinks.published.lock().unwrap().clone();
    assert_eq!(published.len(), 1);
    assert!(
        published[0].subject.ends_with("failed"),
        "{}",
        published[0].subject
    );
    assert!(published[0].json["digest"].is_null());
    assert!(
        sinks.jobs.lock().unwrap().is_empty(),
        "no child of a failed image"
    );
    assert_eq!(sinks.statuses.lock().unwrap()[0].state, "failure");
}

#[tokio::test]
async fn an_unknown_part_is_refused_like_any_bad_variable() {
    let sinks = Recorder::default();
    let r = handle_event(
        &part_event("succeeded.json", "everything", None),
        &cfg(),
        &sinks,
    )
    .await;
    assert_eq!(r["status"], "ignored", "{r}");
    assert!(sinks.published.lock().unwrap().is_empty());
    let r = handle_event(
        &part_event("failed.json", "platform", Some("linux/$(id)")),
        &cfg(),
        &sinks,
    )
    .await;
    assert_eq!(r["status"], "ignored", "{r}");
    assert!(sinks.published.lock().unwrap().is_empty());
}

/// The notifier's metric lines (EMF, checked by `metric_lines`) for a batch and a plain build:
/// the batch counts once, by its merge, and the platform builds that only say "my part is done"
/// count neither as finished builds nor as notifications.
#[tokio::test]
async fn metric_lines_count_one_result_per_image_and_each_notification() {
    let sinks = Recorder::default();
    let (logs, _guard) =
        slipway_testkit::logs::LogCapture::start(|w| slipway_aws::logging::subscriber(w, "info"));
    for (event, publish) in [
        (
            part_event("succeeded.json", "platform", Some("linux/arm64")),
            "not_published",
        ),
        (
            part_event("stopped.json", "platform", Some("linux/amd64")),
            "not_published",
        ),
        (part_event("succeeded.json", "merge", None), "published"),
        (fixture("failed.json"), "published"),
    ] {
        let r = handle_event(&event, &cfg(), &sinks).await;
        assert_eq!(r["publish"], publish, "{r}");
    }
    let lines = logs.metric_lines();
    let finished: Vec<(&Value, &Value)> = lines
        .iter()
        .filter(|l| l.get("BuildsFinished").is_some())
        .map(|l| (&l["Result"], &l["BuildDuration"]))
        .collect();
    // The fixtures' builds ran from 16:12:29 to the event at 16:14:28.
    assert_eq!(
        finished,
        [
            (&json!("succeeded"), &json!(119.0)),
            (&json!("failed"), &json!(119.0))
        ],
        "{}",
        logs.text()
    );
    let notified: Vec<&Value> = lines
        .iter()
        .filter(|l| l.get("Notifications").is_some())
        .map(|l| &l["Outcome"])
        .collect();
    assert_eq!(notified, [&json!("published"), &json!("published")]);
    assert_eq!(lines.len(), 4, "{}", logs.text());
}
