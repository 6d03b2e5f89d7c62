//! Call targets: the configuration of slipway's calls, the HTTP requests it makes on a schedule
//! (scheduled calls) and with each notification (`slipway serve`'s notification calls). Parsing
//! and validation only; `slipway-calls` sends.
//!
//! The configuration is a JSON array (an SSM parameter on AWS, a file for `slipway serve`):
//!
//! ```json
//! [{"name": "rebuild-docs", "url": "https://ci.example.com/hooks/docs", "method": "POST",
//!   "headers": {"content-type": "application/json"}, "body": "{\"ref\":\"main\"}",
//!   "auth": {"scheme": "bearer", "parameter": "/slipway/hooks/docs-token"},
//!   "timeout_seconds": 10, "expected_status": [200, 202], "retries": 2}]
//! ```
//!
//! Each target is parsed on its own: a bad one is reported by name and the others still run.

use std::collections::BTreeMap;
use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue, Method};
use serde::{Deserialize, Serialize};

use crate::names;
use crate::secrets::SecretRef;

pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
pub const MAX_TIMEOUT: Duration = Duration::from_secs(300);
pub const DEFAULT_RETRIES: u32 = 2;
pub const MAX_RETRIES: u32 = 10;
pub const MAX_TARGETS: usize = 200;

/// One target as written in the configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetConfig {
    pub name: String,
    pub url: String,
    #[serde(default)]
    pub method: Option<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub auth: Option<AuthConfig>,
    #[serde(default)]
    pub timeout_seconds: Option<f64>,
    #[serde(default)]
    pub expected_status: Option<StatusList>,
    #[serde(default)]
    pub retries: Option<u32>,
}

/// `expected_status`: one code or a list.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum StatusList {
    One(u16),
    Many(Vec<u16>),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    pub scheme: AuthScheme,
    /// Basic auth only.
    #[serde(default)]
    pub username: Option<String>,
    /// SSM parameter holding the token or password (AWS).
    #[serde(default)]
    pub parameter: Option<String>,
    /// File holding the token or password (`slipway serve`).
    #[serde(default)]
    pub file: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthScheme {
    Bearer,
    Basic,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Auth {
    pub scheme: AuthScheme,
    pub username: Option<String>,
    pub secret: SecretRef,
}

/// Which answers count as success.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExpectedStatus {
    /// Any 2xx.
    Success,
    Exactly(Vec<u16>),
}

impl ExpectedStatus {
    pub fn accepts(&self, status: u16) -> bool {
        match self {
            ExpectedStatus::Success => (200..300).contains(&status),
            ExpectedStatus::Exactly(codes) => codes.contains(&status),
        }
    }
}

/// A validated target.
#[derive(Debug, Clone)]
pub struct CallTarget {
    pub name: String,
    pub url: url::Url,
    pub method: Method,
    /// Values are marked sensitive: `Debug` does not print them.
    pub headers: HeaderMap,
    pub body: Option<String>,
    pub auth: Option<Auth>,
    pub timeout: Duration,
    pub expected: ExpectedStatus,
    /// Further attempts after the first.
    pub retries: u32,
}

/// A target that cannot be sent. Names the target (or its position when it has no usable name)
/// and the field; never repeats a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[error("call target {target}: {field}: {reason}")]
pub struct TargetError {
    pub target: String,
    pub field: &'static str,
    pub reason: String,
}

impl TargetError {
    pub fn code(&self) -> &'static str {
        "invalid_target"
    }
}

/// The configuration as a whole is unusable (not a JSON array, too many targets).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetsError {
    #[error("call targets must be a JSON array of objects: {0}")]
    NotAnArray(String),
    #[error("at most {MAX_TARGETS} call targets are allowed")]
    TooMany,
}

impl TargetsError {
    pub fn code(&self) -> &'static str {
        match self {
            TargetsError::NotAnArray(_) => "invalid_targets",
            TargetsError::TooMany => "too_many_targets",
        }
    }
}

/// Parses every target on its own, in order. Duplicate names: the later target is refused.
pub fn parse_targets(json: &str) -> Result<Vec<Result<CallTarget, TargetError>>, TargetsError> {
    let items: Vec<serde_json::Value> =
        serde_json::from_str(json).map_err(|e| TargetsError::NotAnArray(e.to_string()))?;
    if items.len() > MAX_TARGETS {
        return Err(TargetsError::TooMany);
    }
    let mut seen = std::collections::BTreeSet::new();
    Ok(items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            // Name the target by its `name` when that is usable, else by position.
            let label = item
                .get("name")
                .and_then(|n| n.as_str())
                .filter(|n| names::check_name(n).is_ok())
                .map(str::to_string)
                .unwrap_or_else(|| format!("#{}", i + 1));
            let config: TargetConfig = serde_json::from_value(item).map_err(|e| TargetError {
                target: label.clone(),
                field: "config",
                reason: e.to_string(),
            })?;
            let target = config.validate().map_err(|(field, reason)| TargetError {
                target: label.clone(),
                field,
                reason,
            })?;
            if !seen.insert(target.name.clone()) {
                return Err(TargetError {
                    target: label,
                    field: "name",
                    reason: "another target has the same name".into(),
                });
            }
            Ok(target)
        })
        .collect())
}

