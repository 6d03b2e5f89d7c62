//! The deploy agent's rules, pure: request signing and verification, the replay (nonce) cache,
//! the per-secret service allow-list, the request and answer model and its stable error codes.
//! `slipway agent` (the server), `slipway deliver` (its client) and the notifier's deploy calls
//! all sign and verify through this module, so the three can never disagree on the scheme.
//!
//! # The slipway scheme (`v1`)
//!
//! The signature is `HMAC-SHA256(secret, canonical)` where `canonical` is
//!
//! ```text
//! v1\n<timestamp>\n<nonce>\n<METHOD>\n<path>\n<hex SHA-256 of the body>
//! ```
//!
//! sent as `X-Slipway-Signature: v1=<hex>`, with `X-Slipway-Timestamp` (Unix seconds) and
//! `X-Slipway-Nonce` (16 to 128 characters of `A-Z a-z 0-9 _ -`, random per request). The method
//! and path are signed so that a request captured for one endpoint cannot be sent to another;
//! the timestamp bounds its life to ±[`WINDOW_SECS`]; the nonce makes it single-use.
//!
//! # The docker-delivery-hook scheme (opt-in)
//!
//! `X-Signature: <hex HMAC-SHA256(secret, body ‖ timestamp)>` and `X-Timestamp`. The method and
//! path are not covered, which is why it is off unless enabled. slipway adds the window and the
//! replay cache (the signature itself is the nonce).

use std::collections::{HashMap, VecDeque};

use hmac::{Hmac, Mac};
use http::{HeaderMap, StatusCode};
use secrecy::{ExposeSecret, SecretSlice};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::names::{Invalid, check_nonce, check_service};

type HmacSha256 = Hmac<Sha256>;

/// How far a request's timestamp may be from the agent's clock, either way.
pub const WINDOW_SECS: i64 = 300;
/// The scheme version at the start of the canonical string and of the signature header.
pub const SCHEME_VERSION: &str = "v1";

pub const HEADER_TIMESTAMP: &str = "x-slipway-timestamp";
pub const HEADER_NONCE: &str = "x-slipway-nonce";
pub const HEADER_SIGNATURE: &str = "x-slipway-signature";
/// docker-delivery-hook's headers.
pub const COMPAT_HEADER_SIGNATURE: &str = "x-signature";
pub const COMPAT_HEADER_TIMESTAMP: &str = "x-timestamp";

/// Secrets shorter than this are refused when the agent starts.
pub const MIN_SECRET_BYTES: usize = 16;
/// Default bound of the replay cache: more distinct valid requests than this inside one window
/// are refused (503) rather than forgetting a nonce that could then be replayed.
pub const DEFAULT_NONCE_CAPACITY: usize = 100_000;

/// The string that is signed. Public so that other implementations can be tested against it.
pub fn canonical_string(
    timestamp: i64,
    nonce: &str,
    method: &str,
    path: &str,
    body: &[u8],
) -> String {
    format!(
        "{SCHEME_VERSION}\n{timestamp}\n{nonce}\n{}\n{path}\n{}",
        method.to_ascii_uppercase(),
        hex::encode(Sha256::digest(body))
    )
}

/// Signs one request to a deploy agent with the slipway `v1` scheme and returns the headers to
/// send, as `(name, value)` pairs.
///
/// - `path` is the request path as the agent receives it (for example `/deploys`), without the
///   query string and without any prefix a reverse proxy strips;
/// - `timestamp` is the current Unix time in seconds (the caller reads the clock);
/// - `nonce` must be fresh random text of 16 to 128 characters from `A-Z a-z 0-9 _ -`
///   (for example a UUID v4 without hyphens); the agent refuses a nonce it has already seen.
///
/// ```
/// use slipway_core::deploy::{sign, HEADER_SIGNATURE};
/// let headers = sign(b"0123456789abcdef", "POST", "/deploys", b"{}", 1_700_000_000, "0123456789abcdef0123");
/// assert!(headers.iter().any(|(name, value)| *name == HEADER_SIGNATURE && value.starts_with("v1=")));
/// ```
pub fn sign(
    secret: &[u8],
    method: &str,
    path: &str,
    body: &[u8],
    timestamp: i64,
    nonce: &str,
) -> Vec<(&'static str, String)> {
    let canonical = canonical_string(timestamp, nonce, method, path, body);
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC accepts keys of any length");
    mac.update(canonical.as_bytes());
    let signature = hex::encode(mac.finalize().into_bytes());
    vec![
        (HEADER_TIMESTAMP, timestamp.to_string()),
        (HEADER_NONCE, nonce.to_string()),
        (HEADER_SIGNATURE, format!("{SCHEME_VERSION}={signature}")),
    ]
}

