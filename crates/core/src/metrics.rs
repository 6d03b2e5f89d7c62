//! The counters slipway reports, under one set of names: `slipway serve` exposes them on
//! `GET /metrics` (Prometheus), the Lambdas write them to their logs in CloudWatch's embedded
//! metric format (EMF), which CloudWatch Logs turns into metrics of the namespace [`NAMESPACE`].
//!
//! | concept | Prometheus (serve) | CloudWatch (Lambdas) | label / dimension |
//! |---|---|---|---|
//! | webhooks answered | `slipway_webhooks_total` | `Webhooks` (listener) | `answer` / `Answer` |
//! | jobs planned | `slipway_jobs_planned_total` | `JobsPlanned` (spawner) | `trigger` / `Trigger` |
//! | builds started | `slipway_builds_started_total` | `BuildsStarted` (spawner) | — |
//! | builds that failed to start | — | `BuildsStartFailed` (spawner) | — |
//! | queue wait | `slipway_build_queue_wait_seconds` | `QueueWait` (spawner) | — |
//! | builds finished | `slipway_builds_finished_total` | `BuildsFinished` (notifier) | `result` / `Result` |
//! | build duration | `slipway_build_duration_seconds` | `BuildDuration` (notifier) | `result` / `Result` |
//! | notifications | `slipway_notifications_total` | `Notifications` (notifier) | `outcome` / `Outcome` |
//!
//! One has no Prometheus twin: serve starts its builds on the local engine, with no CodeBuild to
//! refuse them.
//!
//! The queue wait is not the same wait on both sides: serve measures a build from queued to
//! started (its own queue holds builds); on AWS the queue holds jobs, and `QueueWait` is a job's
//! time on the jobs queue, from SQS's `SentTimestamp` to the spawner taking it. CodeBuild's own
//! queueing is in the build's phases, not here.
//!
//! Every CloudWatch metric also has the dimension [`STACK`] (the CloudFormation stack's name), so
//! two stacks in one account keep their metrics apart. Serve also has gauges of jobs and builds
//! by state (`slipway_jobs`, `slipway_builds`): its queue depth; on AWS the queue depth and age
//! are SQS's own metrics.
//!
//! Pure: the caller passes the time and writes the line.

use std::time::Duration;

use serde_json::Value;

use crate::job::Trigger;
use crate::listener::Reply;
use crate::notify::BuildStatus;

/// The CloudWatch namespace of the Lambdas' metrics.
pub const NAMESPACE: &str = "Slipway";

pub const WEBHOOKS: &str = "Webhooks";
pub const JOBS_PLANNED: &str = "JobsPlanned";
pub const BUILDS_STARTED: &str = "BuildsStarted";
pub const BUILDS_START_FAILED: &str = "BuildsStartFailed";
pub const QUEUE_WAIT: &str = "QueueWait";
pub const BUILDS_FINISHED: &str = "BuildsFinished";
pub const BUILD_DURATION: &str = "BuildDuration";
pub const NOTIFICATIONS: &str = "Notifications";

/// The dimension every CloudWatch metric has: the name of the stack whose Lambda wrote it.
pub const STACK: &str = "Stack";
pub const ANSWER: &str = "Answer";
pub const TRIGGER: &str = "Trigger";
pub const RESULT: &str = "Result";
pub const OUTCOME: &str = "Outcome";

/// CloudWatch units the metrics use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    Seconds,
}

impl Unit {
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Seconds => "Seconds",
        }
    }
}

/// One metric the Lambdas write: what the template's dashboard and alarms may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CloudWatchMetric {
    pub name: &'static str,
    pub unit: Unit,
    /// Its dimensions besides [`STACK`], which every metric has.
    pub dimensions: &'static [&'static str],
    /// The Lambda that writes it (`crates/<function>`).
    pub function: &'static str,
    /// The same concept on `slipway serve`'s `GET /metrics`, where serve has it.
    pub prometheus: Option<&'static str>,
}

