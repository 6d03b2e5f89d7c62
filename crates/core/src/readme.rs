//! README sync (issue 18): after a push, the image's README becomes its repository's description,
//! as Docker Hub's Automated Builds showed it. Docker Hub images get it through Docker Hub's API
//! (`full_description` and the short `description`); any other registry gets the README's first
//! line as the `org.opencontainers.image.description` label and annotation of the image, which
//! GHCR and most registry UIs show. The buildspec does the work (see `buildspec.yml`); this module
//! decides which of the two an image gets.

use serde::{Deserialize, Serialize};

/// The README of an image when `slipway.toml` names none: `README.md` of its build context.
pub const DEFAULT_README: &str = "README.md";

/// Docker Hub keeps at most this many bytes of `full_description`; a longer README is cut.
pub const DOCKER_HUB_FULL_DESCRIPTION_MAX: usize = 25_000;

/// Docker Hub's short `description` (and the annotation) holds at most this many characters.
pub const SHORT_DESCRIPTION_MAX: usize = 100;

/// Hosts that are Docker Hub (an image name without a host is Docker Hub too).
pub const DOCKER_HUB_HOSTS: &[&str] = &["docker.io", "index.docker.io", "registry-1.docker.io"];

/// `readme_sync` of `slipway.toml`: how an image's README becomes its description.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReadmeSync {
    /// Docker Hub's API for Docker Hub images, the annotation for every other registry.
    #[default]
    Auto,
    /// Docker Hub's API whatever the image's host (a Docker Hub image named through another
    /// host, or a registry that serves Docker Hub's API).
    Dockerhub,
    /// The `org.opencontainers.image.description` label and annotation only.
    Annotation,
    /// No README sync.
    Off,
}

impl ReadmeSync {
    pub fn is_default(&self) -> bool {
        *self == ReadmeSync::Auto
    }

    /// What the buildspec does for an image on registry `host` (`SLIPWAY_README_SYNC`):
    /// `dockerhub`, `annotation` or `off`; never `auto`.
    pub fn resolve(self, host: &str) -> &'static str {
        match self {
            ReadmeSync::Auto if DOCKER_HUB_HOSTS.contains(&host) => "dockerhub",
            ReadmeSync::Auto | ReadmeSync::Annotation => "annotation",
            ReadmeSync::Dockerhub => "dockerhub",
            ReadmeSync::Off => "off",
        }
    }
}

/// The README of an image at `context` when none is configured, repository-relative.
pub fn default_readme(context: &str) -> String {
    if context == "." {
        DEFAULT_README.to_string()
    } else {
        format!("{context}/{DEFAULT_README}")
    }
}

/// The short description Docker Hub and the annotation get: the README's first non-empty line
/// without Markdown heading marks, at most [`SHORT_DESCRIPTION_MAX`] characters. The buildspec
/// computes the same with jq; this is its specification, tested against it.
pub fn short_description(readme: &str) -> String {
    for line in readme.lines() {
        let t = line.trim();
        let t = t.trim_start_matches('#').trim();
        let t = t.trim_end_matches('#').trim();
        if !t.is_empty() {
            return t.chars().take(SHORT_DESCRIPTION_MAX).collect();
        }
    }
    String::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_is_docker_hubs_api_on_docker_hub_only() {
        for host in DOCKER_HUB_HOSTS {
            assert_eq!(ReadmeSync::Auto.resolve(host), "dockerhub");
        }
        assert_eq!(ReadmeSync::Auto.resolve("ghcr.io"), "annotation");
        assert_eq!(ReadmeSync::Auto.resolve("127.0.0.1:5000"), "annotation");
        assert_eq!(ReadmeSync::Dockerhub.resolve("127.0.0.1:5000"), "dockerhub");
        assert_eq!(ReadmeSync::Annotation.resolve("docker.io"), "annotation");
        assert_eq!(ReadmeSync::Off.resolve("docker.io"), "off");
        assert_eq!(default_readme("."), "README.md");
        assert_eq!(default_readme("web"), "web/README.md");
    }

    #[test]
    fn short_description_is_the_first_line_without_heading_marks() {
        assert_eq!(short_description("\n\n  # Web app #\nmore"), "Web app");
        assert_eq!(short_description("Plain\n===="), "Plain");
        assert_eq!(short_description(""), "");
        assert_eq!(short_description(&"é".repeat(150)).chars().count(), 100);
    }
}