/// Signs a body with docker-delivery-hook's scheme (`X-Signature`, `X-Timestamp`), for clients
/// and tests of the compatibility mode.
pub fn sign_compat(secret: &[u8], body: &[u8], timestamp: i64) -> Vec<(&'static str, String)> {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC accepts keys of any length");
    mac.update(body);
    mac.update(timestamp.to_string().as_bytes());
    vec![
        (
            COMPAT_HEADER_SIGNATURE,
            hex::encode(mac.finalize().into_bytes()),
        ),
        (COMPAT_HEADER_TIMESTAMP, timestamp.to_string()),
    ]
}

/// Why a request's signature was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error(
        "the request is not signed: send X-Slipway-Signature, X-Slipway-Timestamp and X-Slipway-Nonce"
    )]
    Missing,
    #[error("a signature header is malformed or sent more than once")]
    Malformed,
    #[error("the timestamp is not Unix seconds")]
    TimestampInvalid,
    #[error("the timestamp is more than 5 minutes away from the agent's clock")]
    TimestampOutOfWindow,
    #[error("the signature does not match the request under any secret")]
    Mismatch,
    #[error("this request was already received once; sign every request with a new nonce")]
    Replayed,
    #[error("too many requests inside the replay window; try again shortly")]
    NonceCacheFull,
}

impl AuthError {
    pub fn code(self) -> &'static str {
        match self {
            Self::Missing => "signature_missing",
            Self::Malformed => "signature_malformed",
            Self::TimestampInvalid => "timestamp_invalid",
            Self::TimestampOutOfWindow => "timestamp_out_of_window",
            Self::Mismatch => "signature_mismatch",
            Self::Replayed => "replayed",
            Self::NonceCacheFull => "nonce_cache_full",
        }
    }

    pub fn status(self) -> StatusCode {
        match self {
            Self::NonceCacheFull => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::UNAUTHORIZED,
        }
    }
}

/// Remembers the nonces of accepted requests until their timestamp leaves the window, so that a
/// captured request is refused on its second use. Bounded: when full of live entries it refuses
/// new ones instead of forgetting (forgetting would reopen a replay).
#[derive(Debug)]
pub struct NonceCache {
    capacity: usize,
    window: i64,
    seen: HashMap<String, i64>,
    // (expiry, nonce) in insertion order; the map is the authority.
    order: VecDeque<(i64, String)>,
}

