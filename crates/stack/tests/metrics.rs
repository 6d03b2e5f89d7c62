//! The template's dashboard and alarms against `slipway_core::metrics`, the catalogue of what the
//! Lambdas write: every `Slipway` metric the template names is one the code emits, with exactly
//! its dimensions and label values the code gives, and every metric the code emits is on the
//! dashboard.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use slipway_core::metrics::{
    ANSWER, ANSWERS, CLOUDWATCH, NAMESPACE, OUTCOME, OUTCOMES, RESULT, RESULTS, STACK, TRIGGER,
    TRIGGERS, cloudwatch,
};
use slipway_stack::template::{Template, reference, sub_text};
use slipway_stack::workspace_root;

/// What the stack's name becomes in the dashboard body, for the test.
const STACK_NAME: &str = "STACK";

fn template() -> Template {
    Template::load(&workspace_root().join("cloudformation/slipway.yml"))
        .unwrap_or_else(|e| panic!("{e}"))
}

/// One use of a metric: where, its name, and its dimensions (name → value).
struct Use {
    site: String,
    name: String,
    dimensions: BTreeMap<String, String>,
}

/// The problems of one use against the catalogue (empty: none).
fn problems(u: &Use) -> Vec<String> {
    let Some(m) = cloudwatch(&u.name) else {
        return vec![format!(
            "{}: {} is not a metric the Lambdas write (slipway_core::metrics::CLOUDWATCH)",
            u.site, u.name
        )];
    };
    let mut p = Vec::new();
    let want: BTreeSet<&str> = m.dimension_set().into_iter().collect();
    let have: BTreeSet<&str> = u.dimensions.keys().map(String::as_str).collect();
    if want != have {
        p.push(format!(
            "{}: {} has the dimensions {have:?}; the Lambda writes {want:?}",
            u.site, u.name
        ));
    }
    for (k, v) in &u.dimensions {
        let allowed: &[&str] = match k.as_str() {
            STACK => &[STACK_NAME],
            ANSWER => ANSWERS,
            TRIGGER => TRIGGERS,
            RESULT => RESULTS,
            OUTCOME => OUTCOMES,
            _ => &[],
        };
        if !allowed.contains(&v.as_str()) {
            p.push(format!(
                "{}: {} {k}={v} is a value the Lambda never writes ({allowed:?})",
                u.site, u.name
            ));
        }
    }
    p
}

/// The `Slipway` metrics of the alarms.
fn alarm_uses(t: &Template) -> Vec<Use> {
    t.resources_of_type("AWS::CloudWatch::Alarm")
        .filter(|(_, a)| a["Properties"]["Namespace"] == NAMESPACE)
        .map(|(id, a)| {
            let p = &a["Properties"];
            let dimensions = p["Dimensions"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|d| {
                    let value = match &d["Value"] {
                        Value::String(s) => s.clone(),
                        v if reference(v) == Some("AWS::StackName") => STACK_NAME.to_string(),
                        v => panic!("{id}: dimension value {v} is neither a word nor the stack"),
                    };
                    (d["Name"].as_str().unwrap_or_default().to_string(), value)
                })
                .collect();
            Use {
                site: id.clone(),
                name: p["MetricName"].as_str().unwrap_or_default().to_string(),
                dimensions,
            }
        })
        .collect()
}

/// The dashboard's body, `${AWS::StackName}` as [`STACK_NAME`] and every other substitution as
/// `SUB`, parsed.
fn dashboard_body(t: &Template) -> Value {
    let body = &t.resource("Dashboard")["Properties"]["DashboardBody"];
    let text = sub_text(body).expect("DashboardBody is a !Sub string");
    let text = text.replace("${AWS::StackName}", STACK_NAME);
    let text = regex::Regex::new(r"\$\{[^}]*\}")
        .unwrap()
        .replace_all(&text, "SUB");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("the dashboard body is not JSON: {e}"))
}

