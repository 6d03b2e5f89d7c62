//! The build environment: THE contract between the spawner (which starts a CodeBuild build with
//! these variables), `buildspec.yml` (which reads only these variables, always quoted),
//! `slipway build` (which gives the buildspec the same variables on one machine) and the notifier
//! (which reads them back off a CodeBuild "Build State Change" event with [`parse_build_env`]).
//!
//! Every value is validated here before it reaches the buildspec, even though the buildspec
//! never interpolates a value into shell text: a second wall costs nothing, and image names,
//! tags and targets also become argv elements, labels and URL paths in registries.
//! Paths (context, Dockerfile) may hold spaces, quotes and `$(...)`: git allows them, and they
//! only ever travel as data (an environment variable, then one quoted argv element).

use std::collections::BTreeMap;
use std::fmt;

use sha2::{Digest, Sha256};

use crate::build_cache;
use crate::job::{Job, Trigger};
use crate::names::{self, Invalid};
use crate::plan::PlannedImage;

/// The job that planned the build (`push-<delivery>` for pushes).
pub const SLIPWAY_JOB_ID: &str = "SLIPWAY_JOB_ID";
/// `X-GitHub-Delivery` (or the id of what caused a scheduled or child job).
pub const SLIPWAY_DELIVERY_ID: &str = "SLIPWAY_DELIVERY_ID";
/// `push`, `schedule` or `parent`.
pub const SLIPWAY_TRIGGER: &str = "SLIPWAY_TRIGGER";
/// GitHub `owner/name`.
pub const SLIPWAY_REPOSITORY: &str = "SLIPWAY_REPOSITORY";
/// The pushed ref, `refs/heads/...` or `refs/tags/...`.
pub const SLIPWAY_REF: &str = "SLIPWAY_REF";
/// The commit built (40 or 64 hex digits).
pub const SLIPWAY_COMMIT: &str = "SLIPWAY_COMMIT";
/// The image's repository reference without a tag, e.g. `ghcr.io/acme/web`.
pub const SLIPWAY_IMAGE: &str = "SLIPWAY_IMAGE";
/// The tags to push, separated by single spaces (tags cannot hold spaces).
pub const SLIPWAY_TAGS: &str = "SLIPWAY_TAGS";
/// Build context relative to the source root (`.` for the root).
pub const SLIPWAY_CONTEXT: &str = "SLIPWAY_CONTEXT";
/// Dockerfile relative to the source root.
pub const SLIPWAY_DOCKERFILE: &str = "SLIPWAY_DOCKERFILE";
/// Build stage to stop at (empty: the last stage).
pub const SLIPWAY_TARGET: &str = "SLIPWAY_TARGET";
/// Names of the build arguments, separated by single spaces; each value is in
/// `SLIPWAY_BUILD_ARG_<name>` so that a value never needs quoting rules of its own.
pub const SLIPWAY_BUILD_ARGS: &str = "SLIPWAY_BUILD_ARGS";
/// Prefix of the variables holding build argument values.
pub const SLIPWAY_BUILD_ARG_PREFIX: &str = "SLIPWAY_BUILD_ARG_";
/// Target platforms, comma separated (empty: the builder's own). Several make one manifest
/// list per tag.
pub const SLIPWAY_PLATFORMS: &str = "SLIPWAY_PLATFORMS";
/// `true`: platforms without a native builder are built under QEMU on CodeBuild (the buildspec
/// registers the emulators when the engine lacks them).
pub const SLIPWAY_EMULATE: &str = "SLIPWAY_EMULATE";
/// `provenance` to attach a provenance attestation; empty (the default) for none.
pub const SLIPWAY_ATTESTATIONS: &str = "SLIPWAY_ATTESTATIONS";
/// `true`: run `docker-compose.test.yml` (service `sut`) before pushing.
pub const SLIPWAY_AUTOTEST: &str = "SLIPWAY_AUTOTEST";
/// The registry cache reference the build writes (`--cache-to type=registry`, `mode=max`);
/// empty: none (see [`crate::build_cache`]).
pub const SLIPWAY_CACHE_TO: &str = "SLIPWAY_CACHE_TO";
/// Registry cache references the build reads (`--cache-from`), separated by single spaces.
pub const SLIPWAY_CACHE_FROM: &str = "SLIPWAY_CACHE_FROM";
/// The network of the build's `RUN` steps (`docker buildx build --network`): empty for the
/// engine's default (a bridge, as on CodeBuild), `host` for an engine without one. Set by the
/// runner from its settings, not by [`build_env`]: it is the machine's, not the image's.
pub const SLIPWAY_BUILD_NETWORK: &str = "SLIPWAY_BUILD_NETWORK";
/// `https://github.com/owner/name`, the `org.opencontainers.image.source` label.
pub const SLIPWAY_SOURCE_URL: &str = "SLIPWAY_SOURCE_URL";
/// The registry host to log in to (`docker.io`, `ghcr.io`, `host:port`, an ECR host).
pub const SLIPWAY_REGISTRY: &str = "SLIPWAY_REGISTRY";
/// `dockerhub`, `ghcr`, `ecr` or `other`.
pub const SLIPWAY_REGISTRY_KIND: &str = "SLIPWAY_REGISTRY_KIND";
/// The ECR region (ECR only; login goes through the build role).
pub const SLIPWAY_REGISTRY_REGION: &str = "SLIPWAY_REGISTRY_REGION";
/// Registry user name: a `PARAMETER_STORE` variable (absent for ECR).
pub const SLIPWAY_REGISTRY_USER: &str = "SLIPWAY_REGISTRY_USER";
/// Registry password or token: a `PARAMETER_STORE` variable (absent for ECR).
pub const SLIPWAY_REGISTRY_PASSWORD: &str = "SLIPWAY_REGISTRY_PASSWORD";
/// Images of this repository to build when this one succeeds, separated by single spaces.
pub const SLIPWAY_CHILDREN: &str = "SLIPWAY_CHILDREN";
/// Deploy targets (the deploy calls to make) when this one succeeds, separated by spaces.
pub const SLIPWAY_DEPLOY: &str = "SLIPWAY_DEPLOY";
/// The README whose text becomes the repository's description after the push, relative to the
/// source root (see [`crate::readme`]).
pub const SLIPWAY_README: &str = "SLIPWAY_README";
/// How: `dockerhub` (Docker Hub's API, after the push), `annotation` (the
/// `org.opencontainers.image.description` label and annotation, at build time) or `off`.
pub const SLIPWAY_README_SYNC: &str = "SLIPWAY_README_SYNC";
/// Docker Hub's API base URL for the README sync (default `https://hub.docker.com`): not an
/// image's variable but the machine's; `slipway build` and `slipway serve` pass theirs through.
pub const SLIPWAY_DOCKERHUB_API: &str = "SLIPWAY_DOCKERHUB_API";
/// Exported by the buildspec: the digest (`sha256:...`) of the pushed manifest.
pub const SLIPWAY_DIGEST: &str = "SLIPWAY_DIGEST";
/// The repository's default branch (children's jobs carry it on, for the tag rules).
pub const SLIPWAY_DEFAULT_BRANCH: &str = "SLIPWAY_DEFAULT_BRANCH";

