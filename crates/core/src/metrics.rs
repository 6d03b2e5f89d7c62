//! The counters slipway reports, under one set of names: `slipway serve` exposes them on
//! `GET /metrics` (Prometheus), the Lambdas write them to their logs in CloudWatch's embedded
//! metric format (EMF), which CloudWatch turns into metrics of the namespace [`NAMESPACE`].
//!
//! | concept | Prometheus (serve) | CloudWatch (Lambdas) | label / dimension |
//! |---|---|---|---|
//! | webhooks answered | `slipway_webhooks_total` | `Webhooks` (listener) | `answer` / `Answer` |
//! | jobs planned | `slipway_jobs_planned_total` | `JobsPlanned` (spawner) | `trigger` / `Trigger` |
//! | builds finished | `slipway_builds_finished_total` | `BuildsFinished` (notifier) | `result` / `Result` |
//! | build duration | `slipway_build_duration_seconds` | `BuildDuration` (notifier) | `result` / `Result` |
//! | queue wait | `slipway_build_queue_wait_seconds` | `QueueWait` (spawner: job queued to planned) | — |
//!
//! Serve also has gauges of jobs and builds by state (`slipway_jobs`, `slipway_builds`): the
//! queue depth. On AWS the queue depth and age are SQS's own metrics.
//!
//! Pure: the caller passes the time and writes the line.

use serde_json::{Value, json};

use crate::job::Trigger;
use crate::listener::Reply;
use crate::notify::BuildStatus;

/// The CloudWatch namespace of the Lambdas' metrics.
pub const NAMESPACE: &str = "Slipway";

pub const WEBHOOKS: &str = "Webhooks";
pub const JOBS_PLANNED: &str = "JobsPlanned";
pub const BUILDS_FINISHED: &str = "BuildsFinished";
pub const BUILD_DURATION: &str = "BuildDuration";
pub const QUEUE_WAIT: &str = "QueueWait";

/// What a webhook was answered, as a label: the listener's `status` (`queued`, `duplicate`,
/// `filtered`, `ignored`, `pong`) or its error code (`signature_mismatch`, ...). Anything else
/// (never expected) is `other`, so a label never carries a value from a request.
pub fn webhook_answer(reply: &Reply) -> &'static str {
    const KNOWN: &[&str] = &[
        "queued",
        "duplicate",
        "filtered",
        "ignored",
        "pong",
        "method_not_allowed",
        "payload_too_large",
        "signature_missing",
        "signature_sha256_required",
        "signature_malformed",
        "signature_ambiguous",
        "signature_mismatch",
        "unsupported_media_type",
        "missing_header",
        "invalid_header",
        "invalid_json",
        "missing_field",
        "invalid_field",
        "queue_unavailable",
    ];
    let word = reply
        .body
        .get("error")
        .or_else(|| reply.body.get("status"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    KNOWN
        .iter()
        .find(|k| **k == word)
        .copied()
        .unwrap_or("other")
}

/// A job's trigger as a label: `push`, `schedule`, `parent`.
pub fn trigger_label(t: &Trigger) -> &'static str {
    match t {
        Trigger::Push => "push",
        Trigger::Schedule { .. } => "schedule",
        Trigger::Parent { .. } => "parent",
    }
}

/// A finished build's result as a label: `succeeded`, `failed`, `stopped` (the notification's
/// status; `in_progress` never finishes a build).
pub fn result_label(s: BuildStatus) -> &'static str {
    match s {
        BuildStatus::Succeeded => "succeeded",
        BuildStatus::Failed => "failed",
        BuildStatus::Stopped => "stopped",
        BuildStatus::InProgress => "in_progress",
    }
}

/// CloudWatch units the metrics use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    Seconds,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Seconds => "Seconds",
        }
    }
}

/// One metric value as an EMF log line (a JSON object written alone on a line of the Lambda's
/// standard output): CloudWatch Logs extracts it as `metric` in [`NAMESPACE`] with the one
/// dimension given (or none). `timestamp_ms` is the time of the observation.
pub fn emf(
    metric: &str,
    unit: Unit,
    value: f64,
    dimension: Option<(&str, &str)>,
    timestamp_ms: i64,
) -> Value {
    let dims: Vec<Vec<&str>> = match dimension {
        Some((k, _)) => vec![vec![k]],
        None => vec![vec![]],
    };
    let mut line = json!({
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": dims,
                "Metrics": [{ "Name": metric, "Unit": unit.as_str() }],
            }],
        },
        metric: value,
    });
    if let Some((k, v)) = dimension {
        line[k] = Value::String(v.to_string());
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::StatusCode;

    #[test]
    fn answers_are_the_listeners_words_and_nothing_from_the_request() {
        let reply = |body: Value| Reply {
            status: StatusCode::ACCEPTED,
            body,
        };
        assert_eq!(
            webhook_answer(&reply(json!({"status": "queued"}))),
            "queued"
        );
        assert_eq!(
            webhook_answer(&reply(
                json!({"error": "signature_mismatch", "message": "x"})
            )),
            "signature_mismatch"
        );
        assert_eq!(
            webhook_answer(&reply(json!({"status": "<script>"}))),
            "other"
        );
    }

    #[test]
    fn an_emf_line_names_its_metric_dimension_and_unit() {
        let l = emf(
            BUILDS_FINISHED,
            Unit::Count,
            1.0,
            Some(("Result", "failed")),
            1_700_000_000_000,
        );
        assert_eq!(l["_aws"]["Timestamp"], 1_700_000_000_000i64);
        let m = &l["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(m["Namespace"], "Slipway");
        assert_eq!(m["Dimensions"], json!([["Result"]]));
        assert_eq!(
            m["Metrics"][0],
            json!({"Name": "BuildsFinished", "Unit": "Count"})
        );
        assert_eq!(l["BuildsFinished"], 1.0);
        assert_eq!(l["Result"], "failed");
        let q = emf(QUEUE_WAIT, Unit::Seconds, 2.5, None, 0);
        assert_eq!(q["_aws"]["CloudWatchMetrics"][0]["Dimensions"], json!([[]]));
    }
}
