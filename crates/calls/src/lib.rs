//! slipway's calls: the HTTP requests it makes to configured targets — scheduled calls (the
//! tasks Lambda), deploy calls to deploy agents ([`deploy`]) and `slipway serve`'s notification
//! calls (`[[webhook]]`). Every target gets its own timeout, expected status and
//! retries with exponential backoff; targets are sent concurrently up to a bound; a failing or
//! misconfigured target never stops the others; each target gets a result.
//!
//! Targets come validated from `slipway_core::calls`; secrets (bearer tokens, basic-auth
//! passwords) are read through core's [`SecretReader`] port at send time and never logged.

pub mod deploy;

use std::time::{Duration, Instant};

use futures::StreamExt;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use slipway_core::calls::{self, AuthScheme, CallTarget, TargetError};
use slipway_core::retry::{backoff, retryable_status};
use slipway_core::secrets::{SecretError, SecretReader, SecretRef};

/// Secrets from files (`slipway serve`): the file's content without its trailing newline.
/// SSM parameters are refused: `slipway serve` holds no AWS credentials.
#[derive(Debug, Clone, Copy, Default)]
pub struct FileSecrets;

impl SecretReader for FileSecrets {
    async fn read(&self, secret: &SecretRef) -> Result<SecretString, SecretError> {
        match secret {
            SecretRef::File(path) => {
                let raw =
                    tokio::fs::read_to_string(path)
                        .await
                        .map_err(|e| SecretError::Unreadable {
                            reference: secret.to_string(),
                            reason: e.kind().to_string(),
                        })?;
                let value = raw.trim_end_matches(['\r', '\n']);
                if value.is_empty() {
                    return Err(SecretError::Empty {
                        reference: secret.to_string(),
                    });
                }
                Ok(SecretString::from(value.to_string()))
            }
            SecretRef::Parameter(_) => Err(SecretError::Unsupported {
                reference: secret.to_string(),
                hint: "slipway serve reads secrets from files; name a `file`",
            }),
        }
    }
}

/// How a batch of targets is sent.
#[derive(Debug, Clone)]
pub struct SendOptions {
    /// Requests in flight at once (at least 1).
    pub concurrency: usize,
    /// Wait before the first retry; doubled for each further one.
    pub backoff_base: Duration,
    /// Longest wait between attempts.
    pub backoff_max: Duration,
}

impl Default for SendOptions {
    fn default() -> Self {
        Self {
            concurrency: 4,
            backoff_base: Duration::from_millis(500),
            backoff_max: Duration::from_secs(10),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Answered with an expected status.
    Delivered,
    /// Attempted; no attempt got an expected status.
    Failed,
    /// Not attempted: the target's configuration is invalid.
    Invalid,
    /// Not attempted: its auth secret could not be read.
    SecretUnavailable,
}

/// What happened to one target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CallResult {
    pub name: String,
    pub outcome: Outcome,
    /// Requests sent (0 when not attempted).
    pub attempts: u32,
    /// Status of the last answer, if any answer came.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Stable code of the last error: `timeout`, `connect`, `request`, `unexpected_status`,
    /// `invalid_target`, `secret_unavailable`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub duration_ms: u64,
}

/// Results of a batch, in the configuration's order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CallReport {
    pub delivered: usize,
    pub failed: usize,
    pub invalid: usize,
    pub results: Vec<CallResult>,
}

impl CallReport {
    pub fn all_delivered(&self) -> bool {
        self.results.iter().all(|r| r.outcome == Outcome::Delivered)
    }

    pub fn get(&self, name: &str) -> Option<&CallResult> {
        self.results.iter().find(|r| r.name == name)
    }
}

