//! ECR repositories created on an image's first push (`slipway_core::ecr` decides what they look
//! like): `CreateRepository` with scan on push, then `PutLifecyclePolicy`. A repository that
//! exists already is left alone. Repositories known to exist are remembered for the life of the
//! Lambda instance, so a warm spawner asks once per repository.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use aws_sdk_ecr::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_ecr::types::{ImageScanningConfiguration, ImageTagMutability};
use slipway_core::ecr::EcrRepository;

/// What `ensure` found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ensured {
    Created,
    Existed,
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("the ECR repository {repository} could not be created: {reason}")]
pub struct EcrError {
    pub repository: String,
    pub reason: String,
    /// Throttling or a server error: trying again may help.
    pub retryable: bool,
}

impl EcrError {
    pub fn code(&self) -> &'static str {
        "ecr_repository_failed"
    }
}

/// Creates ECR repositories, one client per region (an image's registry names its region).
pub struct EcrRepositories {
    config: aws_config::SdkConfig,
    clients: Mutex<BTreeMap<String, aws_sdk_ecr::Client>>,
    known: Mutex<BTreeSet<(String, String, String)>>,
}

impl EcrRepositories {
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        Self {
            config: config.clone(),
            clients: Mutex::default(),
            known: Mutex::default(),
        }
    }

    fn client(&self, region: &str) -> aws_sdk_ecr::Client {
        self.clients
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(region.to_string())
            .or_insert_with(|| {
                aws_sdk_ecr::Client::from_conf(
                    aws_sdk_ecr::config::Builder::from(&self.config)
                        .region(aws_sdk_ecr::config::Region::new(region.to_string()))
                        .build(),
                )
            })
            .clone()
    }

    /// Makes sure `repo` exists; creates it with its settings when it does not.
    pub async fn ensure(&self, repo: &EcrRepository) -> Result<Ensured, EcrError> {
        let key = (
            repo.registry_id.clone(),
            repo.region.clone(),
            repo.name.clone(),
        );
        if self
            .known
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&key)
        {
            return Ok(Ensured::Existed);
        }
        let fail = |reason: String, retryable: bool| EcrError {
            repository: repo.name.clone(),
            reason,
            retryable,
        };
        let client = self.client(&repo.region);
        let created = client
            .create_repository()
            .registry_id(&repo.registry_id)
            .repository_name(&repo.name)
            .image_tag_mutability(ImageTagMutability::Mutable)
            .image_scanning_configuration(
                ImageScanningConfiguration::builder()
                    .scan_on_push(repo.settings.scan_on_push)
                    .build(),
            )
            .send()
            .await;
        let ensured = match created {
            Ok(_) => {
                client
                    .put_lifecycle_policy()
                    .registry_id(&repo.registry_id)
                    .repository_name(&repo.name)
                    .lifecycle_policy_text(repo.settings.lifecycle_policy())
                    .send()
                    .await
                    .map_err(|e| {
                        let retryable = e
                            .raw_response()
                            .is_some_and(|r| r.status().is_server_error());
                        fail(
                            format!("its lifecycle policy: {}", DisplayErrorContext(e)),
                            retryable,
                        )
                    })?;
                tracing::info!(repository = %repo.name, region = %repo.region, scan_on_push = repo.settings.scan_on_push,
                    keep_images = repo.settings.keep_images, untagged_days = repo.settings.untagged_days, "ECR repository created");
                Ensured::Created
            }
            Err(e) if e.code() == Some("RepositoryAlreadyExistsException") => Ensured::Existed,
            Err(e) => {
                let retryable = matches!(
                    e.code(),
                    Some("ThrottlingException" | "LimitExceededException")
                ) || e
                    .raw_response()
                    .is_some_and(|r| r.status().is_server_error());
                return Err(fail(DisplayErrorContext(e).to_string(), retryable));
            }
        };
        self.known
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key);
        Ok(ensured)
    }
}