/// What one build makes (unset: `image`): `image`, `platform` or `merge`. Only a CodeBuild
/// batch's build graph sets it (see [`crate::build_graph`]), per build of the batch.
pub const SLIPWAY_BUILD_PART: &str = "SLIPWAY_BUILD_PART";
/// The platform a `platform` part builds.
pub const SLIPWAY_PART_PLATFORM: &str = "SLIPWAY_PART_PLATFORM";
/// The platform images a `merge` part lists, `sha256:` digests separated by single spaces; on
/// CodeBuild, unset: the merge reads the other builds of its batch.
pub const SLIPWAY_PLATFORM_DIGESTS: &str = "SLIPWAY_PLATFORM_DIGESTS";

/// Variables the buildspec exports (`env.exported-variables`).
pub const EXPORTED_VARIABLES: &[&str] = &[SLIPWAY_DIGEST];

/// Longest build argument value accepted (CodeBuild's limit on all overrides is far higher; this
/// keeps a message and an event readable).
pub const MAX_BUILD_ARG_VALUE: usize = 4096;

/// Why a build environment could not be made or read back. The message names the field, never
/// the value (a value may be hostile or long).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildEnvError {
    #[error("{field} is invalid: {reason}")]
    Invalid { field: String, reason: String },
    #[error("{0} is missing")]
    Missing(&'static str),
}

impl BuildEnvError {
    /// Stable code for logs and error bodies.
    pub fn code(&self) -> &'static str {
        match self {
            BuildEnvError::Invalid { .. } => "build_env_invalid",
            BuildEnvError::Missing(_) => "build_env_missing",
        }
    }

    fn invalid(field: impl Into<String>, reason: impl fmt::Display) -> Self {
        BuildEnvError::Invalid {
            field: field.into(),
            reason: reason.to_string(),
        }
    }
}