/// The HTTP client for targets: no redirects (a 3xx is an answer to report, and following it
/// could carry credentials elsewhere), a connect timeout, slipway's user agent.
pub fn client() -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(10))
        .user_agent(concat!("slipway/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// Sends every target (invalid ones are reported without a request), at most
/// `opts.concurrency` at a time.
pub async fn send_all<S: SecretReader>(
    client: &reqwest::Client,
    targets: Vec<Result<CallTarget, TargetError>>,
    secrets: &S,
    opts: &SendOptions,
) -> CallReport {
    let results: Vec<CallResult> = futures::stream::iter(targets)
        .map(|t| async move {
            match t {
                Ok(target) => send_one(client, &target, secrets, opts).await,
                Err(e) => {
                    tracing::error!(target = %e.target, field = e.field, reason = %e.reason, "call target is invalid; not sent");
                    CallResult {
                        name: e.target.clone(),
                        outcome: Outcome::Invalid,
                        attempts: 0,
                        status: None,
                        error_code: Some(e.code()),
                        error: Some(e.to_string()),
                        duration_ms: 0,
                    }
                }
            }
        })
        // Ordered: results keep the configuration's order; still up to `concurrency` in flight.
        .buffered(opts.concurrency.max(1))
        .collect()
        .await;
    let count = |o: Outcome| results.iter().filter(|r| r.outcome == o).count();
    CallReport {
        delivered: count(Outcome::Delivered),
        failed: count(Outcome::Failed) + count(Outcome::SecretUnavailable),
        invalid: count(Outcome::Invalid),
        results,
    }
}

fn expected_text(e: &calls::ExpectedStatus) -> String {
    match e {
        calls::ExpectedStatus::Success => "2xx".into(),
        calls::ExpectedStatus::Exactly(codes) => codes
            .iter()
            .map(u16::to_string)
            .collect::<Vec<_>>()
            .join(" or "),
    }
}

/// One target: its secret, then attempts until an expected answer, a final answer or the last
/// retry.
pub async fn send_one<S: SecretReader>(
    client: &reqwest::Client,
    target: &CallTarget,
    secrets: &S,
    opts: &SendOptions,
) -> CallResult {
    let started = Instant::now();
    let host = target.url.host_str().unwrap_or_default().to_string();
    let mut result = CallResult {
        name: target.name.clone(),
        outcome: Outcome::Failed,
        attempts: 0,
        status: None,
        error_code: None,
        error: None,
        duration_ms: 0,
    };
    let secret = match &target.auth {
        None => None,
        Some(auth) => match secrets.read(&auth.secret).await {
            Ok(s) => Some(s),
            Err(e) => {
                result.outcome = Outcome::SecretUnavailable;
                result.error_code = Some("secret_unavailable");
                result.error = Some(e.to_string());
                result.duration_ms = started.elapsed().as_millis() as u64;
                tracing::error!(target = %target.name, %host, code = e.code(), error = %e, "call secret unavailable; not sent");
                return result;
            }
        },
    };
    let max_attempts = target.retries + 1;
    for attempt in 1..=max_attempts {
        if attempt > 1 {
            let wait = backoff(attempt - 1, opts.backoff_base, opts.backoff_max);
            // Equal jitter: between half and all of the backoff, so that targets failing
            // together do not retry in lockstep; never longer than the backoff itself.
            tokio::time::sleep(wait.mul_f64(0.5 + fastrand::f64() / 2.0)).await;
        }
        result.attempts = attempt;
        let mut req = client
            .request(target.method.clone(), target.url.clone())
            .timeout(target.timeout)
            .headers(target.headers.clone());
        if let Some(body) = &target.body {
            req = req.body(body.clone());
        }
        if let (Some(auth), Some(secret)) = (&target.auth, &secret) {
            req = match auth.scheme {
                AuthScheme::Bearer => req.bearer_auth(secret.expose_secret()),
                AuthScheme::Basic => req.basic_auth(
                    auth.username.as_deref().unwrap_or_default(),
                    Some(secret.expose_secret()),
                ),
            };
        }
        let retry = match req.send().await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                result.status = Some(status);
                if target.expected.accepts(status) {
                    result.outcome = Outcome::Delivered;
                    result.error_code = None;
                    result.error = None;
                    break;
                }
                result.error_code = Some("unexpected_status");
                result.error = Some(format!(
                    "answered {status}, expected {}",
                    expected_text(&target.expected)
                ));
                retryable_status(status)
            }
            Err(e) => {
                result.status = None;
                let (code, what) = if e.is_timeout() {
                    ("timeout", format!("no answer within {:?}", target.timeout))
                } else if e.is_connect() {
                    ("connect", "connection failed".to_string())
                } else {
                    // Without the URL: its query string may carry a token.
                    ("request", e.without_url().to_string())
                };
                result.error_code = Some(code);
                result.error = Some(what);
                true
            }
        };
        tracing::debug!(target = %target.name, attempt, status = ?result.status, error = ?result.error_code, "call attempt");
        if !retry {
            break;
        }
    }
    result.duration_ms = started.elapsed().as_millis() as u64;
    if result.outcome == Outcome::Delivered {
        tracing::info!(target = %target.name, %host, attempts = result.attempts, status = ?result.status, duration_ms = result.duration_ms, "call delivered");
    } else {
        tracing::warn!(target = %target.name, %host, attempts = result.attempts, status = ?result.status, error_code = ?result.error_code, error = ?result.error, duration_ms = result.duration_ms, "call failed");
    }
    result
}
