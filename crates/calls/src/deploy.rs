//! Deploy calls: for a successful build, one signed `POST` per configured target (the deploy
//! agent's `/deploys`, body `{"service": ..., "action": "pull"}`), signed with the `v1` scheme of
//! `slipway_core::deploy` — re-signed with a fresh nonce and timestamp for every attempt, since
//! the agent refuses a nonce it has seen. Sent through `slipway-calls` (timeouts, error codes),
//! retried with backoff on timeouts, connection errors, 5xx, 408 and 429; targets run
//! concurrently, so a slow one never holds up the others.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::{Outcome, SendOptions};
use futures::StreamExt;
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use secrecy::ExposeSecret;
use slipway_core::calls::{CallTarget, ExpectedStatus};
use slipway_core::notify::{self, DeployResult, DeployTarget};
use slipway_core::retry::{backoff, retryable_status};
use slipway_core::secrets::SecretReader;

/// Calls deploy targets.
pub struct DeployCalls<S> {
    pub client: reqwest::Client,
    pub targets: BTreeMap<String, DeployTarget>,
    pub secrets: S,
    /// Targets called at once.
    pub concurrency: usize,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
}

impl<S: SecretReader> DeployCalls<S> {
    /// Fails only when the HTTP client cannot be built (no TLS roots on the machine).
    pub fn new(
        targets: BTreeMap<String, DeployTarget>,
        secrets: S,
    ) -> Result<Self, reqwest::Error> {
        Ok(Self {
            client: crate::client()?,
            targets,
            secrets,
            concurrency: 4,
            backoff_base: Duration::from_millis(500),
            backoff_max: Duration::from_secs(4),
        })
    }

    /// One result per name, in order.
    pub async fn call_all(&self, names: &[String]) -> Vec<DeployResult> {
        // Owned names: a closure over borrowed ones trips the `Send` check of the future.
        futures::stream::iter(names.to_vec())
            .map(|n| async move { self.call_one(&n).await })
            .buffered(self.concurrency.max(1))
            .collect()
            .await
    }

    pub async fn call_one(&self, name: &str) -> DeployResult {
        let mut result = DeployResult {
            target: name.to_string(),
            outcome: "failed".into(),
            attempts: 0,
            status: None,
            error_code: None,
        };
        let Some(t) = self.targets.get(name) else {
            tracing::warn!(target = %name, "deploy target is not configured; not called");
            result.outcome = "not_configured".into();
            result.error_code = Some("not_configured".into());
            return result;
        };
        let secret = match self.secrets.read(&t.secret).await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(target = %name, code = e.code(), error = %e, "deploy secret unavailable; not called");
                result.outcome = "secret_unavailable".into();
                result.error_code = Some("secret_unavailable".into());
                return result;
            }
        };
        let body = notify::deploy_body(t);
        let opts = SendOptions::default();
        for attempt in 1..=t.retries + 1 {
            if attempt > 1 {
                tokio::time::sleep(backoff(attempt - 1, self.backoff_base, self.backoff_max)).await;
            }
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or_default();
            let nonce = uuid::Uuid::new_v4().simple().to_string();
            let mut headers = HeaderMap::new();
            headers.insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            for (k, v) in slipway_core::deploy::sign(
                secret.expose_secret().as_bytes(),
                "POST",
                t.url.path(),
                &body,
                now,
                &nonce,
            ) {
                headers.insert(
                    HeaderName::from_static(k),
                    HeaderValue::from_str(&v).expect("signature headers are ASCII"),
                );
            }
            let target = CallTarget {
                name: t.name.clone(),
                url: t.url.clone(),
                method: Method::POST,
                headers,
                body: Some(String::from_utf8_lossy(&body).into_owned()),
                auth: None,
                timeout: t.timeout,
                expected: ExpectedStatus::Success,
                retries: 0,
            };
            let r = crate::send_one(&self.client, &target, &self.secrets, &opts).await;
            result.attempts = attempt;
            result.status = r.status;
            result.error_code = r.error_code.map(str::to_string);
            if r.outcome == Outcome::Delivered {
                result.outcome = "delivered".into();
                result.error_code = None;
                break;
            }
            if !r.status.is_none_or(retryable_status) {
                break;
            }
        }
        result
    }
}