/// Headers slipway sets itself or that auth owns.
const RESERVED_HEADERS: &[&str] = &[
    "authorization",
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
];

type FieldError = (&'static str, String);

impl TargetConfig {
    pub fn validate(self) -> Result<CallTarget, FieldError> {
        let bad = |field: &'static str, reason: &str| (field, reason.to_string());
        names::check_name(&self.name).map_err(|r| bad("name", r.0))?;
        let url = url::Url::parse(&self.url).map_err(|_| bad("url", "must be an absolute URL"))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(bad("url", "must be an http:// or https:// URL with a host"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(bad("url", "may not carry credentials; use `auth`"));
        }
        let method = match self
            .method
            .as_deref()
            .map(str::to_ascii_uppercase)
            .as_deref()
        {
            None | Some("POST") => Method::POST,
            Some("GET") => Method::GET,
            Some("PUT") => Method::PUT,
            Some("PATCH") => Method::PATCH,
            Some("DELETE") => Method::DELETE,
            Some("HEAD") => Method::HEAD,
            Some(_) => {
                return Err(bad(
                    "method",
                    "must be GET, POST, PUT, PATCH, DELETE or HEAD",
                ));
            }
        };
        let mut headers = HeaderMap::new();
        for (k, v) in &self.headers {
            let name = HeaderName::from_bytes(k.as_bytes())
                .map_err(|_| bad("headers", "a header name is not a valid HTTP token"))?;
            if RESERVED_HEADERS.contains(&name.as_str()) {
                return Err(bad(
                    "headers",
                    "Authorization, Host, Content-Length, Transfer-Encoding and Connection are set by slipway (use `auth`)",
                ));
            }
            let mut value = HeaderValue::from_str(v)
                .map_err(|_| bad("headers", "a header value holds control characters"))?;
            value.set_sensitive(true);
            headers.append(name, value);
        }
        if self.body.is_some() && matches!(method, Method::GET | Method::HEAD) {
            return Err(bad("body", "GET and HEAD requests carry no body"));
        }
        let auth = self.auth.map(validate_auth).transpose()?;
        let timeout = match self.timeout_seconds {
            None => DEFAULT_TIMEOUT,
            Some(s) if s.is_finite() && s >= 0.05 && s <= MAX_TIMEOUT.as_secs_f64() => {
                Duration::from_secs_f64(s)
            }
            Some(_) => return Err(bad("timeout_seconds", "must be from 0.05 to 300 seconds")),
        };
        let expected = match self.expected_status {
            None => ExpectedStatus::Success,
            Some(list) => {
                let codes = match list {
                    StatusList::One(c) => vec![c],
                    StatusList::Many(c) => c,
                };
                if codes.is_empty() || codes.iter().any(|c| !(100..=599).contains(c)) {
                    return Err(bad(
                        "expected_status",
                        "must be one or more HTTP status codes from 100 to 599",
                    ));
                }
                ExpectedStatus::Exactly(codes)
            }
        };
        let retries = match self.retries {
            None => DEFAULT_RETRIES,
            Some(r) if r <= MAX_RETRIES => r,
            Some(_) => return Err(bad("retries", "must be from 0 to 10")),
        };
        Ok(CallTarget {
            name: self.name,
            url,
            method,
            headers,
            body: self.body,
            auth,
            timeout,
            expected,
            retries,
        })
    }
}

fn validate_auth(a: AuthConfig) -> Result<Auth, FieldError> {
    let bad = |reason: &str| ("auth", reason.to_string());
    let secret = match (a.parameter, a.file) {
        (Some(p), None) => {
            // SSM names: letters, digits and `_.-/`; a path must start with `/`.
            if p.is_empty()
                || p.len() > 2048
                || !p
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-' | b'/'))
            {
                return Err(bad("`parameter` must be an SSM parameter name"));
            }
            SecretRef::Parameter(p)
        }
        (None, Some(f)) => {
            if f.is_empty() || f.chars().any(char::is_control) {
                return Err(bad("`file` must be a path"));
            }
            SecretRef::File(f)
        }
        _ => {
            return Err(bad(
                "exactly one of `parameter` and `file` names the secret",
            ));
        }
    };
    match (a.scheme, &a.username) {
        (AuthScheme::Bearer, Some(_)) => Err(bad("bearer auth takes no `username`")),
        (AuthScheme::Basic, None) => Err(bad("basic auth needs a `username`")),
        (AuthScheme::Basic, Some(u))
            if u.is_empty() || u.contains(':') || u.chars().any(char::is_control) =>
        {
            Err(bad("`username` may not be empty or contain `:`"))
        }
        _ => Ok(Auth {
            scheme: a.scheme,
            username: a.username,
            secret,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_target() {
        let json = r#"[{"name":"docs","url":"https://ci.example.com/hooks/docs?x=1","method":"put",
            "headers":{"Content-Type":"application/json","X-Api-Key":"k-123"},"body":"{}",
            "auth":{"scheme":"basic","username":"ci","parameter":"/slipway/hooks/docs"},
            "timeout_seconds":2.5,"expected_status":[200,202],"retries":0}]"#;
        let t = parse_targets(json).unwrap().remove(0).unwrap();
        assert_eq!(t.name, "docs");
        assert_eq!(t.method, Method::PUT);
        assert_eq!(t.timeout, Duration::from_millis(2500));
        assert_eq!(t.retries, 0);
        assert!(t.expected.accepts(202) && !t.expected.accepts(204));
        assert_eq!(
            t.auth.as_ref().unwrap().secret,
            SecretRef::Parameter("/slipway/hooks/docs".into())
        );
        assert_eq!(t.headers.get("x-api-key").unwrap(), "k-123");
        // Header values never show in Debug output.
        assert!(!format!("{t:?}").contains("k-123"));
    }

    #[test]
    fn defaults() {
        let t = parse_targets(r#"[{"name":"a","url":"http://127.0.0.1:9/x"}]"#)
            .unwrap()
            .remove(0)
            .unwrap();
        assert_eq!(t.method, Method::POST);
        assert_eq!(t.timeout, DEFAULT_TIMEOUT);
        assert_eq!(t.retries, DEFAULT_RETRIES);
        assert!(t.expected.accepts(204) && !t.expected.accepts(302));
        assert!(t.auth.is_none());
    }

    #[test]
    fn a_bad_target_is_named_and_the_others_parse() {
        let json = r#"[
            {"name":"good","url":"https://a.example/x"},
            {"name":"ftp","url":"ftp://a.example/x"},
            {"url":"https://a.example/x"},
            {"name":"creds","url":"https://u:p@a.example/x"},
            {"name":"verb","url":"https://a.example/x","method":"TRACE"},
            {"name":"hdr","url":"https://a.example/x","headers":{"Authorization":"Bearer x"}},
            {"name":"hdr2","url":"https://a.example/x","headers":{"X-A":"a\nb"}},
            {"name":"slow","url":"https://a.example/x","timeout_seconds":0},
            {"name":"status","url":"https://a.example/x","expected_status":[700]},
            {"name":"auth","url":"https://a.example/x","auth":{"scheme":"bearer"}},
            {"name":"auth2","url":"https://a.example/x","auth":{"scheme":"basic","file":"/x"}},
            {"name":"auth3","url":"https://a.example/x","auth":{"scheme":"bearer","parameter":"a b"}},
            {"name":"tries","url":"https://a.example/x","retries":11},
            {"name":"get","url":"https://a.example/x","method":"GET","body":"x"},
            {"name":"good","url":"https://b.example/x"},
            {"name":"extra","url":"https://a.example/x","bogus":1}
        ]"#;
        let got: Vec<_> = parse_targets(json)
            .unwrap()
            .into_iter()
            .map(|r| r.map(|t| t.name).map_err(|e| (e.target, e.field)))
            .collect();
        assert_eq!(
            got,
            vec![
                Ok("good".to_string()),
                Err(("ftp".into(), "url")),
                Err(("#3".into(), "config")),
                Err(("creds".into(), "url")),
                Err(("verb".into(), "method")),
                Err(("hdr".into(), "headers")),
                Err(("hdr2".into(), "headers")),
                Err(("slow".into(), "timeout_seconds")),
                Err(("status".into(), "expected_status")),
                Err(("auth".into(), "auth")),
                Err(("auth2".into(), "auth")),
                Err(("auth3".into(), "auth")),
                Err(("tries".into(), "retries")),
                Err(("get".into(), "body")),
                Err(("good".into(), "name")),
                Err(("extra".into(), "config")),
            ]
        );
        assert_eq!(
            parse_targets(r#"{"name":"x"}"#).unwrap_err().code(),
            "invalid_targets"
        );
    }
}
