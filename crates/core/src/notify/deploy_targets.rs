//! The deploy targets' configuration: the deploy agents to call when an image built, and the
//! body of each deploy call. Parsing and validation only; `slipway_calls::deploy` calls them.

use std::collections::BTreeMap;
use std::time::Duration;

use super::shorten;
use crate::names::Invalid;

/// One deploy target: a deploy agent's `/deploys` endpoint, the service it redeploys and the
/// secret (by reference) the requests are signed with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeployTarget {
    pub name: String,
    pub url: url::Url,
    pub service: String,
    /// SSM parameter (AWS) or file (`slipway serve`) holding the signing secret.
    pub secret: crate::secrets::SecretRef,
    pub timeout: Duration,
    pub retries: u32,
}

#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct DeployTargetConfig {
    url: String,
    #[serde(default)]
    service: Option<String>,
    #[serde(default)]
    secret_parameter: Option<String>,
    #[serde(default)]
    secret_file: Option<String>,
    #[serde(default)]
    timeout_seconds: Option<f64>,
    #[serde(default)]
    retries: Option<u32>,
}

pub const DEPLOY_DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
pub const DEPLOY_DEFAULT_RETRIES: u32 = 2;

/// Why the deploy targets configuration is unusable. Names the target, never a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("deploy target {target}: {reason}")]
pub struct DeployTargetError {
    pub target: String,
    pub reason: String,
}

impl DeployTargetError {
    pub fn code(&self) -> &'static str {
        "invalid_deploy_target"
    }
}

/// Parses the deploy targets, a JSON object from target name to
/// `{"url", "service"?, "secret_parameter" | "secret_file", "timeout_seconds"?, "retries"?}`.
/// `service` defaults to the target name. URLs must be `https`, or `http` to a loopback host.
pub fn parse_deploy_targets(
    raw: &str,
) -> Result<BTreeMap<String, DeployTarget>, DeployTargetError> {
    let all = |reason: String| DeployTargetError {
        target: "*".into(),
        reason,
    };
    if raw.trim().is_empty() {
        return Ok(BTreeMap::new());
    }
    let map: BTreeMap<String, DeployTargetConfig> = serde_json::from_str(raw).map_err(|e| {
        all(format!(
            "the configuration must be a JSON object of targets (line {}, column {})",
            e.line(),
            e.column()
        ))
    })?;
    let mut out = BTreeMap::new();
    for (name, c) in map {
        let bad = |reason: &str| DeployTargetError {
            target: shorten(&name, 64),
            reason: reason.to_string(),
        };
        crate::names::check_name(&name).map_err(|Invalid(r)| bad(r))?;
        let url = url::Url::parse(&c.url).map_err(|_| bad("url is not a URL"))?;
        let loopback = matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
        if !(url.scheme() == "https" || (url.scheme() == "http" && loopback)) {
            return Err(bad("url must be https (http only to a loopback address)"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(bad("url must not carry credentials"));
        }
        let service = c.service.unwrap_or_else(|| name.clone());
        crate::names::check_service(&service).map_err(|Invalid(r)| bad(r))?;
        let secret = match (c.secret_parameter, c.secret_file) {
            (Some(p), None) => crate::secrets::SecretRef::Parameter(p),
            (None, Some(f)) => crate::secrets::SecretRef::File(f),
            _ => {
                return Err(bad(
                    "exactly one of secret_parameter and secret_file is needed",
                ));
            }
        };
        let timeout = match c.timeout_seconds {
            None => DEPLOY_DEFAULT_TIMEOUT,
            Some(s) if s > 0.0 && s <= 60.0 => Duration::from_secs_f64(s),
            Some(_) => return Err(bad("timeout_seconds must be more than 0 and at most 60")),
        };
        let retries = c.retries.unwrap_or(DEPLOY_DEFAULT_RETRIES);
        if retries > 5 {
            return Err(bad("retries must be at most 5"));
        }
        out.insert(
            name.clone(),
            DeployTarget {
                name,
                url,
                service,
                secret,
                timeout,
                retries,
            },
        );
    }
    Ok(out)
}

/// The body of a deploy request for a target (what `slipway agent` accepts).
pub fn deploy_body(target: &DeployTarget) -> Vec<u8> {
    serde_json::to_vec(&crate::deploy::DeployRequest {
        service: target.service.clone(),
        action: crate::deploy::Action::Pull,
    })
    .expect("a deploy request always serializes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deploy_targets_parse_and_refuse_plain_http() {
        let t = parse_deploy_targets(
            r#"{"prod-web": {"url": "https://d.example.com/deploys", "secret_parameter": "/s/p"}}"#,
        )
        .unwrap();
        assert_eq!(t["prod-web"].service, "prod-web");
        let e = parse_deploy_targets(
            r#"{"x": {"url": "http://d.example.com/deploys", "secret_parameter": "/s/p"}}"#,
        )
        .unwrap_err();
        assert_eq!(e.target, "x");
        assert!(parse_deploy_targets("").unwrap().is_empty());
        assert!(parse_deploy_targets("[]").is_err());
    }
}