/// The `Slipway` metrics of the dashboard's widgets: `[namespace, name, key, value, ...,
/// {options}?]`.
fn dashboard_uses(t: &Template) -> Vec<Use> {
    let body = dashboard_body(t);
    let mut uses = Vec::new();
    for (w, widget) in body["widgets"]
        .as_array()
        .expect("widgets")
        .iter()
        .enumerate()
    {
        let title = widget["properties"]["title"].as_str().unwrap_or_default();
        for entry in widget["properties"]["metrics"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let parts: Vec<&str> = entry
                .as_array()
                .expect("a metric entry is an array")
                .iter()
                .filter_map(Value::as_str)
                .collect();
            assert!(
                parts.len() >= 2 && parts.len().is_multiple_of(2) && parts[0] != ".",
                "widget {w} ({title}): write metric entries in full: {entry}"
            );
            if parts[0] != NAMESPACE {
                continue;
            }
            uses.push(Use {
                site: format!("Dashboard widget {w} ({title})"),
                name: parts[1].to_string(),
                dimensions: parts[2..]
                    .chunks(2)
                    .map(|kv| (kv[0].to_string(), kv[1].to_string()))
                    .collect(),
            });
        }
    }
    uses
}

#[test]
fn the_template_names_only_metrics_the_lambdas_write_with_their_dimensions() {
    let t = template();
    let uses: Vec<Use> = alarm_uses(&t)
        .into_iter()
        .chain(dashboard_uses(&t))
        .collect();
    let all: Vec<String> = uses.iter().flat_map(problems).collect();
    assert!(all.is_empty(), "{}", all.join("\n"));
}

#[test]
fn every_metric_the_lambdas_write_is_on_the_dashboard() {
    let t = template();
    let shown: BTreeSet<String> = dashboard_uses(&t).into_iter().map(|u| u.name).collect();
    let missing: Vec<&str> = CLOUDWATCH
        .iter()
        .map(|m| m.name)
        .filter(|n| !shown.contains(*n))
        .collect();
    assert!(missing.is_empty(), "not on the dashboard: {missing:?}");
}

#[test]
fn the_alarms_watch_start_failures_forged_webhooks_and_the_queues() {
    let t = template();
    let alarmed: BTreeSet<(String, Option<String>)> = alarm_uses(&t)
        .into_iter()
        .map(|u| (u.name, u.dimensions.get(ANSWER).cloned()))
        .collect();
    for want in [
        ("BuildsStartFailed".to_string(), None),
        (
            "Webhooks".to_string(),
            Some("signature_mismatch".to_string()),
        ),
    ] {
        assert!(alarmed.contains(&want), "no alarm on {want:?}: {alarmed:?}");
    }
    let queue_age = t.resources_of_type("AWS::CloudWatch::Alarm").any(|(_, a)| {
        a["Properties"]["MetricName"] == "ApproximateAgeOfOldestMessage"
            && a["Properties"]["Dimensions"][0]["Value"]["Fn::GetAtt"][0] == "JobsQueue"
    });
    assert!(queue_age, "no alarm on the jobs queue's age");
}

#[test]
fn the_checks_catch_a_metric_the_code_does_not_write_and_a_wrong_dimension() {
    // The checks themselves, on uses the template must never hold.
    let dims = |kv: &[(&str, &str)]| {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let unknown = Use {
        site: "t".into(),
        name: "BuildsReused".into(),
        dimensions: dims(&[(STACK, STACK_NAME)]),
    };
    assert_eq!(problems(&unknown).len(), 1);
    let no_stack = Use {
        site: "t".into(),
        name: "Webhooks".into(),
        dimensions: dims(&[(ANSWER, "queued")]),
    };
    assert_eq!(problems(&no_stack).len(), 1, "{:?}", problems(&no_stack));
    let bad_label = Use {
        site: "t".into(),
        name: "BuildsFinished".into(),
        dimensions: dims(&[(STACK, STACK_NAME), (RESULT, "success")]),
    };
    assert_eq!(problems(&bad_label).len(), 1, "{:?}", problems(&bad_label));
}
