//! Fixtures shared by the spawner tests: a fixed-plan planner, a recording queue, CodeBuild
//! clients mocked with aws-smithy-mocks (moto's CodeBuild ignores overrides and tokens).

#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_codebuild::operation::start_build::{
    StartBuildError, StartBuildInput, StartBuildOutput,
};
use aws_sdk_codebuild::types::Build;
use aws_smithy_types::error::ErrorMetadata;
use serde_json::json;
use slipway_core::Job;
use slipway_core::build_env::RegistrySettings;
use slipway_core::listener::QueueError;
use slipway_core::plan::{Plan, PlanError};
use slipway_spawner::{Backoff, Planner, Requeue, Settings};

pub const COMMIT: &str = "6113728f27ae82c7b1a177c8d03f9e96e0adf246";
pub const DELIVERY: &str = "72d3162e-cc78-11e3-81ab-4c9367dc0958";

pub fn job() -> Job {
    serde_json::from_value(json!({
        "id": format!("push-{DELIVERY}"),
        "trigger": {"kind": "push"},
        "delivery_id": DELIVERY,
        "repository": "acme/site",
        "clone_url": "https://github.com/acme/site.git",
        "private": false,
        "default_branch": "main",
        "ref": "refs/heads/main",
        "before": "0000000000000000000000000000000000000001",
        "after": COMMIT,
        "commit": COMMIT,
    }))
    .unwrap()
}

/// Three images: `acme/web` (Docker Hub) with a child `acme/web-debug` built FROM it, and
/// `ghcr.io/acme/api` with build arguments, a target and autotest.
pub fn plan() -> Plan {
    serde_json::from_value(json!({
        "repository": "acme/site",
        "ref": "refs/heads/main",
        "commit": COMMIT,
        "changes": {"source": "repository", "base": "0000000000000000000000000000000000000001"},
        "images": [
            {
                "name": "acme/web", "context": "web", "dockerfile": "web/Dockerfile",
                "commit": COMMIT, "tags": ["main", "sha-6113728"],
                "reasons": ["web/index.html"], "order": 0,
                "children": ["acme/web-debug"], "deploy": ["prod-web"]
            },
            {
                "name": "ghcr.io/acme/api", "context": "api", "dockerfile": "api/Dockerfile.prod",
                "commit": COMMIT, "tags": ["main"],
                "build_args": {"RUST_VERSION": "1.94", "FEATURES": "a b"},
                "target": "runtime", "autotest": true,
                "reasons": ["api/src/main.rs"], "order": 0
            },
            {
                "name": "acme/web-debug", "context": "web/debug", "dockerfile": "web/debug/Dockerfile",
                "commit": COMMIT, "tags": ["main"],
                "reasons": ["built FROM acme/web"], "order": 1,
                "parents": ["acme/web"]
            }
        ]
    }))
    .unwrap()
}

/// Plans every job with `plan`, narrowed to the job's images when it names some.
pub struct FixedPlanner {
    pub plan: Result<Plan, PlanError>,
    pub jobs: Mutex<Vec<Job>>,
}

impl FixedPlanner {
    pub fn new(plan: Result<Plan, PlanError>) -> Self {
        Self {
            plan,
            jobs: Mutex::new(Vec::new()),
        }
    }
}

impl Planner for FixedPlanner {
    async fn plan(&self, job: &Job) -> Result<Plan, PlanError> {
        self.jobs.lock().unwrap().push(job.clone());
        let mut plan = self.plan.clone()?;
        if !job.images.is_empty() {
            plan.images.retain(|i| job.images.contains(&i.name));
        }
        Ok(plan)
    }

    async fn branch_head(
        &self,
        _repository: &str,
        _clone_url: &str,
        branch: Option<&str>,
    ) -> Result<(String, String), PlanError> {
        assert_eq!(branch, None);
        Ok(("main".into(), COMMIT.into()))
    }
}

/// Records narrowed jobs instead of sending them.
#[derive(Default)]
pub struct RecordingQueue {
    pub sent: Mutex<Vec<(Job, u32)>>,
}

impl Requeue for RecordingQueue {
    async fn requeue(&self, job: &Job, attempt: u32) -> Result<(), QueueError> {
        self.sent.lock().unwrap().push((job.clone(), attempt));
        Ok(())
    }
}

pub fn settings() -> Settings {
    Settings {
        project: "slipway-builds".into(),
        registry: RegistrySettings {
            parameter_prefix: "/slipway".into(),
        },
        machines: slipway_core::build_graph::BuildMachines {
            amd64_image: "aws/codebuild/amazonlinux-x86_64-standard:5.0".into(),
            arm64_image: "aws/codebuild/amazonlinux-aarch64-standard:3.0".into(),
        },
        // Real backoff, short delays: the test shows the retries, not the waiting.
        backoff: Backoff {
            attempts: 4,
            first: Duration::from_millis(1),
            max: Duration::from_millis(4),
        },
        max_attempts: 3,
    }
}

pub type Captured = Arc<Mutex<Vec<StartBuildInput>>>;

pub fn started(image_id: &str) -> StartBuildOutput {
    StartBuildOutput::builder()
        .build_value(
            Build::builder()
                .id(format!("slipway-builds:{image_id}"))
                .arn(format!(
                    "arn:aws:codebuild:us-east-1:123456789012:build/slipway-builds:{image_id}"
                ))
                .build(),
        )
        .build()
}

pub fn codebuild_error(code: &str) -> StartBuildError {
    StartBuildError::generic(
        ErrorMetadata::builder()
            .code(code)
            .message("injected by the test")
            .build(),
    )
}

/// The image a request is for (from its SLIPWAY_IMAGE override).
pub fn image_of(req: &StartBuildInput) -> String {
    req.environment_variables_override()
        .iter()
        .find(|v| v.name() == "SLIPWAY_IMAGE")
        .map(|v| v.value().to_string())
        .unwrap_or_default()
}

/// Asserts what every start request of the job (`StartBuild` or `StartBuildBatch`, whose inputs
/// share no type) says of its source: the project, the job's commit, the repository on GitHub.
// Not every suite that includes this module checks a start request (as `dead_code` above).
#[allow(unused_macros)]
macro_rules! assert_source_of_job {
    ($req:expr) => {{
        let req = &$req;
        assert_eq!(req.project_name(), Some("slipway-builds"));
        assert_eq!(req.source_version(), Some($crate::common::COMMIT));
        assert_eq!(
            req.source_type_override(),
            Some(&aws_sdk_codebuild::types::SourceType::Github)
        );
        assert_eq!(
            req.source_location_override(),
            Some("https://github.com/acme/site.git")
        );
    }};
}
#[allow(unused_imports)]
pub(crate) use assert_source_of_job;
