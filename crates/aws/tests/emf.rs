//! The Lambdas' logger with metric lines: a metric line is the EMF object alone on its line
//! (CloudWatch reads nothing wrapped), log lines stay JSON objects, and `RUST_LOG` silences logs
//! but not metrics. And the EMF checker the Lambdas' tests use, held to the specification's own
//! example and to documents that break its rules.

use serde_json::{Value, json};
use slipway_core::listener::Reply;
use slipway_testkit::logs::{LogCapture, emf_problems};

fn reply(body: Value) -> Reply {
    Reply {
        status: http::StatusCode::ACCEPTED,
        body,
    }
}

#[test]
fn a_metric_line_is_the_emf_object_alone_between_json_log_lines() {
    let (logs, _guard) = LogCapture::start(|w| slipway_aws::logging::subscriber(w, "info"));
    tracing::info!(job_id = "push-1", "planned");
    let before = slipway_aws::metrics::now_ms();
    slipway_aws::metrics::emit(|at| {
        slipway_core::metrics::webhook(at, &reply(json!({"status": "queued"})))
    });
    tracing::warn!("after");

    let text = logs.text();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    // The metric line starts with the object itself: no timestamp, level or wrapper.
    let metric: Value = serde_json::from_str(lines[1]).unwrap();
    assert!(
        emf_problems(&metric).is_empty(),
        "{:?}",
        emf_problems(&metric)
    );
    assert_eq!(metric["Webhooks"], 1.0);
    assert_eq!(metric["Answer"], "queued");
    assert_eq!(metric["Stack"], slipway_aws::metrics::DEFAULT_STACK_NAME);
    let ts = metric["_aws"]["Timestamp"].as_i64().unwrap();
    assert!(
        (before..=slipway_aws::metrics::now_ms()).contains(&ts),
        "{ts}"
    );
    assert!(metric.get("level").is_none() && metric.get("fields").is_none());
    // The log lines around it are the usual structured ones.
    let first: Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(
        (&first["level"], &first["message"], &first["job_id"]),
        (&json!("INFO"), &json!("planned"), &json!("push-1"))
    );
    assert!(first.get("_aws").is_none());
    assert_eq!(logs.metric_lines().len(), 1);
}

#[test]
fn rust_log_silences_logs_but_not_metrics() {
    let (logs, _guard) = LogCapture::start(|w| slipway_aws::logging::subscriber(w, "warn"));
    tracing::info!("not kept");
    slipway_aws::metrics::emit(|at| {
        slipway_core::metrics::build_finished(
            at,
            slipway_core::notify::BuildStatus::Succeeded,
            None,
        )
    });
    tracing::warn!("kept");
    let lines = logs.lines();
    assert_eq!(lines.len(), 2, "{}", logs.text());
    assert_eq!(lines[0]["BuildsFinished"], 1.0);
    assert_eq!(lines[1]["message"], "kept");
}

#[test]
fn a_line_that_makes_none_writes_nothing() {
    let (logs, _guard) = LogCapture::start(|w| slipway_aws::logging::subscriber(w, "info"));
    slipway_aws::metrics::emit(|at| {
        slipway_core::metrics::build_finished(
            at,
            slipway_core::notify::BuildStatus::InProgress,
            None,
        )
    });
    assert_eq!(logs.text(), "");
}

/// The example of CloudWatch's "Specification: Embedded metric format".
fn spec_example() -> Value {
    json!({
        "_aws": {
            "Timestamp": 1574109732004u64,
            "CloudWatchMetrics": [{
                "Namespace": "lambda-function-metrics",
                "Dimensions": [["functionVersion"]],
                "Metrics": [{"Name": "time", "Unit": "Milliseconds", "StorageResolution": 60}]
            }]
        },
        "functionVersion": "$LATEST",
        "time": 100,
        "requestId": "989ffbf8-9ace-4817-a57c-e4dd734019ee"
    })
}

/// A change that breaks one rule of the specification, by name.
type Breakage = (&'static str, fn(&mut Value));

#[test]
fn the_checker_accepts_the_specifications_example_and_refuses_what_it_forbids() {
    assert_eq!(emf_problems(&spec_example()), Vec::<String>::new());
    let broken: [Breakage; 9] = [
        ("timestamp in seconds", |d| {
            d["_aws"]["Timestamp"] = json!(1574109732)
        }),
        ("no directive", |d| {
            d["_aws"]["CloudWatchMetrics"] = json!([])
        }),
        ("no namespace", |d| {
            d["_aws"]["CloudWatchMetrics"][0]
                .as_object_mut()
                .unwrap()
                .remove("Namespace");
        }),
        ("dimension without target", |d| {
            d.as_object_mut().unwrap().remove("functionVersion");
        }),
        ("dimension target not a string", |d| {
            d["functionVersion"] = json!(3)
        }),
        ("metric target missing", |d| {
            d.as_object_mut().unwrap().remove("time");
        }),
        ("metric target a string", |d| d["time"] = json!("100")),
        ("unknown unit", |d| {
            d["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Unit"] = json!("Minutes")
        }),
        ("nested target", |d| {
            d["_aws"]["CloudWatchMetrics"][0]["Dimensions"] = json!([["meta.version"]]);
            d["meta"] = json!({"version": "1"});
        }),
    ];
    for (what, breaks) in broken {
        let mut d = spec_example();
        breaks(&mut d);
        assert!(!emf_problems(&d).is_empty(), "{what} passed: {d}");
    }
}