impl CloudWatchMetric {
    /// Every dimension of the metric, [`STACK`] first: its identity in CloudWatch.
    pub fn dimension_set(&self) -> Vec<&'static str> {
        std::iter::once(STACK)
            .chain(self.dimensions.iter().copied())
            .collect()
    }
}

/// Every metric the Lambdas write, and nothing else: the line builders below take units and
/// dimensions from here, and `crates/stack` holds the template's dashboard and alarms to it.
pub const CLOUDWATCH: &[CloudWatchMetric] = &[
    CloudWatchMetric {
        name: WEBHOOKS,
        unit: Unit::Count,
        dimensions: &[ANSWER],
        function: "listener",
        prometheus: Some("slipway_webhooks_total"),
    },
    CloudWatchMetric {
        name: JOBS_PLANNED,
        unit: Unit::Count,
        dimensions: &[TRIGGER],
        function: "spawner",
        prometheus: Some("slipway_jobs_planned_total"),
    },
    CloudWatchMetric {
        name: BUILDS_STARTED,
        unit: Unit::Count,
        dimensions: &[],
        function: "spawner",
        prometheus: Some("slipway_builds_started_total"),
    },
    CloudWatchMetric {
        name: BUILDS_START_FAILED,
        unit: Unit::Count,
        dimensions: &[],
        function: "spawner",
        prometheus: None,
    },
    CloudWatchMetric {
        name: QUEUE_WAIT,
        unit: Unit::Seconds,
        dimensions: &[],
        function: "spawner",
        prometheus: Some("slipway_build_queue_wait_seconds"),
    },
    CloudWatchMetric {
        name: BUILDS_FINISHED,
        unit: Unit::Count,
        dimensions: &[RESULT],
        function: "notifier",
        prometheus: Some("slipway_builds_finished_total"),
    },
    CloudWatchMetric {
        name: BUILD_DURATION,
        unit: Unit::Seconds,
        dimensions: &[RESULT],
        function: "notifier",
        prometheus: Some("slipway_build_duration_seconds"),
    },
    CloudWatchMetric {
        name: NOTIFICATIONS,
        unit: Unit::Count,
        dimensions: &[OUTCOME],
        function: "notifier",
        prometheus: Some("slipway_notifications_total"),
    },
];

/// The catalogue entry of `name`.
pub fn cloudwatch(name: &str) -> Option<&'static CloudWatchMetric> {
    CLOUDWATCH.iter().find(|m| m.name == name)
}

/// Every answer a webhook can get, as a label: the listener's statuses and error codes, and
/// `other` for anything else.
pub const ANSWERS: &[&str] = &[
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
    "other",
];

/// What a webhook was answered, as a label: the listener's `status` (`queued`, `duplicate`,
/// `filtered`, `ignored`, `pong`) or its error code (`signature_mismatch`, ...). Anything else
/// (never expected) is `other`, so a label never carries a value from a request.
pub fn webhook_answer(reply: &Reply) -> &'static str {
    let word = reply.code();
    ANSWERS
        .iter()
        .find(|k| **k == word)
        .copied()
        .unwrap_or("other")
}

/// Every trigger label.
pub const TRIGGERS: &[&str] = &["push", "schedule", "parent"];

/// A job's trigger as a label: `push`, `schedule`, `parent`.
pub fn trigger_label(t: &Trigger) -> &'static str {
    match t {
        Trigger::Push => "push",
        Trigger::Schedule { .. } => "schedule",
        Trigger::Parent { .. } => "parent",
    }
}

/// Every result label of a finished build.
pub const RESULTS: &[&str] = &["succeeded", "failed", "stopped"];

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

/// Where and when a metric line is written: the stack whose Lambda writes it and the time of
/// the observation (milliseconds since the epoch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scope<'a> {
    pub stack: &'a str,
    pub timestamp_ms: i64,
}

/// The listener's line: one webhook answered, by answer.
pub fn webhook(at: Scope<'_>, reply: &Reply) -> Line {
    line(at, &[(WEBHOOKS, 1.0)], &[(ANSWER, webhook_answer(reply))])
}

