//! Multi-platform images on CodeBuild, request by request (aws-smithy-mocks): an image whose
//! platforms all have a native CodeBuild machine is one StartBuildBatch whose build graph builds
//! `linux/amd64` on `LINUX_CONTAINER` and `linux/arm64` on `ARM_CONTAINER`, then merges; a
//! single `linux/arm64` image is one StartBuild on the ARM machine; `emulate = true` is one
//! StartBuild on the project's machine; a platform with no native machine and no `emulate` is
//! refused without a call.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_sdk_codebuild::Client;
use aws_sdk_codebuild::config::retry::RetryConfig;
use aws_sdk_codebuild::operation::start_build::StartBuildInput;
use aws_sdk_codebuild::operation::start_build_batch::{
    StartBuildBatchInput, StartBuildBatchOutput,
};
use aws_sdk_codebuild::types::{BuildBatch, EnvironmentType};
use aws_smithy_mocks::{MockResponse, RuleMode, mock, mock_client};
use common::*;
use serde_json::json;
use slipway_aws::codebuild::CodeBuildStarter;
use slipway_core::build_env::idempotency_token;
use slipway_core::plan::Plan;
use slipway_spawner::{BUILDSPEC, Outcome, Spawner};

const AMD64_IMAGE: &str = "aws/codebuild/amazonlinux-x86_64-standard:5.0";
const ARM64_IMAGE: &str = "aws/codebuild/amazonlinux-aarch64-standard:3.0";

fn plan() -> Plan {
    serde_json::from_value(json!({
        "repository": "acme/site",
        "ref": "refs/heads/main",
        "commit": COMMIT,
        "changes": {"source": "all", "reason": "test"},
        "images": [
            {
                "name": "ghcr.io/acme/web", "context": "web", "dockerfile": "web/Dockerfile",
                "commit": COMMIT, "tags": ["main", "sha-6113728"],
                "platforms": ["linux/amd64", "linux/arm64"],
                "reasons": ["web/index.html"], "order": 0
            },
            {
                "name": "acme/tool", "context": "tool", "dockerfile": "tool/Dockerfile",
                "commit": COMMIT, "tags": ["main"], "platforms": ["linux/arm64"],
                "reasons": ["tool/x"], "order": 0
            },
            {
                "name": "acme/legacy", "context": "legacy", "dockerfile": "legacy/Dockerfile",
                "commit": COMMIT, "tags": ["main"],
                "platforms": ["linux/amd64", "linux/arm/v7"], "emulate": true,
                "reasons": ["legacy/x"], "order": 0
            },
            {
                "name": "acme/armv7", "context": "armv7", "dockerfile": "armv7/Dockerfile",
                "commit": COMMIT, "tags": ["main"],
                "platforms": ["linux/amd64", "linux/arm/v7"],
                "reasons": ["armv7/x"], "order": 0
            }
        ]
    }))
    .unwrap()
}

macro_rules! client {
    ($rules:expr) => {
        mock_client!(aws_sdk_codebuild, RuleMode::MatchAny, $rules, |c| c
            .retry_config(RetryConfig::disabled()))
    };
}

fn batch_started(id: &str) -> StartBuildBatchOutput {
    StartBuildBatchOutput::builder()
        .build_batch(
            BuildBatch::builder()
                .id(format!("slipway-builds:{id}"))
                .arn(format!(
                    "arn:aws:codebuild:us-east-1:123456789012:build-batch/slipway-builds:{id}"
                ))
                .build(),
        )
        .build()
}

fn env_of(vars: &[aws_sdk_codebuild::types::EnvironmentVariable]) -> BTreeMap<String, String> {
    vars.iter()
        .map(|v| (v.name().to_string(), v.value().to_string()))
        .collect()
}