impl NonceCache {
    pub fn new(capacity: usize, window_secs: i64) -> Self {
        Self {
            capacity,
            window: window_secs,
            seen: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }

    fn purge(&mut self, now: i64) {
        while let Some((expiry, _)) = self.order.front() {
            if *expiry > now {
                break;
            }
            let (expiry, nonce) = self.order.pop_front().expect("front exists");
            // A nonce may have been recorded again after it expired; keep the newer entry.
            if self.seen.get(&nonce) == Some(&expiry) {
                self.seen.remove(&nonce);
            }
        }
        // Expiries follow request timestamps, which are not in arrival order: when the cache
        // looks full, sweep everything rather than trusting the front of the queue.
        if self.seen.len() >= self.capacity {
            self.seen.retain(|_, expiry| *expiry > now);
            self.order.retain(|(expiry, _)| *expiry > now);
        }
    }

    /// Records `nonce`, seen with a request stamped `timestamp`, at time `now`. Fails when it was
    /// already recorded and has not expired, or when the cache is full of live entries.
    pub fn check_and_insert(
        &mut self,
        nonce: &str,
        timestamp: i64,
        now: i64,
    ) -> Result<(), AuthError> {
        self.purge(now);
        if self.seen.get(nonce).is_some_and(|expiry| *expiry > now) {
            return Err(AuthError::Replayed);
        }
        if self.seen.len() >= self.capacity {
            return Err(AuthError::NonceCacheFull);
        }
        // The request stays acceptable until `timestamp + window`; remember it that long.
        let expiry = timestamp.saturating_add(self.window).max(now + 1);
        self.seen.insert(nonce.to_string(), expiry);
        self.order.push_back((expiry, nonce.to_string()));
        Ok(())
    }
}

/// Why the agent's secrets could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretsError {
    #[error("secret `{name}` is shorter than {min} bytes; use a long random secret")]
    TooShort { name: String, min: usize },
    #[error("secret `{name}` lists no service; list the services it may redeploy")]
    NoServices { name: String },
    #[error("secret `{name}` lists an invalid service name: {reason}")]
    InvalidService { name: String, reason: Invalid },
    #[error("no secret is configured")]
    Empty,
}

/// One secret and the services it may redeploy. `Debug` never shows the secret.
pub struct DeploySecret {
    pub name: String,
    secret: SecretSlice<u8>,
    services: Vec<String>,
}

impl std::fmt::Debug for DeploySecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeploySecret")
            .field("name", &self.name)
            .field("secret", &"<redacted>")
            .field("services", &self.services)
            .finish()
    }
}

impl DeploySecret {
    pub fn new(name: &str, secret: &[u8], services: Vec<String>) -> Result<Self, SecretsError> {
        if secret.len() < MIN_SECRET_BYTES {
            return Err(SecretsError::TooShort {
                name: name.to_string(),
                min: MIN_SECRET_BYTES,
            });
        }
        if services.is_empty() {
            return Err(SecretsError::NoServices {
                name: name.to_string(),
            });
        }
        for s in &services {
            check_service(s).map_err(|reason| SecretsError::InvalidService {
                name: name.to_string(),
                reason,
            })?;
        }
        Ok(Self {
            name: name.to_string(),
            secret: SecretSlice::from(secret.to_vec()),
            services,
        })
    }

    /// Whether this secret may redeploy `service` (an exact entry of its list).
    pub fn allows(&self, service: &str) -> bool {
        self.services.iter().any(|s| s == service)
    }

    pub fn services(&self) -> &[String] {
        &self.services
    }
}

/// Which scheme a verified request used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scheme {
    V1,
    DeliveryHook,
}

/// A request as the verifier sees it.
pub struct SignedRequest<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

/// Checks signatures, the window and replays for every secret of the agent.
#[derive(Debug)]
pub struct Verifier {
    secrets: Vec<DeploySecret>,
    /// Accept docker-delivery-hook's scheme as well.
    pub delivery_hook_compat: bool,
    pub window_secs: i64,
}

fn single_header<'h>(headers: &'h HeaderMap, name: &str) -> Result<Option<&'h str>, AuthError> {
    let mut values = headers.get_all(name).iter();
    let Some(first) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(AuthError::Malformed);
    }
    first
        .to_str()
        .map(|s| Some(s.trim()))
        .map_err(|_| AuthError::Malformed)
}

fn parse_hex32(s: &str) -> Result<[u8; 32], AuthError> {
    let mut out = [0u8; 32];
    if s.len() != 64 {
        return Err(AuthError::Malformed);
    }
    hex::decode_to_slice(s.to_ascii_lowercase(), &mut out).map_err(|_| AuthError::Malformed)?;
    Ok(out)
}

impl Verifier {
    pub fn new(secrets: Vec<DeploySecret>) -> Result<Self, SecretsError> {
        if secrets.is_empty() {
            return Err(SecretsError::Empty);
        }
        Ok(Self {
            secrets,
            delivery_hook_compat: false,
            window_secs: WINDOW_SECS,
        })
    }

