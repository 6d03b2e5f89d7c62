//! `slipway serve`'s configuration: a TOML file whose every key has a default that works on a
//! laptop. `slipway serve --print-config` prints [`EXAMPLE`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use slipway_core::calls::{AuthConfig, CallTarget, StatusList, TargetConfig};
use slipway_core::listener::{DEFAULT_MAX_BODY_BYTES, ListenerConfig};
use slipway_core::schedule::{ScheduleExpr, ScheduledRebuild};
use slipway_core::{RefRules, RepoFilter, WebhookSecrets};
use slipway_git::{CloneRules, Source};

/// The example printed by `--print-config`: every key, at its default, with what it does.
pub const EXAMPLE: &str = r#"# slipway serve configuration. Every key is optional; the values shown are the defaults.

# Where the HTTP server listens. Keep it on 127.0.0.1 behind a reverse proxy (TLS) when GitHub
# must reach it.
listen = "127.0.0.1:8080"

# The job queue, build history and build logs (SQLite and files).
# Default: $XDG_DATA_HOME/slipway, else ~/.local/share/slipway.
# data_dir = "/var/lib/slipway"

# The webhook secret: read from this environment variable, or from secret_file (one secret per
# line; several lines while rotating). At least 16 bytes.
secret_env = "SLIPWAY_WEBHOOK_SECRET"
# secret_file = "/etc/slipway/webhook-secret"

# Where images go: `acme` (Docker Hub), `ghcr.io/acme`, `127.0.0.1:5000/team`.
namespace = "localhost:5000/slipway"

# Registry credentials for the builds, as `slipway build --secrets-file` reads them: lines
# `<parameter_prefix>/registry/<host with : as _>/<namespace>/username=...` and `.../password=...`.
# Parameters not in the file are read from SLIPWAY_SECRET_<NAME>.
# registry_secrets_file = "/etc/slipway/registry-secrets"
parameter_prefix = "/slipway"

# Which pushes are built: repositories (owner/name globs, `*` for all), branches (`$default` is
# the repository's default branch) and tags.
repositories = "*"
branches = "$default"
tags = "*"
allow_private = true
# `file://` clone URLs: lets slipway build repositories on this machine (slipway replay --repo).
allow_file_clone_urls = true

# How many images build at once.
concurrency = 2
# A newer push to the same ref cancels the queued builds of the same images from older pushes.
cancel_superseded = true
# Build history kept per image (older builds and their logs are deleted).
keep_builds_per_image = 50
# Deploy agents told when an image with `deploy = ["name"]` in slipway.toml is pushed: a JSON
# file {"name": {"url": "http://127.0.0.1:8090/deploys", "service": "web", "secret_file": "..."}}.
# deploy_targets_file = "/etc/slipway/deploy-targets.json"
# The buildspec the builds run (default: the one slipway ships).
# buildspec = "/etc/slipway/buildspec.yml"
# The network of the builds' RUN steps (`docker buildx build --network`): "" for the engine's
# default bridge, "host" for an engine started without one (`--bridge=none`), "none".
# Default: the environment variable SLIPWAY_BUILD_NETWORK, else "".
# build_network = "host"

# Finished builds, their logs and leftover work directories are deleted this many days after
# they ended (1 to 3650); queued and running builds never are. Checked at start, then daily.
retention_days = 30

# Webhook targets: every finished build's notification (its JSON form) is POSTed to each, with
# a timeout, retries with backoff on timeouts, connection errors, 5xx, 408 and 429, and a few
# targets at once. A failing target is logged and reported; it never holds up the builds.
# [[webhook]]
# name = "chat"                          # letters, digits, `.`, `_`, `-`
# url = "https://hooks.example.com/slipway"
# headers = { "X-Team" = "platform" }     # optional
# auth = { scheme = "bearer", file = "/etc/slipway/chat-token" }   # or scheme = "basic", username = "..."
# secret_file = "/etc/slipway/chat-signing"   # signs the body: X-Slipway-Signature-256: sha256=<HMAC>
# timeout_seconds = 10                   # 0.05 to 300
# retries = 2                            # 0 to 10
# expected_status = 200                  # default: any 2xx

# Scheduled rebuilds, run by slipway serve itself (EventBridge's grammar, in UTC): when due,
# the branch head is resolved and a job is queued for it. With no `images`, the images with a
# `schedule` in slipway.toml are built.
# [[schedule]]
# name = "nightly-base"                  # letters, digits and `-`
# expression = "cron(0 3 * * ? *)"      # or "rate(1 day)"
# repository = "/srv/git/images"         # a local repository, or an https:// / file:// clone URL
# repository_name = "acme/images"        # owner/name (default: from the URL or the directory)
# branch = "main"                        # default: the repository's default branch
# images = ["acme/base"]