#[tokio::test]
async fn native_platforms_are_one_batch_and_the_rest_single_builds() {
    let batches: Arc<Mutex<Vec<StartBuildBatchInput>>> = Arc::default();
    let builds: Arc<Mutex<Vec<StartBuildInput>>> = Arc::default();
    let (b, s) = (batches.clone(), builds.clone());
    let batch_rule = mock!(Client::start_build_batch).then_compute_response(move |req| {
        b.lock().unwrap().push(req.clone());
        MockResponse::Output(batch_started("web-batch"))
    });
    let build_rule = mock!(Client::start_build).then_compute_response(move |req| {
        s.lock().unwrap().push(req.clone());
        MockResponse::Output(started(&image_of(req).replace('/', "-")))
    });
    let spawner = Spawner {
        planner: FixedPlanner::new(Ok(plan())),
        builds: CodeBuildStarter::new(client!(&[&batch_rule, &build_rule])),
        queue: RecordingQueue::default(),
        settings: settings(),
    };
    let outcome = spawner.spawn(&job(), 1).await;
    // acme/armv7 is refused before any call: not retried, not started.
    assert_eq!(
        outcome,
        Outcome::Started {
            builds: vec![
                "slipway-builds:web-batch".into(),
                "slipway-builds:acme-tool".into(),
                "slipway-builds:acme-legacy".into(),
            ]
        }
    );
    assert_eq!(batch_rule.num_calls(), 1);
    assert_eq!(build_rule.num_calls(), 2);

    // The two-platform image: one batch, field by field.
    let req = batches.lock().unwrap()[0].clone();
    assert_source_of_job!(req);
    assert_eq!(
        req.idempotency_token(),
        Some(idempotency_token(DELIVERY, "ghcr.io/acme/web", COMMIT).as_str())
    );
    // No CodeBuild status for the batch (its context is not per image): the notifier sets
    // `slipway/<image>` from the merge or a failed platform.
    assert_eq!(req.report_build_batch_status_override(), Some(false));
    // The project's machine for the batch itself; each build of the graph names its own.
    assert_eq!(req.environment_type_override(), None);
    assert_eq!(req.image_override(), None);
    let env = env_of(req.environment_variables_override());
    assert_eq!(env["SLIPWAY_IMAGE"], "ghcr.io/acme/web");
    assert_eq!(env["SLIPWAY_PLATFORMS"], "linux/amd64,linux/arm64");
    assert_eq!(env["SLIPWAY_TAGS"], "main sha-6113728");
    assert_eq!(env["SLIPWAY_CACHE_TO"], "ghcr.io/acme/web:buildcache-main");
    // Only the graph sets the part of each build.
    assert!(!env.contains_key("SLIPWAY_BUILD_PART"));
    assert!(!env.contains_key("SLIPWAY_PART_PLATFORM"));

    // The buildspec is the shipped one plus the build graph.
    let spec_text = req.buildspec_override().unwrap();
    assert!(spec_text.starts_with(BUILDSPEC));
    let spec: serde_norway::Value = serde_norway::from_str(spec_text).unwrap();
    let shipped: serde_norway::Value = serde_norway::from_str(BUILDSPEC).unwrap();
    assert_eq!(spec["phases"], shipped["phases"]);
    let batch = &spec["batch"];
    assert_eq!(batch["fast-fail"], true);
    let graph = batch["build-graph"].as_sequence().unwrap();
    assert_eq!(graph.len(), 3);
    for (entry, (id, platform, env_type, image)) in graph.iter().zip([
        (
            "platform_linux_amd64",
            "linux/amd64",
            "LINUX_CONTAINER",
            AMD64_IMAGE,
        ),
        (
            "platform_linux_arm64",
            "linux/arm64",
            "ARM_CONTAINER",
            ARM64_IMAGE,
        ),
    ]) {
        assert_eq!(entry["identifier"], id);
        assert_eq!(entry["env"]["type"], env_type);
        assert_eq!(entry["env"]["image"], image);
        assert_eq!(entry["env"]["privileged-mode"], true);
        assert_eq!(entry["env"]["variables"]["SLIPWAY_BUILD_PART"], "platform");
        assert_eq!(entry["env"]["variables"]["SLIPWAY_PART_PLATFORM"], platform);
        assert!(entry["depend-on"].is_null());
    }
    let merge = &graph[2];
    assert_eq!(merge["identifier"], "merge");
    assert_eq!(merge["env"]["variables"]["SLIPWAY_BUILD_PART"], "merge");
    // The merge runs on the project's machine, after every platform succeeded.
    assert!(merge["env"]["type"].is_null() && merge["env"]["image"].is_null());
    assert_eq!(
        merge["depend-on"],
        serde_norway::to_value(["platform_linux_amd64", "platform_linux_arm64"]).unwrap()
    );

    // One platform with a native machine: one build on that machine. Emulation: the project's.
    let reqs = builds.lock().unwrap().clone();
    let tool = reqs.iter().find(|r| image_of(r) == "acme/tool").unwrap();
    assert_eq!(
        tool.environment_type_override(),
        Some(&EnvironmentType::ArmContainer)
    );
    assert_eq!(tool.image_override(), Some(ARM64_IMAGE));
    assert_eq!(tool.buildspec_override(), Some(BUILDSPEC));
    assert_eq!(tool.report_build_status_override(), Some(true));
    let legacy = reqs.iter().find(|r| image_of(r) == "acme/legacy").unwrap();
    assert_eq!(legacy.environment_type_override(), None);
    assert_eq!(legacy.image_override(), None);
    assert_eq!(legacy.buildspec_override(), Some(BUILDSPEC));
    let env = env_of(legacy.environment_variables_override());
    assert_eq!(env["SLIPWAY_PLATFORMS"], "linux/amd64,linux/arm/v7");
    assert_eq!(env["SLIPWAY_EMULATE"], "true");
    assert!(reqs.iter().all(|r| image_of(r) != "acme/armv7"));
}