/// How a variable reaches the build: CodeBuild's `PLAINTEXT` or `PARAMETER_STORE` (the value is
/// then a parameter name that CodeBuild resolves inside the build, so no secret passes through
/// the spawner).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VarKind {
    Plain,
    ParameterStore,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildVar {
    pub name: String,
    pub value: String,
    pub kind: VarKind,
}

/// The registry side of the settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrySettings {
    /// Prefix of the credential parameters, e.g. `/slipway`: credentials of namespace `acme` on
    /// Docker Hub are `/slipway/registry/docker.io/acme/username` and `.../password`.
    pub parameter_prefix: String,
}

impl Default for RegistrySettings {
    fn default() -> Self {
        RegistrySettings {
            parameter_prefix: "/slipway".into(),
        }
    }
}

/// What kind of registry an image goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistryKind {
    DockerHub,
    Ghcr,
    Ecr,
    Other,
}

impl RegistryKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RegistryKind::DockerHub => "dockerhub",
            RegistryKind::Ghcr => "ghcr",
            RegistryKind::Ecr => "ecr",
            RegistryKind::Other => "other",
        }
    }
}

/// Where an image name points: registry host, its kind, and the namespace (first path component)
/// that owns the credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registry {
    pub host: String,
    pub kind: RegistryKind,
    pub namespace: String,
    /// ECR only.
    pub region: Option<String>,
}

impl Registry {
    /// The `PARAMETER_STORE` names of the user and password (`None` for ECR: the build role logs in).
    pub fn credential_parameters(&self, settings: &RegistrySettings) -> Option<(String, String)> {
        if self.kind == RegistryKind::Ecr {
            return None;
        }
        let prefix = settings.parameter_prefix.trim_end_matches('/');
        // SSM names allow `a-zA-Z0-9_.-/`: the port separator becomes `_`.
        let host = self.host.replace(':', "_");
        let base = format!("{prefix}/registry/{host}/{}", self.namespace);
        Some((format!("{base}/username"), format!("{base}/password")))
    }
}

/// Validates an image name ([`names::check_image_name`]) and says where it goes: the registry
/// is Docker's split ([`names::split_registry`]), Docker Hub when there is none.
pub fn registry_of(image: &str) -> Result<Registry, Invalid> {
    names::check_image_name(image)?;
    let (host, path) = match names::split_registry(image) {
        (Some(host), path) => (host.to_string(), path),
        (None, path) => ("docker.io".to_string(), path),
    };
    let namespace = if host == "docker.io" && !path.contains('/') {
        "library".to_string()
    } else {
        path.split('/').next().unwrap_or_default().to_string()
    };
    let (kind, region) = if host == "docker.io" {
        (RegistryKind::DockerHub, None)
    } else if host == "ghcr.io" {
        (RegistryKind::Ghcr, None)
    } else if let Some(region) = ecr_region(&host) {
        (RegistryKind::Ecr, Some(region))
    } else {
        (RegistryKind::Other, None)
    };
    Ok(Registry {
        host,
        kind,
        namespace,
        region,
    })
}

/// `123456789012.dkr.ecr.eu-west-1.amazonaws.com` → `eu-west-1`.
fn ecr_region(host: &str) -> Option<String> {
    let rest = host
        .strip_suffix(".amazonaws.com")
        .or_else(|| host.strip_suffix(".amazonaws.com.cn"))?;
    let mut parts = rest.split('.');
    let account = parts.next()?;
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if parts.next()? != "dkr" || parts.next()? != "ecr" {
        return None;
    }
    let region = parts.next()?;
    if parts.next().is_some()
        || region.is_empty()
        || !region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return None;
    }
    Some(region.to_string())
}

/// The commit status context of one image, so that each image reports its own status.
pub fn status_context(image: &str) -> String {
    format!("slipway/{image}")
}

/// CodeBuild's idempotency token for one image of one delivery at one commit: the same triple
/// always gives the same token (64 hex digits), so a retried StartBuild within CodeBuild's
/// five-minute window returns the build already started instead of starting a second one.
pub fn idempotency_token(delivery_id: &str, image: &str, commit: &str) -> String {
    let mut h = Sha256::new();
    // Separators that cannot occur in any of the three keep ("a","bc") apart from ("ab","c").
    h.update(delivery_id.as_bytes());
    h.update([0]);
    h.update(image.as_bytes());
    h.update([0]);
    h.update(commit.as_bytes());
    hex::encode(h.finalize())
}