/// The spawner's line for a job it planned: the job (by trigger), the builds it started and
/// those that failed to start (CodeBuild refused or was unreachable after the retries), and,
/// when the job came off the queue, how long it waited there (`queue_wait_ms`: from SQS's
/// `SentTimestamp` to the spawner taking the message).
pub fn job_planned(
    at: Scope<'_>,
    trigger: &Trigger,
    builds: BuildStarts,
    queue_wait_ms: Option<i64>,
) -> Line {
    let mut values = vec![
        (JOBS_PLANNED, 1.0),
        (BUILDS_STARTED, builds.started as f64),
        (BUILDS_START_FAILED, builds.failed as f64),
    ];
    if let Some(wait_ms) = queue_wait_ms {
        // A clock a little behind SQS's would give a negative wait: it is none.
        values.push((QUEUE_WAIT, wait_ms.max(0) as f64 / 1000.0));
    }
    line(at, &values, &[(TRIGGER, trigger_label(trigger))])
}

/// How many of a job's builds started and how many failed to start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BuildStarts {
    pub started: usize,
    pub failed: usize,
}

/// Every outcome label of a notification.
pub const OUTCOMES: &[&str] = &["published", "failed"];

/// The notifier's line for the notification of one build event, from the report's `publish`:
/// `published`, or `failed` for an error; `None` when the event's state is not reported
/// (`not_published`), which is no notification.
pub fn notification(at: Scope<'_>, publish: &str) -> Option<Line> {
    let outcome = notification_outcome(publish)?;
    Some(line(at, &[(NOTIFICATIONS, 1.0)], &[(OUTCOME, outcome)]))
}

/// The outcome label of a notification from the report's `publish` (the notifier's and serve's
/// one rule): `published`, `failed` for an error, `None` for `not_published` (no notification).
pub fn notification_outcome(publish: &str) -> Option<&'static str> {
    match publish {
        "not_published" => None,
        "published" => Some("published"),
        _ => Some("failed"),
    }
}

/// The notifier's line for a build that finished, by result, with how long it ran when the
/// event says. `None` for a build still in progress: it has not finished.
pub fn build_finished(
    at: Scope<'_>,
    status: BuildStatus,
    duration: Option<Duration>,
) -> Option<Line> {
    if !status.is_final() {
        return None;
    }
    let mut values = vec![(BUILDS_FINISHED, 1.0)];
    if let Some(d) = duration {
        values.push((BUILD_DURATION, d.as_secs_f64()));
    }
    Some(line(at, &values, &[(RESULT, result_label(status))]))
}

/// One metric line: an EMF document, the JSON object alone (the Lambda writes it on a line of
/// its own). Written straight into one string: the listener writes one per request, and building
/// a `serde_json::Value` first cost 4.6 µs, 40 % of its HMAC; this costs 1.0 µs (docs/performance.md,
/// "Metric lines").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line(String);

impl Line {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The document parsed (for tests and checks).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.0).expect("a metric line is one JSON object")
    }
}

