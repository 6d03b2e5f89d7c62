//! `slipway agent --config FILE`: the TOML file. Secrets are never inline: each names a file or
//! an environment variable to read it from.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use slipway_core::deploy::{self, DeploySecret, MIN_SECRET_BYTES, Verifier};

use crate::Error;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address to listen on; loopback by default because the agent belongs behind a proxy.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// The docker client, as argv (`["docker"]`).
    #[serde(default = "default_docker")]
    pub docker: Vec<String>,
    /// The compose client, as argv: `["docker-compose"]` (v1) or `["docker", "compose"]` (v2).
    #[serde(default = "default_compose")]
    pub compose: Vec<String>,
    /// How long a recreated service has to become healthy before it is rolled back.
    #[serde(default = "default_health_timeout")]
    pub health_timeout_secs: u64,
    /// A container without a health check counts as healthy after running this long.
    #[serde(default = "default_min_running")]
    pub min_running_secs: u64,
    /// Remove the previous image after a successful deploy.
    #[serde(default)]
    pub remove_old_images: bool,
    /// A request for a service whose deploy is running joins the queued deploy (true) or is
    /// refused with 409 (false).
    #[serde(default = "default_true")]
    pub coalesce: bool,
    /// Also accept docker-delivery-hook's `X-Signature`/`X-Timestamp` scheme.
    #[serde(default)]
    pub delivery_hook_compat: bool,
    /// Prefix a reverse proxy strips before the agent sees the path; prepended when verifying
    /// signatures, because clients sign the path they request.
    #[serde(default)]
    pub path_prefix: String,
    #[serde(default = "default_nonce_capacity")]
    pub nonce_capacity: usize,
    #[serde(default, rename = "secret")]
    pub secrets: Vec<SecretConfig>,
    #[serde(default)]
    pub dockerhub: Vec<DockerHubConfig>,
    #[serde(default, rename = "service")]
    pub services: Vec<ServiceConfig>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretConfig {
    pub name: String,
    pub file: Option<PathBuf>,
    pub env: Option<String>,
    pub services: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DockerHubConfig {
    pub name: String,
    pub token_file: Option<PathBuf>,
    pub token_env: Option<String>,
    /// Services pulled and recreated when this hook is called.
    pub services: Vec<String>,
    /// When set, the webhook's `repository.repo_name` must be this.
    pub repository: Option<String>,
    /// Origins (`https://registry.hub.docker.com`) the callback URL may point to.
    #[serde(default)]
    pub callback_allow: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    pub name: String,
    /// Polled after recreating (2xx = healthy), in addition to the container's health check.
    pub health_url: Option<String>,
    pub health_timeout_secs: Option<u64>,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8470))
}
fn default_docker() -> Vec<String> {
    vec!["docker".into()]
}
fn default_compose() -> Vec<String> {
    vec!["docker-compose".into()]
}
fn default_health_timeout() -> u64 {
    120
}
fn default_min_running() -> u64 {
    3
}
fn default_true() -> bool {
    true
}
fn default_nonce_capacity() -> usize {
    deploy::DEFAULT_NONCE_CAPACITY
}

/// A loaded Docker Hub hook: its token (never logged) and settings.
pub struct DockerHubHook {
    pub name: String,
    pub token: String,
    pub services: Vec<String>,
    pub repository: Option<String>,
    pub callback_allow: Vec<String>,
}

fn read_secret(what: &str, file: &Option<PathBuf>, env: &Option<String>) -> Result<String, Error> {
    let value = match (file, env) {
        (Some(path), None) => std::fs::read_to_string(path)
            .map_err(|e| format!("{what}: cannot read {}: {e}", path.display()))?,
        (None, Some(var)) => std::env::var(var)
            .map_err(|_| format!("{what}: environment variable {var} is not set"))?,
        _ => return Err(format!("{what}: give exactly one of `file` and `env`").into()),
    };
    Ok(value.trim().to_string())
}

impl Config {
    pub fn load(path: &Path) -> Result<Self, Error> {
        let raw = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let config: Config =
            toml::from_str(&raw).map_err(|e| format!("{}: {e}", path.display()))?;
        if config.docker.is_empty() || config.compose.is_empty() {
            return Err("`docker` and `compose` must name a program".into());
        }
        for s in &config.services {
            slipway_core::names::check_service(&s.name)
                .map_err(|e| format!("service `{}`: {e}", s.name))?;
        }
        if !config.path_prefix.is_empty()
            && (!config.path_prefix.starts_with('/') || config.path_prefix.ends_with('/'))
        {
            return Err("`path_prefix` must start with `/` and not end with one".into());
        }
        Ok(config)
    }

    pub fn verifier(&self) -> Result<Verifier, Error> {
        let mut secrets = Vec::new();
        for s in &self.secrets {
            let value = read_secret(&format!("secret `{}`", s.name), &s.file, &s.env)?;
            secrets.push(DeploySecret::new(
                &s.name,
                value.as_bytes(),
                s.services.clone(),
            )?);
        }
        let mut verifier = Verifier::new(secrets)?;
        verifier.delivery_hook_compat = self.delivery_hook_compat;
        Ok(verifier)
    }

    pub fn dockerhub_hooks(&self) -> Result<Vec<DockerHubHook>, Error> {
        let mut hooks = Vec::new();
        for h in &self.dockerhub {
            let what = format!("dockerhub hook `{}`", h.name);
            let token = read_secret(&what, &h.token_file, &h.token_env)?;
            // The token is the only credential of a Docker Hub hook: it must be unguessable.
            if token.len() < 32
                || !token
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(format!(
                    "{what}: the token must be at least 32 characters of A-Z a-z 0-9 _ - (at least {MIN_SECRET_BYTES} random bytes)"
                )
                .into());
            }
            if h.services.is_empty() {
                return Err(format!("{what}: list the services it redeploys").into());
            }
            for s in &h.services {
                slipway_core::names::check_service(s).map_err(|e| format!("{what}: {e}"))?;
            }
            for origin in &h.callback_allow {
                url_origin_ok(origin)
                    .map_err(|e| format!("{what}: callback_allow `{origin}`: {e}"))?;
            }
            hooks.push(DockerHubHook {
                name: h.name.clone(),
                token,
                services: h.services.clone(),
                repository: h.repository.clone(),
                callback_allow: h.callback_allow.clone(),
            });
        }
        Ok(hooks)
    }

    pub fn service(&self, requested: &str, qualified: &str) -> Option<&ServiceConfig> {
        self.services
            .iter()
            .find(|s| s.name == qualified)
            .or_else(|| self.services.iter().find(|s| s.name == requested))
    }
}

fn url_origin_ok(origin: &str) -> Result<(), &'static str> {
    let (scheme, rest) = origin
        .split_once("://")
        .ok_or("must be scheme://host[:port]")?;
    if !matches!(scheme, "http" | "https")
        || rest.is_empty()
        || rest.contains('/')
        || rest.contains('@')
    {
        return Err("must be http(s)://host[:port] with no path");
    }
    Ok(())
}