# The web pages (/, /web/...), the JSON history, the logs and /metrics. Without a [web] section
# they are open to whoever reaches `listen` (127.0.0.1 by default). With one, they need basic
# auth (browsers) or `Authorization: Bearer <token>` (scripts, Prometheus); cancel and retry
# always do. Badges, /healthz and /hooks/github stay public.
# [web]
# username = "ops"                       # basic auth, with the password in password_file
# password_file = "/etc/slipway/web-password"
# token_file = "/etc/slipway/web-token"  # a bearer token, at least 16 bytes
# public_read = false                    # true: reading needs no credentials, cancel and retry do
# origin = "https://ci.example.com"      # the public origin behind a reverse proxy (CSRF check)
"#;

/// A `[[webhook]]` entry: a `slipway_core::calls` target without `method` and `body`
/// (always a `POST` of the notification), plus an optional signing secret.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    pub name: String,
    pub url: String,
    #[serde(default)]
    pub headers: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    pub auth: Option<AuthConfig>,
    #[serde(default)]
    pub timeout_seconds: Option<f64>,
    #[serde(default)]
    pub expected_status: Option<StatusList>,
    #[serde(default)]
    pub retries: Option<u32>,
    /// Signs each body like GitHub does (`X-Slipway-Signature-256: sha256=<hex HMAC-SHA256>`)
    /// with this file's content.
    #[serde(default)]
    pub secret_file: Option<PathBuf>,
}

/// A validated webhook target and its signing secret's file.
#[derive(Debug, Clone)]
pub struct Webhook {
    pub target: CallTarget,
    pub secret_file: Option<PathBuf>,
}

/// The header carrying a webhook body's signature.
pub const WEBHOOK_SIGNATURE_HEADER: &str = "x-slipway-signature-256";

/// A `[[schedule]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleConfig {
    pub name: String,
    pub expression: String,
    /// A local path or a clone URL (`https://`, `file://`).
    pub repository: String,
    /// `owner/name`; default: the URL's last two segments, else `local/<directory>`.
    #[serde(default)]
    pub repository_name: Option<String>,
    #[serde(default)]
    pub branch: Option<String>,
    #[serde(default)]
    pub images: Vec<String>,
}

impl ScheduleConfig {
    /// The clone URL: a local path becomes a `file://` URL (made absolute).
    pub fn clone_url(&self) -> String {
        let r = self.repository.trim();
        if r.contains("://") {
            return r.to_string();
        }
        let p = Path::new(r);
        let abs = if p.is_absolute() {
            p.to_path_buf()
        } else {
            std::env::current_dir()
                .map(|d| d.join(p))
                .unwrap_or_else(|_| p.to_path_buf())
        };
        format!("file://{}", abs.display())
    }

    /// `owner/name` for the job.
    pub fn repository_name(&self) -> String {
        if let Some(n) = &self.repository_name {
            return n.clone();
        }
        let url = self.clone_url();
        let parts: Vec<&str> = url
            .trim_end_matches('/')
            .trim_end_matches(".git")
            .rsplit('/')
            .filter(|s| !s.is_empty())
            .take(2)
            .collect();
        match (url.starts_with("file://"), parts.as_slice()) {
            (false, [name, owner]) => format!("{owner}/{name}"),
            (_, [name, ..]) => format!("local/{name}"),
            _ => "local/repository".into(),
        }
    }