impl std::fmt::Display for Line {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// One EMF document: the values at the top level beside their dimensions' values, and under
/// `_aws` one metric directive per dimension set, each naming its metrics with their units.
///
/// Panics when a metric is not in [`CLOUDWATCH`] or a dimension it needs has no value: both are
/// mistakes in this module, which its tests show.
fn line(at: Scope<'_>, values: &[(&str, f64)], dims: &[(&str, &str)]) -> Line {
    use std::fmt::Write;
    let spec = |name: &str| -> &'static CloudWatchMetric {
        let spec = cloudwatch(name).unwrap_or_else(|| panic!("{name} is not in CLOUDWATCH"));
        for d in spec.dimensions {
            assert!(
                dims.iter().any(|(k, _)| k == d),
                "{name} needs a value for its dimension {d}"
            );
        }
        spec
    };
    let mut s = String::with_capacity(384);
    s.push('{');
    push_str(&mut s, STACK);
    s.push(':');
    push_str(&mut s, at.stack);
    for (k, v) in dims {
        s.push(',');
        push_str(&mut s, k);
        s.push(':');
        push_str(&mut s, v);
    }
    for (name, value) in values {
        s.push(',');
        push_str(&mut s, spec(name).name);
        // Debug keeps the decimal point (1.0, not 1): the value is a float either way.
        let _ = write!(s, ":{value:?}");
    }
    let _ = write!(
        s,
        r#","_aws":{{"Timestamp":{},"CloudWatchMetrics":["#,
        at.timestamp_ms
    );
    // One directive per dimension set, in the order the sets first appear.
    let mut first_directive = true;
    for (i, (name, _)) in values.iter().enumerate() {
        let set = spec(name).dimensions;
        if values[..i].iter().any(|(n, _)| spec(n).dimensions == set) {
            continue;
        }
        if !first_directive {
            s.push(',');
        }
        first_directive = false;
        let _ = write!(s, r#"{{"Namespace":"{NAMESPACE}","Dimensions":[["{STACK}""#);
        for d in set {
            s.push(',');
            push_str(&mut s, d);
        }
        s.push_str(r#"]],"Metrics":["#);
        let mut first_metric = true;
        for (n, _) in &values[i..] {
            let m = spec(n);
            if m.dimensions != set {
                continue;
            }
            if !first_metric {
                s.push(',');
            }
            first_metric = false;
            let _ = write!(s, r#"{{"Name":"{}","Unit":"{}"}}"#, m.name, m.unit.as_str());
        }
        s.push_str("]}");
    }
    s.push_str("]}}");
    Line(s)
}

/// `v` as a JSON string (quotes, backslashes and control characters escaped).
fn push_str(s: &mut String, v: &str) {
    use std::fmt::Write;
    s.push('"');
    for c in v.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(s, "\\u{:04x}", c as u32);
            }
            c => s.push(c),
        }
    }
    s.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::StatusCode;
    use serde_json::json;