    pub fn secret(&self, index: usize) -> &DeploySecret {
        &self.secrets[index]
    }

    /// Verifies a request at time `now` (Unix seconds) and records its nonce. Returns the index
    /// of the secret that signed it. Order: headers, window, HMAC (every secret is tried, so
    /// timing does not tell which matched), then the replay cache — only requests that carry a
    /// valid signature can occupy the cache.
    pub fn verify(
        &self,
        req: &SignedRequest<'_>,
        now: i64,
        nonces: &mut NonceCache,
    ) -> Result<(usize, Scheme), AuthError> {
        let v1_sig = single_header(req.headers, HEADER_SIGNATURE)?;
        if let Some(sig) = v1_sig {
            let ts = single_header(req.headers, HEADER_TIMESTAMP)?.ok_or(AuthError::Missing)?;
            let nonce = single_header(req.headers, HEADER_NONCE)?.ok_or(AuthError::Missing)?;
            check_nonce(nonce).map_err(|_| AuthError::Malformed)?;
            let ts = self.check_timestamp(ts, now)?;
            let digest = sig
                .strip_prefix("v1=")
                .ok_or(AuthError::Malformed)
                .and_then(parse_hex32)?;
            let canonical = canonical_string(ts, nonce, req.method, req.path, req.body);
            let index = self.match_secret(&digest, |mac| mac.update(canonical.as_bytes()))?;
            nonces.check_and_insert(&format!("v1:{nonce}"), ts, now)?;
            return Ok((index, Scheme::V1));
        }
        if self.delivery_hook_compat
            && let Some(sig) = single_header(req.headers, COMPAT_HEADER_SIGNATURE)?
        {
            let ts_raw =
                single_header(req.headers, COMPAT_HEADER_TIMESTAMP)?.ok_or(AuthError::Missing)?;
            let ts = self.check_timestamp(ts_raw, now)?;
            let sig = sig.strip_prefix("sha256=").unwrap_or(sig);
            let digest = parse_hex32(sig)?;
            let index = self.match_secret(&digest, |mac| {
                mac.update(req.body);
                mac.update(ts_raw.as_bytes());
            })?;
            // No nonce in this scheme: the signature identifies the request.
            nonces.check_and_insert(&format!("dh:{}", hex::encode(digest)), ts, now)?;
            return Ok((index, Scheme::DeliveryHook));
        }
        Err(AuthError::Missing)
    }

    fn check_timestamp(&self, raw: &str, now: i64) -> Result<i64, AuthError> {
        if raw.is_empty() || raw.len() > 12 || !raw.bytes().all(|b| b.is_ascii_digit()) {
            return Err(AuthError::TimestampInvalid);
        }
        let ts: i64 = raw.parse().map_err(|_| AuthError::TimestampInvalid)?;
        if (ts - now).abs() > self.window_secs {
            return Err(AuthError::TimestampOutOfWindow);
        }
        Ok(ts)
    }

    fn match_secret(
        &self,
        digest: &[u8; 32],
        feed: impl Fn(&mut HmacSha256),
    ) -> Result<usize, AuthError> {
        let mut matched = None;
        for (i, s) in self.secrets.iter().enumerate() {
            let mut mac = HmacSha256::new_from_slice(s.secret.expose_secret())
                .expect("HMAC accepts keys of any length");
            feed(&mut mac);
            if mac.verify_slice(digest).is_ok() && matched.is_none() {
                matched = Some(i);
            }
        }
        matched.ok_or(AuthError::Mismatch)
    }
}

/// Compares a presented Docker Hub hook token with the configured ones in constant time and
/// returns the index of the one that matched.
pub fn match_token<T: AsRef<[u8]>>(presented: &str, tokens: &[T]) -> Option<usize> {
    let mut matched = None;
    for (i, t) in tokens.iter().enumerate() {
        let t = t.as_ref();
        let equal: bool = if t.len() == presented.len() {
            t.ct_eq(presented.as_bytes()).into()
        } else {
            false
        };
        if equal && matched.is_none() {
            matched = Some(i);
        }
    }
    matched
}