    /// The message the core turns into a job, validated.
    pub fn rebuild(&self) -> Result<ScheduledRebuild, String> {
        let mut msg = ScheduledRebuild::new(&self.name, &self.repository_name(), &self.clone_url());
        msg.branch = self.branch.clone();
        msg.images = self.images.clone();
        msg.validate().map_err(|e| e.to_string())?;
        Ok(msg)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServeConfig {
    pub listen: SocketAddr,
    pub data_dir: Option<PathBuf>,
    pub secret_env: String,
    pub secret_file: Option<PathBuf>,
    pub namespace: String,
    pub registry_secrets_file: Option<PathBuf>,
    pub parameter_prefix: String,
    pub repositories: String,
    pub branches: String,
    pub tags: String,
    pub allow_private: bool,
    pub allow_file_clone_urls: bool,
    pub concurrency: usize,
    pub cancel_superseded: bool,
    pub keep_builds_per_image: usize,
    pub buildspec: Option<PathBuf>,
    /// `None`: `SLIPWAY_BUILD_NETWORK` from the environment, else the engine's default.
    pub build_network: Option<String>,
    pub deploy_targets_file: Option<PathBuf>,
    pub max_body_bytes: usize,
    pub retention_days: u32,
    #[serde(rename = "webhook")]
    pub webhooks: Vec<WebhookConfig>,
    #[serde(rename = "schedule")]
    pub schedules: Vec<ScheduleConfig>,
    /// `[web]`: who may read the pages and act on builds.
    pub web: Option<WebConfig>,
}

/// The `[web]` section.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebConfig {
    pub username: Option<String>,
    pub password_file: Option<PathBuf>,
    pub token_file: Option<PathBuf>,
    #[serde(default)]
    pub public_read: bool,
    pub origin: Option<String>,
}

impl WebConfig {
    /// Rules a value-by-value parse cannot see (the files are read at start).
    pub fn check(&self) -> Result<(), String> {
        match (&self.username, &self.password_file) {
            (Some(_), None) => return Err("[web] `username` needs `password_file`".into()),
            (None, Some(_)) => return Err("[web] `password_file` needs `username`".into()),
            (Some(u), Some(_))
                if u.is_empty() || u.contains(':') || u.chars().any(char::is_control) =>
            {
                return Err(
                    "[web] `username` must be non-empty, without `:` or control characters".into(),
                );
            }
            _ => {}
        }
        if self.password_file.is_none() && self.token_file.is_none() {
            return Err("[web] needs `username` and `password_file`, or `token_file`".into());
        }
        if let Some(o) = &self.origin {
            let ok = (o.starts_with("https://") || o.starts_with("http://"))
                && url::Url::parse(o).is_ok_and(|u| {
                    u.host_str().is_some()
                        && u.path() == "/"
                        && !o.ends_with('/')
                        && u.username().is_empty()
                });
            if !ok {
                return Err(format!(
                    "[web] `origin` = {o:?}: a scheme and host (and port), like https://ci.example.com"
                ));
            }
        }
        Ok(())
    }
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: None,
            secret_env: "SLIPWAY_WEBHOOK_SECRET".into(),
            secret_file: None,
            namespace: "localhost:5000/slipway".into(),
            registry_secrets_file: None,
            parameter_prefix: "/slipway".into(),
            repositories: "*".into(),
            branches: slipway_core::refs::DEFAULT_BRANCH.into(),
            tags: "*".into(),
            allow_private: true,
            allow_file_clone_urls: true,
            concurrency: 2,
            cancel_superseded: true,
            keep_builds_per_image: 50,
            buildspec: None,
            build_network: None,
            deploy_targets_file: None,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            retention_days: 30,
            webhooks: Vec::new(),
            schedules: Vec::new(),
            web: None,
        }
    }
}

/// A start-up problem, saying what to fix. Codes are stable.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot read the configuration file {path}: {reason}")]
    ConfigUnreadable { path: PathBuf, reason: String },
    #[error("the configuration file {path} is invalid: {reason}")]
    ConfigInvalid { path: PathBuf, reason: String },
    #[error(
        "no webhook secret: set the environment variable {env} or `secret_file` in the configuration ({reason})"
    )]
    NoSecret { env: String, reason: String },
    #[error(
        "the data directory {path} is not usable: {reason}; create it or choose another with --data-dir"
    )]
    DataDir { path: PathBuf, reason: String },
    #[error(
        "the Docker engine does not answer ({reason}); start it (e.g. `sudo systemctl start docker`) or set DOCKER_HOST"
    )]
    NoDocker { reason: String },
    #[error("cannot listen on {addr}: {reason}; choose another address with --listen")]
    Listen { addr: SocketAddr, reason: String },
    #[error("the job store in {path} cannot be opened: {reason}")]
    Store { path: PathBuf, reason: String },
}

impl StartError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::ConfigUnreadable { .. } => "config_unreadable",
            Self::ConfigInvalid { .. } => "config_invalid",
            Self::NoSecret { .. } => "no_webhook_secret",
            Self::DataDir { .. } => "data_dir_unusable",
            Self::NoDocker { .. } => "docker_unavailable",
            Self::Listen { .. } => "listen_failed",
            Self::Store { .. } => "store_unavailable",
        }
    }
}