    const AT: Scope<'static> = Scope {
        stack: "slipway-test",
        timestamp_ms: 1_700_000_000_000,
    };

    fn reply(body: Value) -> Reply {
        Reply {
            status: StatusCode::ACCEPTED,
            body,
        }
    }

    #[test]
    fn answers_are_the_listeners_words_and_nothing_from_the_request() {
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
    fn the_label_lists_hold_every_label_the_functions_give() {
        for t in [
            Trigger::Push,
            Trigger::Schedule { name: "n".into() },
            Trigger::Parent {
                image: "i".into(),
                build_id: "b".into(),
            },
        ] {
            assert!(TRIGGERS.contains(&trigger_label(&t)));
        }
        for s in [
            BuildStatus::Succeeded,
            BuildStatus::Failed,
            BuildStatus::Stopped,
        ] {
            assert!(RESULTS.contains(&result_label(s)));
        }
    }

    #[test]
    fn a_webhook_line_counts_one_answer_of_the_stack() {
        let l = webhook(
            AT,
            &reply(json!({"error": "signature_mismatch", "message": "no"})),
        )
        .json();
        assert_eq!(l["_aws"]["Timestamp"], 1_700_000_000_000i64);
        assert_eq!(
            l["_aws"]["CloudWatchMetrics"],
            json!([{
                "Namespace": "Slipway",
                "Dimensions": [["Stack", "Answer"]],
                "Metrics": [{"Name": "Webhooks", "Unit": "Count"}],
            }])
        );
        assert_eq!(l["Webhooks"], 1.0);
        assert_eq!(l["Answer"], "signature_mismatch");
        assert_eq!(l["Stack"], "slipway-test");
    }

    #[test]
    fn a_planned_job_gives_its_trigger_builds_and_wait_under_two_dimension_sets() {
        let two = BuildStarts {
            started: 2,
            failed: 1,
        };
        let l = job_planned(AT, &Trigger::Push, two, Some(2_500)).json();
        assert_eq!(
            l["_aws"]["CloudWatchMetrics"],
            json!([
                {
                    "Namespace": "Slipway",
                    "Dimensions": [["Stack", "Trigger"]],
                    "Metrics": [{"Name": "JobsPlanned", "Unit": "Count"}],
                },
                {
                    "Namespace": "Slipway",
                    "Dimensions": [["Stack"]],
                    "Metrics": [
                        {"Name": "BuildsStarted", "Unit": "Count"},
                        {"Name": "BuildsStartFailed", "Unit": "Count"},
                        {"Name": "QueueWait", "Unit": "Seconds"},
                    ],
                },
            ])
        );
        assert_eq!(
            (
                &l["JobsPlanned"],
                &l["BuildsStarted"],
                &l["BuildsStartFailed"],
                &l["QueueWait"]
            ),
            (&json!(1.0), &json!(2.0), &json!(1.0), &json!(2.5))
        );
        assert_eq!(l["Trigger"], "push");
        // A job that did not come off the queue has no wait; a clock behind SQS's waits 0 s.
        let direct = job_planned(
            AT,
            &Trigger::Schedule { name: "n".into() },
            BuildStarts::default(),
            None,
        )
        .json();
        assert!(direct.get("QueueWait").is_none());
        assert_eq!(direct["Trigger"], "schedule");
        let skew = job_planned(AT, &Trigger::Push, two, Some(-900)).json();
        assert_eq!(skew["QueueWait"], 0.0);
    }

    #[test]
    fn a_finished_build_counts_its_result_and_duration_and_a_running_one_nothing() {
        let l = build_finished(AT, BuildStatus::Failed, Some(Duration::from_secs(95)))
            .unwrap()
            .json();
        assert_eq!(
            l["_aws"]["CloudWatchMetrics"][0]["Metrics"],
            json!([
                {"Name": "BuildsFinished", "Unit": "Count"},
                {"Name": "BuildDuration", "Unit": "Seconds"},
            ])
        );
        assert_eq!(
            l["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["Stack", "Result"]])
        );
        assert_eq!(
            (&l["BuildDuration"], &l["Result"]),
            (&json!(95.0), &json!("failed"))
        );
        let unknown = build_finished(AT, BuildStatus::Stopped, None)
            .unwrap()
            .json();
        assert!(unknown.get("BuildDuration").is_none());
        assert_eq!(unknown["Result"], "stopped");
        assert_eq!(build_finished(AT, BuildStatus::InProgress, None), None);
    }

    #[test]
    fn a_notification_counts_published_or_failed_and_an_unreported_state_nothing() {
        let ok = notification(AT, "published").unwrap().json();
        assert_eq!(
            (&ok["Notifications"], &ok["Outcome"]),
            (&json!(1.0), &json!("published"))
        );
        assert_eq!(
            ok["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["Stack", "Outcome"]])
        );
        // The error's text is never a label.
        let err = notification(AT, "sns_failed: throttled <x>")
            .unwrap()
            .json();
        assert_eq!(err["Outcome"], "failed");
        assert_eq!(notification(AT, "not_published"), None);
    }

    #[test]
    fn a_stack_name_with_quotes_stays_a_string() {
        let at = Scope {
            stack: "a\"b\\c\n",
            timestamp_ms: AT.timestamp_ms,
        };
        let l = webhook(at, &reply(json!({"status": "queued"}))).json();
        assert_eq!(l["Stack"], "a\"b\\c\n");
    }

    #[test]
    fn every_catalogued_metric_has_a_distinct_name_and_its_twin_a_prometheus_name() {
        for (i, m) in CLOUDWATCH.iter().enumerate() {
            assert!(
                CLOUDWATCH[..i].iter().all(|o| o.name != m.name),
                "{}",
                m.name
            );
            if let Some(p) = m.prometheus {
                assert!(p.starts_with("slipway_"), "{p}");
            }
            assert!(!m.dimensions.contains(&STACK));
        }
    }
}