/// The variables a build of `image` for `job` runs with, in a stable order. Validates every
/// value; an image that fails validation is never built.
pub fn build_env(
    job: &Job,
    image: &PlannedImage,
    registry: &RegistrySettings,
) -> Result<Vec<BuildVar>, BuildEnvError> {
    names::check_job_id(&job.id).map_err(|e| BuildEnvError::invalid("job id", e))?;
    names::check_delivery_id(&job.delivery_id)
        .map_err(|e| BuildEnvError::invalid("delivery id", e))?;
    names::check_repository(&job.repository)
        .map_err(|e| BuildEnvError::invalid("repository", e))?;
    names::check_ref(&job.git_ref).map_err(|e| BuildEnvError::invalid("ref", e))?;
    names::check_branch(&job.default_branch)
        .map_err(|e| BuildEnvError::invalid("default branch", e))?;
    names::check_sha(&image.commit).map_err(|e| BuildEnvError::invalid("commit", e))?;
    let reg = registry_of(&image.name).map_err(|e| BuildEnvError::invalid("image name", e))?;
    if image.tags.is_empty() {
        return Err(BuildEnvError::Missing("tags"));
    }
    for t in &image.tags {
        names::check_tag(t).map_err(|e| BuildEnvError::invalid("tag", e))?;
        if build_cache::is_cache_tag(t) {
            return Err(BuildEnvError::invalid(
                "tag",
                format!(
                    "tags starting with `{}` are reserved for the registry cache",
                    build_cache::CACHE_TAG_PREFIX
                ),
            ));
        }
    }
    names::check_source_path(&image.context).map_err(|e| BuildEnvError::invalid("context", e))?;
    names::check_repo_path(&image.dockerfile)
        .map_err(|e| BuildEnvError::invalid("dockerfile", e))?;
    if let Some(t) = &image.target {
        names::check_name(t).map_err(|e| BuildEnvError::invalid("target", e))?;
    }
    for p in &image.platforms {
        names::check_platform(p).map_err(|e| BuildEnvError::invalid("platform", e))?;
    }
    for a in &image.attestations {
        if a != "provenance" {
            return Err(BuildEnvError::invalid(
                "attestation",
                "the only attestation is `provenance`",
            ));
        }
    }
    for (k, v) in &image.build_args {
        names::check_build_arg_name(k)
            .map_err(|e| BuildEnvError::invalid("build argument name", e))?;
        if v.len() > MAX_BUILD_ARG_VALUE || v.contains('\0') {
            return Err(BuildEnvError::invalid(
                format!("build argument {k}"),
                "must be at most 4096 bytes with no NUL",
            ));
        }
    }
    for c in &image.children {
        names::check_image_name(c).map_err(|e| BuildEnvError::invalid("child image name", e))?;
    }
    for d in &image.deploy {
        names::check_name(d).map_err(|e| BuildEnvError::invalid("deploy target", e))?;
    }
    let readme = image
        .readme
        .clone()
        .unwrap_or_else(|| crate::readme::default_readme(&image.context));
    names::check_repo_path(&readme).map_err(|e| BuildEnvError::invalid("readme", e))?;
    let trigger = match &job.trigger {
        Trigger::Push => "push",
        Trigger::Schedule { .. } => "schedule",
        Trigger::Parent { .. } => "parent",
    };

    let mut vars = Vec::new();
    let mut plain = |name: &str, value: String| {
        vars.push(BuildVar {
            name: name.to_string(),
            value,
            kind: VarKind::Plain,
        })
    };
    plain(SLIPWAY_JOB_ID, job.id.clone());
    plain(SLIPWAY_DELIVERY_ID, job.delivery_id.clone());
    plain(SLIPWAY_TRIGGER, trigger.into());
    plain(SLIPWAY_REPOSITORY, job.repository.clone());
    plain(SLIPWAY_REF, job.git_ref.clone());
    plain(SLIPWAY_DEFAULT_BRANCH, job.default_branch.clone());
    plain(SLIPWAY_COMMIT, image.commit.clone());
    plain(SLIPWAY_IMAGE, image.name.clone());
    plain(SLIPWAY_TAGS, image.tags.join(" "));
    plain(SLIPWAY_CONTEXT, image.context.clone());
    plain(SLIPWAY_DOCKERFILE, image.dockerfile.clone());
    plain(SLIPWAY_TARGET, image.target.clone().unwrap_or_default());
    let arg_names: Vec<&str> = image.build_args.keys().map(String::as_str).collect();
    plain(SLIPWAY_BUILD_ARGS, arg_names.join(" "));
    for (k, v) in &image.build_args {
        plain(&format!("{SLIPWAY_BUILD_ARG_PREFIX}{k}"), v.clone());
    }
    plain(SLIPWAY_PLATFORMS, image.platforms.join(","));
    plain(SLIPWAY_EMULATE, image.emulate.to_string());
    plain(SLIPWAY_ATTESTATIONS, image.attestations.join(","));
    plain(SLIPWAY_AUTOTEST, image.autotest.to_string());
    let cache = build_cache::cache_refs(&image.name, &job.git_ref, &job.default_branch);
    plain(SLIPWAY_CACHE_TO, cache.to.unwrap_or_default());
    plain(SLIPWAY_CACHE_FROM, cache.from.join(" "));
    plain(
        SLIPWAY_SOURCE_URL,
        format!("https://github.com/{}", job.repository),
    );
    plain(SLIPWAY_REGISTRY, reg.host.clone());
    plain(SLIPWAY_REGISTRY_KIND, reg.kind.as_str().into());
    if let Some(region) = &reg.region {
        plain(SLIPWAY_REGISTRY_REGION, region.clone());
    }
    plain(SLIPWAY_CHILDREN, image.children.join(" "));
    plain(SLIPWAY_DEPLOY, image.deploy.join(" "));
    plain(SLIPWAY_README, readme);
    plain(
        SLIPWAY_README_SYNC,
        image.readme_sync.resolve(&reg.host).into(),
    );
    if let Some((user, password)) = reg.credential_parameters(registry) {
        for (name, value) in [
            (SLIPWAY_REGISTRY_USER, user),
            (SLIPWAY_REGISTRY_PASSWORD, password),
        ] {
            vars.push(BuildVar {
                name: name.into(),
                value,
                kind: VarKind::ParameterStore,
            });
        }
    }
    Ok(vars)
}