impl ServeConfig {
    /// Reads `path`; `None` is the defaults.
    pub fn load(path: Option<&Path>) -> Result<Self, StartError> {
        let Some(path) = path else {
            return Ok(Self::default());
        };
        let text = std::fs::read_to_string(path).map_err(|e| StartError::ConfigUnreadable {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        let cfg: ServeConfig = toml::from_str(&text).map_err(|e| StartError::ConfigInvalid {
            path: path.to_path_buf(),
            reason: e.to_string().trim().to_string(),
        })?;
        cfg.check().map_err(|reason| StartError::ConfigInvalid {
            path: path.to_path_buf(),
            reason,
        })?;
        Ok(cfg)
    }

    /// Rules a value-by-value parse cannot see.
    pub fn check(&self) -> Result<(), String> {
        if self.concurrency == 0 {
            return Err("`concurrency` must be at least 1".into());
        }
        slipway_core::names::check_namespace(&self.namespace)
            .map_err(|e| format!("`namespace` = {:?}: {e}", self.namespace))?;
        RefRules::parse(&self.branches, &self.tags).map_err(|e| e.to_string())?;
        RepoFilter::parse(&self.repositories).map_err(|e| e.to_string())?;
        self.retention()
            .map_err(|e| format!("`retention_days`: {e}"))?;
        slipway_runner::check_build_network(&self.build_network())
            .map_err(|e| format!("`build_network`: {e}"))?;
        self.webhook_targets()?;
        if let Some(w) = &self.web {
            w.check()?;
        }
        let mut names = std::collections::BTreeSet::new();
        for s in &self.schedules {
            ScheduleExpr::parse(&s.expression)
                .map_err(|e| format!("[[schedule]] {:?}: {e}", s.name))?;
            s.rebuild()
                .map_err(|e| format!("[[schedule]] {:?}: {e}", s.name))?;
            // The URL is valid; the clone rules may still refuse a repository on this machine.
            Source::parse(&s.clone_url(), self.clone_rules()).map_err(|e| {
                format!(
                    "[[schedule]] {:?}: {e} (allow_file_clone_urls = false)",
                    s.name
                )
            })?;
            if !names.insert(s.name.as_str()) {
                return Err(format!("[[schedule]] {:?} is defined twice", s.name));
            }
        }
        Ok(())
    }

    /// The builds' network: the file's, else `SLIPWAY_BUILD_NETWORK`, else the engine's default.
    pub fn build_network(&self) -> String {
        self.build_network.clone().unwrap_or_else(|| {
            std::env::var(slipway_core::build_env::SLIPWAY_BUILD_NETWORK).unwrap_or_default()
        })
    }

    /// Which clone URLs jobs and schedules may have: `file://` ones only with
    /// `allow_file_clone_urls` (the listener refuses them in pushes without it too).
    pub fn clone_rules(&self) -> CloneRules {
        CloneRules {
            allow_local: self.allow_file_clone_urls,
        }
    }

    pub fn retention(&self) -> Result<slipway_core::retention::Retention, String> {
        slipway_core::retention::Retention::days(self.retention_days).map_err(|e| e.to_string())
    }

    /// The `[[webhook]]` targets, validated. The body is the notification and the method `POST`.
    pub fn webhook_targets(&self) -> Result<Vec<Webhook>, String> {
        let mut names = std::collections::BTreeSet::new();
        let mut out = Vec::new();
        for t in &self.webhooks {
            let name = t.name.clone();
            if !names.insert(name.clone()) {
                return Err(format!("[[webhook]] {name:?} is defined twice"));
            }
            if t.headers
                .keys()
                .any(|k| k.eq_ignore_ascii_case(WEBHOOK_SIGNATURE_HEADER))
            {
                return Err(format!(
                    "[[webhook]] {name:?}: `headers` may not set {WEBHOOK_SIGNATURE_HEADER} (use `secret_file`)"
                ));
            }
            let config = TargetConfig {
                name: t.name.clone(),
                url: t.url.clone(),
                method: None,
                headers: t.headers.clone(),
                body: None,
                auth: t.auth.clone(),
                timeout_seconds: t.timeout_seconds,
                expected_status: t.expected_status.clone(),
                retries: t.retries,
            };
            let mut target = config
                .validate()
                .map_err(|(field, reason)| format!("[[webhook]] {name:?}: `{field}` {reason}"))?;
            target.headers.insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("application/json"),
            );
            out.push(Webhook {
                target,
                secret_file: t.secret_file.clone(),
            });
        }
        Ok(out)
    }

    /// The data directory: the configured one, else the user's data directory.
    pub fn data_dir(&self) -> PathBuf {
        if let Some(d) = &self.data_dir {
            return d.clone();
        }
        if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
            return PathBuf::from(x).join("slipway");
        }
        if let Some(h) = std::env::var_os("HOME").filter(|v| !v.is_empty()) {
            return PathBuf::from(h).join(".local/share/slipway");
        }
        PathBuf::from("slipway-data")
    }