/// What a deploy does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Pull the service's image; recreate only if its image changed.
    Pull,
    /// `compose build` the service, then recreate if its image changed.
    Build,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pull => "pull",
            Self::Build => "build",
        }
    }
}

impl std::str::FromStr for Action {
    type Err = Invalid;
    fn from_str(s: &str) -> Result<Self, Invalid> {
        match s {
            "pull" => Ok(Self::Pull),
            "build" => Ok(Self::Build),
            _ => Err(Invalid("action must be `pull` or `build`")),
        }
    }
}

/// The body of `POST /deploys`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeployRequest {
    /// A compose service name, or `project/service` when several projects have that service.
    pub service: String,
    #[serde(default = "default_action")]
    pub action: Action,
}

fn default_action() -> Action {
    Action::Pull
}

/// Parses and validates the body of `POST /deploys`.
pub fn parse_request(body: &[u8]) -> Result<DeployRequest, AgentError> {
    let req: DeployRequest = serde_json::from_slice(body).map_err(|e| {
        AgentError::InvalidRequest(format!("the body is not a deploy request: {e}"))
    })?;
    check_service(&req.service).map_err(|e| AgentError::ServiceInvalid(e.0))?;
    Ok(req)
}

/// The part of a Docker Hub webhook the agent uses.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct DockerHubPush {
    pub callback_url: Option<String>,
    pub push_data: DockerHubPushData,
    pub repository: DockerHubRepository,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct DockerHubPushData {
    #[serde(default)]
    pub tag: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct DockerHubRepository {
    pub repo_name: String,
}

pub fn parse_dockerhub(body: &[u8]) -> Result<DockerHubPush, AgentError> {
    serde_json::from_slice(body).map_err(|e| {
        AgentError::InvalidRequest(format!("the body is not a Docker Hub webhook: {e}"))
    })
}

/// Whether `callback` may be called: its origin (scheme, host, port) must equal one of
/// `allowed` (such as `https://registry.hub.docker.com`), and it must carry no credentials.
pub fn callback_allowed(callback: &str, allowed: &[String]) -> bool {
    let Ok(url) = url::Url::parse(callback) else {
        return false;
    };
    if !matches!(url.scheme(), "https" | "http")
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return false;
    }
    let origin = url.origin();
    allowed.iter().any(|a| {
        url::Url::parse(a)
            .map(|a| a.origin() == origin)
            .unwrap_or(false)
    })
}

/// The state of a deploy, as `GET /deploys/{id}` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeployState {
    /// Waiting for the deploy before it on the same service.
    Queued,
    Running,
    /// The service runs the new image and passed its health check.
    Succeeded,
    /// The image did not change; nothing was recreated.
    Unchanged,
    /// The deploy failed before anything was changed (for example the pull failed).
    Failed,
    /// The new image failed; the previous one was restored.
    RolledBack,
    /// The new image failed and restoring the previous one failed too: look at the service.
    RollbackFailed,
}

impl DeployState {
    pub fn is_terminal(self) -> bool {
        !matches!(self, Self::Queued | Self::Running)
    }

    /// Whether a client (`slipway deliver --wait`) should exit 0.
    pub fn is_success(self) -> bool {
        matches!(self, Self::Succeeded | Self::Unchanged)
    }
}

/// A refusal by the agent, with its HTTP status and stable code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AgentError {
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("this secret may not redeploy service `{0}`")]
    ServiceNotAllowed(String),
    #[error("no running container belongs to compose service `{0}`")]
    ServiceUnknown(String),
    #[error("several compose projects have service `{0}`; name it as `project/service`")]
    ServiceAmbiguous(String),
    #[error("a deploy of `{0}` is already running")]
    DeployRunning(String),
    #[error("{0}")]
    InvalidRequest(String),
    #[error("invalid service name: {0}")]
    ServiceInvalid(&'static str),
    #[error("unknown hook")]
    HookUnknown,
    #[error("the callback URL's host is not on this hook's allow-list")]
    CallbackNotAllowed,
    #[error("Docker Hub repository `{0}` is not the one this hook is for")]
    RepositoryNotAllowed(String),
    #[error("no deploy with this id")]
    DeployUnknown,
    #[error("docker could not be asked about the service: {0}")]
    Engine(String),
}