/// What the notifier (and `slipway serve`) learns about a build from its variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildInfo {
    pub job_id: String,
    pub delivery_id: String,
    pub trigger: String,
    pub repository: String,
    pub git_ref: String,
    /// Empty when the build predates the variable.
    pub default_branch: String,
    pub commit: String,
    pub image: String,
    pub tags: Vec<String>,
    pub children: Vec<String>,
    pub deploy: Vec<String>,
    pub autotest: bool,
    /// From the exported variables, once the build pushed.
    pub digest: Option<String>,
    /// Which part of the image this build made.
    pub part: BuildPart,
}

/// What one build makes (`SLIPWAY_BUILD_PART`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum BuildPart {
    /// The whole image: every platform, pushed under every tag.
    #[default]
    Image,
    /// One platform of a CodeBuild batch, pushed by digest; the merge reports the image.
    Platform(String),
    /// The list of a CodeBuild batch: reports the image.
    Merge,
}

/// Reads a build's variables back (environment variables and exported variables of a CodeBuild
/// event, in any order; unknown names are ignored). Values are validated again: an event is
/// input like any other.
pub fn parse_build_env<I, K, V>(vars: I) -> Result<BuildInfo, BuildEnvError>
where
    I: IntoIterator<Item = (K, V)>,
    K: AsRef<str>,
    V: AsRef<str>,
{
    let map: BTreeMap<String, String> = vars
        .into_iter()
        .map(|(k, v)| (k.as_ref().to_string(), v.as_ref().to_string()))
        .collect();
    let get = |name: &'static str| map.get(name).cloned().ok_or(BuildEnvError::Missing(name));
    let words = |name: &'static str| -> Vec<String> {
        map.get(name)
            .map(|v| v.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default()
    };
    let info = BuildInfo {
        job_id: get(SLIPWAY_JOB_ID)?,
        delivery_id: get(SLIPWAY_DELIVERY_ID)?,
        trigger: map.get(SLIPWAY_TRIGGER).cloned().unwrap_or_default(),
        repository: get(SLIPWAY_REPOSITORY)?,
        git_ref: get(SLIPWAY_REF)?,
        default_branch: map.get(SLIPWAY_DEFAULT_BRANCH).cloned().unwrap_or_default(),
        commit: get(SLIPWAY_COMMIT)?,
        image: get(SLIPWAY_IMAGE)?,
        tags: words(SLIPWAY_TAGS),
        children: words(SLIPWAY_CHILDREN),
        deploy: words(SLIPWAY_DEPLOY),
        autotest: map.get(SLIPWAY_AUTOTEST).is_some_and(|v| v == "true"),
        digest: map.get(SLIPWAY_DIGEST).filter(|d| !d.is_empty()).cloned(),
        part: match map.get(SLIPWAY_BUILD_PART).map(String::as_str) {
            None | Some("") | Some("image") => BuildPart::Image,
            Some("merge") => BuildPart::Merge,
            Some("platform") => {
                let p = map.get(SLIPWAY_PART_PLATFORM).cloned().unwrap_or_default();
                names::check_platform(&p)
                    .map_err(|e| BuildEnvError::invalid("part platform", e))?;
                BuildPart::Platform(p)
            }
            Some(_) => {
                return Err(BuildEnvError::invalid(
                    "build part",
                    "must be image, platform or merge",
                ));
            }
        },
    };
    names::check_job_id(&info.job_id).map_err(|e| BuildEnvError::invalid("job id", e))?;
    names::check_delivery_id(&info.delivery_id)
        .map_err(|e| BuildEnvError::invalid("delivery id", e))?;
    if !matches!(info.trigger.as_str(), "" | "push" | "schedule" | "parent") {
        return Err(BuildEnvError::invalid(
            "trigger",
            "must be push, schedule or parent",
        ));
    }
    names::check_repository(&info.repository)
        .map_err(|e| BuildEnvError::invalid("repository", e))?;
    names::check_ref(&info.git_ref).map_err(|e| BuildEnvError::invalid("ref", e))?;
    if !info.default_branch.is_empty() {
        names::check_branch(&info.default_branch)
            .map_err(|e| BuildEnvError::invalid("default branch", e))?;
    }
    names::check_sha(&info.commit).map_err(|e| BuildEnvError::invalid("commit", e))?;
    names::check_image_name(&info.image).map_err(|e| BuildEnvError::invalid("image name", e))?;
    for t in &info.tags {
        names::check_tag(t).map_err(|e| BuildEnvError::invalid("tag", e))?;
    }
    for c in &info.children {
        names::check_image_name(c).map_err(|e| BuildEnvError::invalid("child image name", e))?;
    }
    for d in &info.deploy {
        names::check_name(d).map_err(|e| BuildEnvError::invalid("deploy target", e))?;
    }
    if let Some(d) = &info.digest {
        names::check_digest(d).map_err(|e| BuildEnvError::invalid("digest", e))?;
    }
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::PlannedImage;

    const SHA: &str = "6113728f27ae82c7b1a177c8d03f9e96e0adf246";

    fn job() -> Job {
        Job {
            id: "push-72d3162e-cc78-11e3-81ab-4c9367dc0958".into(),
            trigger: Trigger::Push,
            delivery_id: "72d3162e-cc78-11e3-81ab-4c9367dc0958".into(),
            repository: "acme/site".into(),
            clone_url: "https://github.com/acme/site.git".into(),
            private: false,
            default_branch: "main".into(),
            git_ref: "refs/heads/main".into(),
            before: "0".repeat(40),
            after: SHA.into(),
            commit: SHA.into(),
            created: false,
            forced: false,
            changed_paths: vec![],
            changes_incomplete: None,
            images: vec![],
        }
    }

    fn image(name: &str, context: &str) -> PlannedImage {
        let dockerfile = if context == "." {
            "Dockerfile".to_string()
        } else {
            format!("{context}/Dockerfile")
        };
        // From JSON, as the planner hands it over: fields added later keep their defaults.
        serde_json::from_value(serde_json::json!({
            "name": name,
            "context": context,
            "dockerfile": dockerfile,
            "commit": SHA,
            "tags": ["main", "sha-6113728"],
            "build_args": {"VERSION": "1 $(id) ';'"},
            "target": "runtime",
            "autotest": true,
            "reasons": ["web/index.html"],
            "order": 0,
            "children": ["acme/web-debug"],
            "deploy": ["prod-web"],
        }))
        .unwrap()
    }

    fn get<'a>(vars: &'a [BuildVar], name: &str) -> &'a BuildVar {
        vars.iter()
            .find(|v| v.name == name)
            .unwrap_or_else(|| panic!("{name} missing"))
    }

    #[test]
    fn docker_hub_image_gets_every_variable_and_parameter_store_credentials() {
        let vars = build_env(
            &job(),
            &image("acme/web", "web"),
            &RegistrySettings::default(),
        )
        .unwrap();
        assert_eq!(get(&vars, SLIPWAY_TAGS).value, "main sha-6113728");
        assert_eq!(get(&vars, SLIPWAY_BUILD_ARGS).value, "VERSION");
        assert_eq!(get(&vars, "SLIPWAY_BUILD_ARG_VERSION").value, "1 $(id) ';'");
        assert_eq!(
            get(&vars, SLIPWAY_CACHE_TO).value,
            "acme/web:buildcache-main"
        );
        assert_eq!(
            get(&vars, SLIPWAY_CACHE_FROM).value,
            "acme/web:buildcache-main"
        );
        assert_eq!(get(&vars, SLIPWAY_ATTESTATIONS).value, "");
        assert_eq!(get(&vars, SLIPWAY_EMULATE).value, "false");
        assert_eq!(get(&vars, SLIPWAY_REGISTRY).value, "docker.io");
        assert_eq!(get(&vars, SLIPWAY_REGISTRY_KIND).value, "dockerhub");
        assert_eq!(get(&vars, SLIPWAY_TARGET).value, "runtime");
        assert_eq!(get(&vars, SLIPWAY_AUTOTEST).value, "true");
        assert_eq!(get(&vars, SLIPWAY_CHILDREN).value, "acme/web-debug");
        assert_eq!(get(&vars, SLIPWAY_DEPLOY).value, "prod-web");
        assert_eq!(get(&vars, SLIPWAY_README).value, "web/README.md");
        assert_eq!(get(&vars, SLIPWAY_README_SYNC).value, "dockerhub");
        assert_eq!(
            get(&vars, SLIPWAY_SOURCE_URL).value,
            "https://github.com/acme/site"
        );
        let pw = get(&vars, SLIPWAY_REGISTRY_PASSWORD);
        assert_eq!(pw.kind, VarKind::ParameterStore);
        assert_eq!(pw.value, "/slipway/registry/docker.io/acme/password");
        let user = get(&vars, SLIPWAY_REGISTRY_USER);
        assert_eq!(user.kind, VarKind::ParameterStore);
        assert_eq!(user.value, "/slipway/registry/docker.io/acme/username");
        // Only the two credential variables are parameters.
        assert_eq!(
            vars.iter()
                .filter(|v| v.kind == VarKind::ParameterStore)
                .count(),
            2
        );
    }

    #[test]
    fn registries_and_namespaces() {
        let r = registry_of("ghcr.io/acme/web").unwrap();
        assert_eq!((r.host.as_str(), r.kind), ("ghcr.io", RegistryKind::Ghcr));
        assert_eq!(
            r.credential_parameters(&RegistrySettings::default())
                .unwrap()
                .1,
            "/slipway/registry/ghcr.io/acme/password"
        );
        let r = registry_of("127.0.0.1:5056/t/web").unwrap();
        assert_eq!(r.kind, RegistryKind::Other);
        assert_eq!(
            r.credential_parameters(&RegistrySettings {
                parameter_prefix: "/x/".into()
            })
            .unwrap()
            .0,
            "/x/registry/127.0.0.1_5056/t/username"
        );
        let r = registry_of("123456789012.dkr.ecr.eu-west-1.amazonaws.com/web").unwrap();
        assert_eq!(r.kind, RegistryKind::Ecr);
        assert_eq!(r.region.as_deref(), Some("eu-west-1"));
        assert!(
            r.credential_parameters(&RegistrySettings::default())
                .is_none()
        );
        assert_eq!(registry_of("nginx").unwrap().namespace, "library");
    }

    #[test]
    fn ecr_images_have_no_credentials() {
        let vars = build_env(
            &job(),
            &image("123456789012.dkr.ecr.us-east-1.amazonaws.com/acme/web", "."),
            &RegistrySettings::default(),
        )
        .unwrap();
        assert!(vars.iter().all(|v| v.kind == VarKind::Plain));
        assert_eq!(get(&vars, SLIPWAY_REGISTRY_REGION).value, "us-east-1");
        assert_eq!(get(&vars, SLIPWAY_CONTEXT).value, ".");
        assert_eq!(get(&vars, SLIPWAY_README).value, "README.md");
        assert_eq!(get(&vars, SLIPWAY_README_SYNC).value, "annotation");
    }

    #[test]
    fn readme_settings_reach_the_build() {
        let settings = RegistrySettings::default();
        let mut i = image("ghcr.io/acme/web", "web");
        i.readme = Some("docs/HUB.md".into());
        i.readme_sync = crate::readme::ReadmeSync::Dockerhub;
        let vars = build_env(&job(), &i, &settings).unwrap();
        assert_eq!(get(&vars, SLIPWAY_README).value, "docs/HUB.md");
        assert_eq!(get(&vars, SLIPWAY_README_SYNC).value, "dockerhub");
        i.readme_sync = crate::readme::ReadmeSync::Off;
        let vars = build_env(&job(), &i, &settings).unwrap();
        assert_eq!(get(&vars, SLIPWAY_README_SYNC).value, "off");
        for bad in ["../x.md", "/etc/passwd", "a/./b", ""] {
            i.readme = Some(bad.into());
            let err = build_env(&job(), &i, &settings).unwrap_err();
            assert_eq!(err.code(), "build_env_invalid", "{bad}");
        }
        let vars = build_env(&job(), &image("index.docker.io/acme/web", "web"), &settings).unwrap();
        assert_eq!(get(&vars, SLIPWAY_README_SYNC).value, "dockerhub");
    }

    #[test]
    fn hostile_values_are_refused_but_hostile_paths_are_data() {
        let settings = RegistrySettings::default();
        for bad_name in ["acme/web;id", "Acme/Web", "acme/$(id)", "acme/web:tag", ""] {
            let err = build_env(&job(), &image(bad_name, "web"), &settings).unwrap_err();
            assert_eq!(err.code(), "build_env_invalid", "{bad_name}");
            assert!(!err.to_string().contains(bad_name) || bad_name.is_empty());
        }
        let mut i = image("acme/web", "web");
        i.tags = vec!["ok".into(), "a;b".into()];
        assert!(build_env(&job(), &i, &settings).is_err());
        let mut i = image("acme/web", "web");
        i.target = Some("$(id)".into());
        assert!(build_env(&job(), &i, &settings).is_err());
        let mut i = image("acme/web", "web");
        i.build_args.insert("A B".into(), "x".into());
        assert!(build_env(&job(), &i, &settings).is_err());
        let mut i = image("acme/web", "../etc");
        i.dockerfile = "Dockerfile".into();
        assert!(build_env(&job(), &i, &settings).is_err());
        // Shell metacharacters in a directory name are legal and travel as data.
        for ctx in ["a;touch /tmp/pwned", "$(id)", "it's \"quoted\" here"] {
            let vars = build_env(&job(), &image("acme/web", ctx), &settings).unwrap();
            assert_eq!(get(&vars, SLIPWAY_CONTEXT).value, ctx);
        }
    }

    #[test]
    fn tokens_are_stable_short_and_distinct() {
        let a = idempotency_token("d1", "acme/web", SHA);
        assert_eq!(a, idempotency_token("d1", "acme/web", SHA));
        assert_eq!(a.len(), 64);
        assert_ne!(a, idempotency_token("d1", "acme/api", SHA));
        assert_ne!(a, idempotency_token("d2", "acme/web", SHA));
        assert_ne!(
            idempotency_token("ab", "c", SHA),
            idempotency_token("a", "bc", SHA)
        );
        assert_eq!(status_context("acme/web"), "slipway/acme/web");
    }

    #[test]
    fn parse_reads_back_what_build_env_wrote() {
        let mut i = image("ghcr.io/acme/web", "web");
        i.deploy = vec!["prod".into(), "staging".into()];
        let vars = build_env(&job(), &i, &RegistrySettings::default()).unwrap();
        let digest = format!("sha256:{}", "ab".repeat(32));
        let info = parse_build_env(
            vars.iter()
                .map(|v| (v.name.clone(), v.value.clone()))
                .chain([(SLIPWAY_DIGEST.to_string(), digest.clone())]),
        )
        .unwrap();
        assert_eq!(info.image, "ghcr.io/acme/web");
        assert_eq!(info.tags, vec!["main", "sha-6113728"]);
        assert_eq!(info.children, vec!["acme/web-debug"]);
        assert_eq!(info.deploy, vec!["prod", "staging"]);
        assert_eq!(info.commit, SHA);
        assert_eq!(info.git_ref, "refs/heads/main");
        assert_eq!(info.trigger, "push");
        assert!(info.autotest);
        assert_eq!(info.digest, Some(digest));

        let err = parse_build_env([(SLIPWAY_JOB_ID, "x")]).unwrap_err();
        assert_eq!(err.code(), "build_env_missing");
        let mut bad: Vec<(String, String)> = vars
            .iter()
            .map(|v| (v.name.clone(), v.value.clone()))
            .collect();
        bad.push((SLIPWAY_DIGEST.into(), "sha256:$(id)".into()));
        assert!(parse_build_env(bad).is_err());
    }
}
