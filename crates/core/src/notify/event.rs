//! Reading CodeBuild's "Build State Change" event into a [`BuildOutcome`]: lenient where real
//! events vary (numbers as strings, missing optional fields, both time formats), strict where a
//! wrong value would make a message lie (the status, the slipway variables).

use std::time::Duration;

use serde::Serialize;
use serde_json::Value;
use time::OffsetDateTime;
use time::macros::format_description;

use super::shorten;
use crate::build_env::{self, BuildEnvError, BuildInfo};

/// Longest phase context kept in a message (CodeBuild's can carry a whole command line).
const MAX_CONTEXT_CHARS: usize = 500;

/// A build's state as CodeBuild reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BuildStatus {
    InProgress,
    Succeeded,
    Failed,
    Stopped,
}

impl BuildStatus {
    /// CodeBuild's spelling; also the `status` message attribute.
    pub fn as_str(self) -> &'static str {
        match self {
            BuildStatus::InProgress => "IN_PROGRESS",
            BuildStatus::Succeeded => "SUCCEEDED",
            BuildStatus::Failed => "FAILED",
            BuildStatus::Stopped => "STOPPED",
        }
    }

    /// CodeBuild's build statuses, mapped (`FAULT` and `TIMED_OUT` are failures).
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_uppercase().as_str() {
            "IN_PROGRESS" => Some(BuildStatus::InProgress),
            "SUCCEEDED" => Some(BuildStatus::Succeeded),
            "FAILED" | "FAULT" | "TIMED_OUT" => Some(BuildStatus::Failed),
            "STOPPED" => Some(BuildStatus::Stopped),
            _ => None,
        }
    }

    pub fn is_final(self) -> bool {
        self != BuildStatus::InProgress
    }

    pub(super) fn mark(self) -> &'static str {
        match self {
            BuildStatus::Succeeded => "✔",
            BuildStatus::InProgress => "▶",
            BuildStatus::Failed | BuildStatus::Stopped => "✘",
        }
    }

    pub(super) fn verb(self) -> &'static str {
        match self {
            BuildStatus::Succeeded => "built",
            BuildStatus::InProgress => "building",
            BuildStatus::Failed => "failed",
            BuildStatus::Stopped => "stopped",
        }
    }
}

/// The phase a build failed in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailedPhase {
    /// `BUILD`, `POST_BUILD`, ...
    pub phase: String,
    /// `FAILED`, `FAULT`, `TIMED_OUT`, `STOPPED`, ...
    pub status: String,
    /// CodeBuild's `phase-context` joined (`COMMAND_EXECUTION_ERROR: ...`), shortened.
    pub reason: String,
}

/// One build's result, whoever ran it (CodeBuild or `slipway serve`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildOutcome {
    pub status: BuildStatus,
    /// CodeBuild's build ARN or id; `slipway serve`'s build number.
    pub build_id: String,
    pub info: BuildInfo,
    pub log_url: Option<String>,
    pub duration: Option<Duration>,
    pub failed_phase: Option<FailedPhase>,
    /// Where the repository is cloned from, when the runner knows it (`slipway serve`: the job's
    /// clone URL, which may be a `file://` one). `None` (CodeBuild): the repository on GitHub.
    pub clone_url: Option<String>,
}

/// Why an event was not turned into a notification. None of these publish anything: a message
/// built from a malformed event could only guess, and a guess would lie.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("the event is not a JSON object")]
    NotAnObject,
    #[error("the event is not a CodeBuild Build State Change (detail-type `{0}`)")]
    NotBuildStateChange(String),
    #[error("the event has no {0}")]
    Missing(&'static str),
    #[error("the build status `{0}` is unknown")]
    UnknownStatus(String),
    #[error("the build carries no slipway variables: not a slipway build")]
    NotSlipway,
    #[error("the build's slipway variables are unusable: {0}")]
    BuildEnv(#[from] BuildEnvError),
}

impl EventError {
    pub fn code(&self) -> &'static str {
        match self {
            EventError::NotAnObject => "event_not_object",
            EventError::NotBuildStateChange(_) => "event_not_build_state_change",
            EventError::Missing(_) => "event_field_missing",
            EventError::UnknownStatus(_) => "event_status_unknown",
            EventError::NotSlipway => "event_not_slipway",
            EventError::BuildEnv(e) => e.code(),
        }
    }
}

/// A string, or a number written as one (`55`, `55.0`, `"55"`).
fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A non-negative number, as a number or a string (`"112"`, `112`, `112.0`).
fn number(v: &Value) -> Option<f64> {
    let n = match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    }?;
    (n.is_finite() && n >= 0.0).then_some(n)
}

