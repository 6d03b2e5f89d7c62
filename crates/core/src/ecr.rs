//! ECR repositories on an image's first push. ECR refuses a push to a repository that does not
//! exist (Docker Hub and GHCR create one on push), so the spawner creates it before the build
//! starts, with the settings of `slipway.toml`'s `[ecr]` table: scan on push, and a lifecycle
//! policy that expires untagged images after `untagged_days` and keeps the newest `keep_images`.
//! An existing repository is left as it is: after its creation it is the user's.

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::build_env::{RegistryKind, registry_of};
use crate::names::split_registry;

/// `[ecr]` in `slipway.toml`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EcrSettings {
    /// ECR's basic scanning on every push.
    #[serde(default = "yes")]
    pub scan_on_push: bool,
    /// Images kept per repository, newest first (tagged or not); older ones expire.
    #[serde(default = "default_keep")]
    pub keep_images: u32,
    /// Untagged images (a tag moved away) expire after this many days.
    #[serde(default = "default_untagged_days")]
    pub untagged_days: u32,
}

fn yes() -> bool {
    true
}
fn default_keep() -> u32 {
    100
}
fn default_untagged_days() -> u32 {
    14
}

impl Default for EcrSettings {
    fn default() -> Self {
        EcrSettings {
            scan_on_push: true,
            keep_images: default_keep(),
            untagged_days: default_untagged_days(),
        }
    }
}

impl EcrSettings {
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }

    /// Checks the ranges; the message names the key.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        if !(1..=10_000).contains(&self.keep_images) {
            return Err(("keep_images", "must be between 1 and 10000".into()));
        }
        if !(1..=3650).contains(&self.untagged_days) {
            return Err(("untagged_days", "must be between 1 and 3650 days".into()));
        }
        Ok(())
    }

    /// The lifecycle policy text ECR takes (`PutLifecyclePolicy`): untagged images first, then
    /// everything past the newest `keep_images`.
    pub fn lifecycle_policy(&self) -> String {
        json!({"rules": [
            {"rulePriority": 1,
             "description": format!("slipway: untagged images expire after {} days", self.untagged_days),
             "selection": {"tagStatus": "untagged", "countType": "sinceImagePushed",
                           "countUnit": "days", "countNumber": self.untagged_days},
             "action": {"type": "expire"}},
            {"rulePriority": 2,
             "description": format!("slipway: keep the newest {} images", self.keep_images),
             "selection": {"tagStatus": "any", "countType": "imageCountMoreThan",
                           "countNumber": self.keep_images},
             "action": {"type": "expire"}}
        ]})
        .to_string()
    }
}

/// The ECR repository an image is pushed to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EcrRepository {
    /// The account (the registry id).
    pub registry_id: String,
    pub region: String,
    /// The repository name: the image's path (`acme/web`).
    pub name: String,
    pub settings: EcrSettings,
}

/// The ECR repository of `image`, when it goes to ECR.
pub fn ecr_repository(image: &str, settings: EcrSettings) -> Option<EcrRepository> {
    let registry = registry_of(image).ok()?;
    if registry.kind != RegistryKind::Ecr {
        return None;
    }
    let (_, path) = split_registry(image);
    Some(EcrRepository {
        registry_id: registry.host.split('.').next()?.to_string(),
        region: registry.region?,
        name: path.to_string(),
        settings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_ecr_images_have_a_repository() {
        let r = ecr_repository(
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com/acme/web",
            EcrSettings::default(),
        )
        .unwrap();
        assert_eq!(r.registry_id, "123456789012");
        assert_eq!(r.region, "eu-west-1");
        assert_eq!(r.name, "acme/web");
        assert!(ecr_repository("ghcr.io/acme/web", EcrSettings::default()).is_none());
        assert!(ecr_repository("acme/web", EcrSettings::default()).is_none());
    }

    #[test]
    fn the_lifecycle_policy_says_what_the_settings_say() {
        let s = EcrSettings {
            scan_on_push: true,
            keep_images: 7,
            untagged_days: 3,
        };
        let p: serde_json::Value = serde_json::from_str(&s.lifecycle_policy()).unwrap();
        assert_eq!(p["rules"][0]["selection"]["countNumber"], 3);
        assert_eq!(p["rules"][0]["selection"]["tagStatus"], "untagged");
        assert_eq!(p["rules"][1]["selection"]["countNumber"], 7);
        assert!(s.check().is_ok());
        assert!(
            EcrSettings {
                keep_images: 0,
                ..s
            }
            .check()
            .is_err()
        );
    }
}