    /// The listener's rules, with the webhook secret read from the file or the environment.
    pub fn listener(&self) -> Result<ListenerConfig, StartError> {
        let raw = match &self.secret_file {
            Some(p) => std::fs::read_to_string(p).map_err(|e| StartError::NoSecret {
                env: self.secret_env.clone(),
                reason: format!("cannot read secret_file {}: {e}", p.display()),
            })?,
            None => std::env::var(&self.secret_env).map_err(|_| StartError::NoSecret {
                env: self.secret_env.clone(),
                reason: format!("{} is not set", self.secret_env),
            })?,
        };
        let secrets = WebhookSecrets::parse(&raw).map_err(|e| StartError::NoSecret {
            env: self.secret_env.clone(),
            reason: e.to_string(),
        })?;
        let mut l = ListenerConfig::new(secrets);
        // Checked by `check` already; a failure here is a programming error.
        l.refs =
            RefRules::parse(&self.branches, &self.tags).map_err(|e| StartError::ConfigInvalid {
                path: PathBuf::from("(configuration)"),
                reason: e.to_string(),
            })?;
        l.repositories =
            RepoFilter::parse(&self.repositories).map_err(|e| StartError::ConfigInvalid {
                path: PathBuf::from("(configuration)"),
                reason: e.to_string(),
            })?;
        l.allow_private = self.allow_private;
        l.allow_file_clone_urls = self.allow_file_clone_urls;
        l.max_body_bytes = self.max_body_bytes;
        Ok(l)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_printed_example_is_the_defaults() {
        let parsed: ServeConfig = toml::from_str(EXAMPLE).unwrap();
        let d = ServeConfig::default();
        assert_eq!(parsed.listen, d.listen);
        assert_eq!(parsed.namespace, d.namespace);
        assert_eq!(parsed.concurrency, d.concurrency);
        assert_eq!(parsed.branches, d.branches);
        assert_eq!(parsed.retention_days, 30);
        parsed.check().unwrap();
        // The commented examples are valid too.
        let uncommented: String = EXAMPLE
            .lines()
            .map(|l| match l.strip_prefix("# ") {
                Some(rest)
                    if rest.starts_with('[')
                        || rest.split_once(" = ").is_some_and(|(k, _)| {
                            k.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
                        }) =>
                {
                    rest
                }
                _ => l,
            })
            .collect::<Vec<_>>()
            .join("\n");
        let all: ServeConfig = toml::from_str(&uncommented).unwrap();
        assert_eq!(all.webhooks.len(), 1);
        assert_eq!(all.schedules.len(), 1);
        assert!(
            all.web
                .as_ref()
                .is_some_and(|w| w.username.as_deref() == Some("ops"))
        );
        all.webhook_targets().unwrap();
        assert_eq!(
            all.schedules[0].rebuild().unwrap().repository,
            "acme/images"
        );
    }

    #[test]
    fn bad_webhooks_schedules_and_retention_are_refused_by_name() {
        let bad = |text: &str| {
            let c: ServeConfig = toml::from_str(text).unwrap();
            c.check().unwrap_err()
        };
        let e = bad("retention_days = 0");
        assert!(e.contains("retention_days"), "{e}");
        let e = bad("[[webhook]]\nname = \"x\"\nurl = \"ftp://example.com/\"");
        assert!(e.contains("\"x\"") && e.contains("`url`"), "{e}");
        let body = "[[webhook]]\nname = \"x\"\nurl = \"https://example.com/\"\nbody = \"{}\"";
        assert!(
            toml::from_str::<ServeConfig>(body).is_err(),
            "a body is the notification"
        );
        let e = bad(
            "[[schedule]]\nname = \"n\"\nexpression = \"rate(0 minutes)\"\nrepository = \"/srv/x\"",
        );
        assert!(e.contains("\"n\""), "{e}");
        let e = bad(
            "[[schedule]]\nname = \"bad name\"\nexpression = \"rate(1 day)\"\nrepository = \"/srv/x\"",
        );
        assert!(e.contains("schedule"), "{e}");
    }
}