/// CodeBuild's times: `Sep 1, 2017 4:12:29 PM` (UTC) in `additional-information`, RFC 3339 at
/// the top of the event. Unreadable times are `None`, never an error.
pub fn parse_time(s: &str) -> Option<OffsetDateTime> {
    let s = s.trim();
    if let Ok(t) = OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339) {
        return Some(t);
    }
    let fmt = format_description!(
        "[month repr:short case_sensitive:false] [day padding:none], [year] [hour repr:12 padding:none]:[minute]:[second] [period case_sensitive:false]"
    );
    time::PrimitiveDateTime::parse(s, fmt)
        .ok()
        .map(|t| t.assume_utc())
}

fn env_pairs(list: Option<&Value>) -> Vec<(String, String)> {
    list.and_then(Value::as_array)
        .map(|vars| {
            vars.iter()
                .filter_map(|v| {
                    let name = v.get("name").and_then(text)?;
                    let value = v.get("value").and_then(text).unwrap_or_default();
                    Some((name, value))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The first phase that did not succeed, with its context.
fn failed_phase(info: &Value) -> Option<FailedPhase> {
    let phases = info.get("phases")?.as_array()?;
    phases.iter().find_map(|p| {
        let status = p.get("phase-status").and_then(text)?;
        if status.eq_ignore_ascii_case("SUCCEEDED") {
            return None;
        }
        let phase = p
            .get("phase-type")
            .and_then(text)
            .unwrap_or_else(|| "UNKNOWN".into());
        let reason = match p.get("phase-context") {
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(text)
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty() && s != ":")
                .collect::<Vec<_>>()
                .join("; "),
            Some(v) => text(v).unwrap_or_default(),
            None => String::new(),
        };
        Some(FailedPhase {
            phase,
            status,
            reason: shorten(&reason, MAX_CONTEXT_CHARS),
        })
    })
}

/// Reads a CodeBuild "Build State Change" event (the whole EventBridge envelope, or its
/// `detail` alone). Lenient where real events vary (numbers as strings, missing optional
/// fields, both time formats); strict where a wrong value would make the message lie (status,
/// the slipway variables, validated again by [`build_env::parse_build_env`]).
pub fn parse_event(event: &Value) -> Result<BuildOutcome, EventError> {
    let obj = event.as_object().ok_or(EventError::NotAnObject)?;
    if let Some(dt) = obj.get("detail-type").and_then(text)
        && dt != "CodeBuild Build State Change"
    {
        return Err(EventError::NotBuildStateChange(shorten(&dt, 80)));
    }
    let detail = obj.get("detail").unwrap_or(event);
    if !detail.is_object() {
        return Err(EventError::Missing("detail"));
    }
    let raw_status = detail
        .get("build-status")
        .and_then(text)
        .ok_or(EventError::Missing("detail.build-status"))?;
    let status = BuildStatus::parse(&raw_status)
        .ok_or_else(|| EventError::UnknownStatus(shorten(&raw_status, 40)))?;
    let build_id = detail
        .get("build-id")
        .and_then(text)
        .or_else(|| obj.get("resources").and_then(|r| r.get(0)).and_then(text))
        .ok_or(EventError::Missing("detail.build-id"))?;
    let empty = Value::Null;
    let info = detail.get("additional-information").unwrap_or(&empty);
    let mut vars = env_pairs(
        info.get("environment")
            .and_then(|e| e.get("environment-variables")),
    );
    vars.extend(env_pairs(info.get("exported-environment-variables")));
    if !vars.iter().any(|(k, _)| k == build_env::SLIPWAY_JOB_ID) {
        return Err(EventError::NotSlipway);
    }
    let build = build_env::parse_build_env(vars)?;

    let log_url = info
        .get("logs")
        .and_then(|l| l.get("deep-link"))
        .and_then(text)
        .filter(|u| u.starts_with("https://"));
    let started = info
        .get("build-start-time")
        .and_then(text)
        .and_then(|t| parse_time(&t));
    let event_time = obj.get("time").and_then(text).and_then(|t| parse_time(&t));
    let phase_sum: f64 = info
        .get("phases")
        .and_then(Value::as_array)
        .map(|ps| {
            ps.iter()
                .filter_map(|p| p.get("duration-in-seconds").and_then(number))
                .sum()
        })
        .unwrap_or(0.0);
    let duration = match (started, event_time) {
        (Some(s), Some(e)) if e >= s && status.is_final() => {
            Some(Duration::from_secs((e - s).whole_seconds() as u64))
        }
        _ if phase_sum > 0.0 => Some(Duration::from_secs(phase_sum as u64)),
        _ => None,
    };
    let failed_phase = match status {
        BuildStatus::Failed | BuildStatus::Stopped => failed_phase(info),
        _ => None,
    };
    Ok(BuildOutcome {
        status,
        build_id,
        info: build,
        log_url,
        duration,
        failed_phase,
        clone_url: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codebuild_times() {
        let t = parse_time("Sep 1, 2017 4:12:29 PM").unwrap();
        assert_eq!(t.unix_timestamp(), 1504282349);
        assert_eq!(
            parse_time("2017-09-01T16:14:21Z").unwrap().unix_timestamp(),
            1504282461
        );
        assert!(parse_time("yesterday").is_none());
    }
}
