//! ECR repositories on an image's first push, against moto's ECR (SLIPWAY_TEST_MOTO_URL): the
//! spawner creates the repository of an ECR image before its StartBuild, with scan on push and
//! the lifecycle policy of `slipway.toml`'s `[ecr]`; a repository that exists is left as it is;
//! images of other registries get none.

mod common;

use std::sync::{Arc, Mutex};

use aws_sdk_codebuild::Client;
use aws_sdk_codebuild::config::retry::RetryConfig;
use aws_smithy_mocks::{MockResponse, RuleMode, mock, mock_client};
use common::*;
use serde_json::{Value, json};
use slipway_aws::codebuild::CodeBuildStarter;
use slipway_aws::ecr::EcrRepositories;
use slipway_core::plan::Plan;
use slipway_spawner::{AwsBuilds, Outcome, Spawner};

const REGISTRY: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com";

fn ecr_plan(ns: &str) -> Plan {
    serde_json::from_value(json!({
        "repository": "acme/site", "ref": "refs/heads/main", "commit": COMMIT,
        "changes": {"source": "repository", "base": "0000000000000000000000000000000000000001"},
        "images": [
            {"name": format!("{REGISTRY}/{ns}/web"), "context": "web", "dockerfile": "web/Dockerfile",
             "commit": COMMIT, "tags": ["main"], "reasons": ["web/x"], "order": 0,
             "ecr": {"scan_on_push": true, "keep_images": 7, "untagged_days": 3}},
            {"name": format!("{REGISTRY}/{ns}/api"), "context": "api", "dockerfile": "api/Dockerfile",
             "commit": COMMIT, "tags": ["main"], "reasons": ["api/x"], "order": 0,
             "ecr": {"scan_on_push": false, "keep_images": 7, "untagged_days": 3}},
            {"name": "ghcr.io/acme/docs", "context": "docs", "dockerfile": "docs/Dockerfile",
             "commit": COMMIT, "tags": ["main"], "reasons": ["docs/x"], "order": 0}
        ]
    }))
    .unwrap()
}

#[tokio::test]
async fn an_ecr_image_gets_its_repository_with_scanning_and_lifecycle_before_its_build() {
    let aws = slipway_testkit::moto::moto_config().await;
    let ecr = aws_sdk_ecr::Client::new(&aws);
    let ns = format!("slipway-{}", uuid::Uuid::new_v4().simple());
    // `api` exists already, made by hand with a policy of its own: slipway leaves it alone.
    ecr.create_repository()
        .repository_name(format!("{ns}/api"))
        .send()
        .await
        .expect("moto ECR");
    let own_policy = json!({"rules": [{"rulePriority": 1, "selection": {"tagStatus": "any",
        "countType": "imageCountMoreThan", "countNumber": 500}, "action": {"type": "expire"}}]});
    ecr.put_lifecycle_policy()
        .repository_name(format!("{ns}/api"))
        .lifecycle_policy_text(own_policy.to_string())
        .send()
        .await
        .unwrap();

    let started_images = Arc::new(Mutex::new(Vec::new()));
    let c = started_images.clone();
    let rule = mock!(Client::start_build).then_compute_response(move |req| {
        let image = image_of(req);
        c.lock().unwrap().push(image.clone());
        MockResponse::Output(started(&image.replace(['/', '.'], "-")))
    });
    let client = mock_client!(aws_sdk_codebuild, RuleMode::MatchAny, &[&rule], |c| c
        .retry_config(RetryConfig::disabled()));
    let spawner = Spawner {
        planner: FixedPlanner::new(Ok(ecr_plan(&ns))),
        builds: AwsBuilds {
            codebuild: CodeBuildStarter::new(client),
            ecr: EcrRepositories::new(&aws),
        },
        queue: RecordingQueue::default(),
        settings: settings(),
    };
    let outcome = spawner.spawn(&job(), 1).await;
    assert!(
        matches!(&outcome, Outcome::Started { builds } if builds.len() == 3),
        "{outcome:?}"
    );
    assert_eq!(started_images.lock().unwrap().len(), 3);

    // web: created with scan on push and the [ecr] lifecycle policy.
    let repos = ecr
        .describe_repositories()
        .repository_names(format!("{ns}/web"))
        .repository_names(format!("{ns}/api"))
        .send()
        .await
        .unwrap();
    let web_repo = repos
        .repositories()
        .iter()
        .find(|r| r.repository_name() == Some(&format!("{ns}/web")))
        .expect("the web repository was created");
    assert_eq!(
        web_repo
            .image_scanning_configuration()
            .map(|c| c.scan_on_push()),
        Some(true)
    );
    let policy = ecr
        .get_lifecycle_policy()
        .repository_name(format!("{ns}/web"))
        .send()
        .await
        .unwrap();
    let policy: Value = serde_json::from_str(policy.lifecycle_policy_text().unwrap()).unwrap();
    assert_eq!(policy["rules"][0]["selection"]["tagStatus"], "untagged");
    assert_eq!(policy["rules"][0]["selection"]["countNumber"], 3);
    assert_eq!(policy["rules"][1]["selection"]["countNumber"], 7);

    // api: existed; its own policy is untouched.
    let policy = ecr
        .get_lifecycle_policy()
        .repository_name(format!("{ns}/api"))
        .send()
        .await
        .unwrap();
    let policy: Value = serde_json::from_str(policy.lifecycle_policy_text().unwrap()).unwrap();
    assert_eq!(policy, own_policy);

    // docs goes to GHCR: no ECR repository of that name.
    let all = ecr.describe_repositories().send().await.unwrap();
    assert!(
        !all.repositories()
            .iter()
            .any(|r| r.repository_name().is_some_and(|n| n.ends_with("/docs"))),
        "a repository was made for a GHCR image"
    );

    // A second push: nothing is created again (the warm instance remembers), builds start.
    let again = spawner.spawn(&job(), 1).await;
    assert!(
        matches!(&again, Outcome::Started { builds } if builds.len() == 3),
        "{again:?}"
    );
}