impl AgentError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::Auth(e) => e.code(),
            Self::ServiceNotAllowed(_) => "service_not_allowed",
            Self::ServiceUnknown(_) => "service_unknown",
            Self::ServiceAmbiguous(_) => "service_ambiguous",
            Self::DeployRunning(_) => "deploy_running",
            Self::InvalidRequest(_) => "invalid_request",
            Self::ServiceInvalid(_) => "service_invalid",
            Self::HookUnknown => "hook_unknown",
            Self::CallbackNotAllowed => "callback_not_allowed",
            Self::RepositoryNotAllowed(_) => "repository_not_allowed",
            Self::DeployUnknown => "deploy_unknown",
            Self::Engine(_) => "engine_unavailable",
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::Auth(e) => e.status(),
            Self::ServiceNotAllowed(_)
            | Self::CallbackNotAllowed
            | Self::RepositoryNotAllowed(_) => StatusCode::FORBIDDEN,
            Self::ServiceUnknown(_) | Self::HookUnknown | Self::DeployUnknown => {
                StatusCode::NOT_FOUND
            }
            Self::DeployRunning(_) | Self::ServiceAmbiguous(_) => StatusCode::CONFLICT,
            Self::InvalidRequest(_) | Self::ServiceInvalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Engine(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The JSON body of the refusal: `{"error": code, "message": ...}`.
    pub fn body(&self) -> Value {
        json!({ "error": self.code(), "message": self.to_string() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    const SECRET: &[u8] = b"an-agent-secret-of-some-length";
    const NOW: i64 = 1_800_000_000;
    const NONCE: &str = "nonce-0123456789abcdef";

    fn verifier() -> Verifier {
        let mut v = Verifier::new(vec![
            DeploySecret::new("old", b"the-old-secret-1234567", vec!["db".into()]).unwrap(),
            DeploySecret::new("ci", SECRET, vec!["web".into(), "shop/api".into()]).unwrap(),
        ])
        .unwrap();
        v.delivery_hook_compat = true;
        v
    }

    fn headers(pairs: &[(&'static str, String)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn req<'a>(h: &'a HeaderMap, path: &'a str, body: &'a [u8]) -> SignedRequest<'a> {
        SignedRequest {
            method: "POST",
            path,
            headers: h,
            body,
        }
    }

    #[test]
    fn signed_request_verifies_once() {
        let v = verifier();
        let mut cache = NonceCache::new(10, WINDOW_SECS);
        let body = br#"{"service":"web","action":"pull"}"#;
        let h = headers(&sign(SECRET, "POST", "/deploys", body, NOW, NONCE));
        assert_eq!(
            v.verify(&req(&h, "/deploys", body), NOW + 3, &mut cache),
            Ok((1, Scheme::V1))
        );
        assert!(v.secret(1).allows("web") && !v.secret(1).allows("db"));
        assert_eq!(
            v.verify(&req(&h, "/deploys", body), NOW + 4, &mut cache),
            Err(AuthError::Replayed)
        );
    }

    #[test]
    fn body_path_and_window_are_bound() {
        let v = verifier();
        let mut cache = NonceCache::new(10, WINDOW_SECS);
        let body = br#"{"service":"web","action":"pull"}"#;
        let h = headers(&sign(SECRET, "POST", "/deploys", body, NOW, NONCE));
        let build = br#"{"service":"web","action":"build"}"#;
        assert_eq!(
            v.verify(&req(&h, "/deploys", build), NOW, &mut cache),
            Err(AuthError::Mismatch)
        );
        assert_eq!(
            v.verify(&req(&h, "/other", body), NOW, &mut cache),
            Err(AuthError::Mismatch)
        );
        assert_eq!(
            v.verify(
                &req(&h, "/deploys", body),
                NOW + WINDOW_SECS + 1,
                &mut cache
            ),
            Err(AuthError::TimestampOutOfWindow)
        );
        assert_eq!(
            v.verify(
                &req(&h, "/deploys", body),
                NOW - WINDOW_SECS - 1,
                &mut cache
            ),
            Err(AuthError::TimestampOutOfWindow)
        );
        // None of the refusals consumed the nonce.
        assert!(cache.is_empty());
        let unsigned = HeaderMap::new();
        assert_eq!(
            v.verify(&req(&unsigned, "/deploys", body), NOW, &mut cache),
            Err(AuthError::Missing)
        );
    }

    #[test]
    fn compat_scheme_with_replay_cache() {
        let mut v = verifier();
        let mut cache = NonceCache::new(10, WINDOW_SECS);
        let body = br#"{"service":"web"}"#;
        let h = headers(&sign_compat(SECRET, body, NOW));
        assert_eq!(
            v.verify(&req(&h, "/deploys", body), NOW, &mut cache),
            Ok((1, Scheme::DeliveryHook))
        );
        assert_eq!(
            v.verify(&req(&h, "/deploys", body), NOW, &mut cache),
            Err(AuthError::Replayed)
        );
        v.delivery_hook_compat = false;
        let h = headers(&sign_compat(SECRET, body, NOW + 1));
        assert_eq!(
            v.verify(&req(&h, "/deploys", body), NOW, &mut cache),
            Err(AuthError::Missing)
        );
    }

    #[test]
    fn nonce_cache_expires_and_is_bounded() {
        let mut cache = NonceCache::new(2, 10);
        cache.check_and_insert("a", 100, 100).unwrap();
        cache.check_and_insert("b", 100, 100).unwrap();
        assert_eq!(
            cache.check_and_insert("c", 100, 105),
            Err(AuthError::NonceCacheFull)
        );
        assert_eq!(
            cache.check_and_insert("a", 100, 105),
            Err(AuthError::Replayed)
        );
        // After the window both expire and room is made.
        cache.check_and_insert("c", 111, 111).unwrap();
        cache.check_and_insert("a", 111, 111).unwrap();
        assert_eq!(cache.len(), 2);
    }

    #[test]
    fn service_names() {
        let err = parse_request(br#"{"service":"web && reboot","action":"pull"}"#).unwrap_err();
        assert_eq!(
            (err.status(), err.code()),
            (StatusCode::UNPROCESSABLE_ENTITY, "service_invalid")
        );
        let err = parse_request(br#"{"service":"web","action":"rm"}"#).unwrap_err();
        assert_eq!(err.code(), "invalid_request");
    }

    #[test]
    fn callbacks_and_tokens() {
        let allow = vec!["https://registry.hub.docker.com".to_string()];
        assert!(callback_allowed(
            "https://registry.hub.docker.com/u/a/b/hook/x/",
            &allow
        ));
        assert!(!callback_allowed("https://evil.example/x", &allow));
        assert!(!callback_allowed(
            "http://registry.hub.docker.com/x",
            &allow
        ));
        assert!(!callback_allowed(
            "https://user:pw@registry.hub.docker.com/x",
            &allow
        ));
        assert!(!callback_allowed(
            "https://registry.hub.docker.com.evil.example/x",
            &allow
        ));
        let tokens = ["tok-aaaaaaaaaaaaaaaa", "tok-bbbbbbbbbbbbbbbb"];
        assert_eq!(match_token("tok-bbbbbbbbbbbbbbbb", &tokens), Some(1));
        assert_eq!(match_token("tok-bbbb", &tokens), None);
    }

    #[test]
    fn short_secrets_and_empty_lists_are_refused() {
        assert!(matches!(
            DeploySecret::new("x", b"short", vec!["web".into()]),
            Err(SecretsError::TooShort { .. })
        ));
        assert!(matches!(
            DeploySecret::new("x", SECRET, vec![]),
            Err(SecretsError::NoServices { .. })
        ));
        let s = DeploySecret::new("x", SECRET, vec!["web".into()]).unwrap();
        assert!(!format!("{s:?}").contains("an-agent-secret"));
    }
}
