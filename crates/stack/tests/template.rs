//! The template against the code and the issue: environment variables, the Lambdas' runtime,
//! the webhook route, the queues, the build project, secrets only referenced, and the lints.

use serde_json::Value;
use slipway_core::schedule::QueueMessage;
use slipway_stack::code::scan_function;
use slipway_stack::template::{Template, getatt, reference};
use slipway_stack::{FUNCTIONS, workspace_root};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

fn template() -> Template {
    Template::load(&workspace_root().join("cloudformation/slipway.yml"))
        .unwrap_or_else(|e| panic!("{e}"))
}

fn props<'a>(t: &'a Template, id: &str) -> &'a Value {
    &t.resource(id)["Properties"]
}

#[test]
fn every_variable_a_function_reads_is_set_on_it_and_no_other() {
    let root = workspace_root();
    let t = template();
    let mut problems = Vec::new();
    for f in FUNCTIONS {
        let scan = scan_function(&root, f.name).unwrap_or_else(|e| panic!("{e}"));
        let set: BTreeSet<String> = props(&t, f.logical_id)["Environment"]["Variables"]
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        for (var, site) in &scan.env_vars {
            if !set.contains(var) {
                problems.push(format!(
                    "{site}: {} reads {var}, which {} does not set",
                    f.binary(),
                    f.logical_id
                ));
            }
        }
        for var in set.iter().filter(|v| !scan.env_vars.contains_key(*v)) {
            problems.push(format!(
                "{} sets {var}, which nothing in {:?} reads",
                f.logical_id, scan.files
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_scanner_finds_exactly_the_variables_each_function_declares() {
    // Each function also lists its variables in `ENV_VARS`; the scan of its sources must agree,
    // so a variable read in a way the scanner cannot see would show here.
    let declared: [(&str, &[&str]); 4] = [
        ("listener", slipway_listener::ENV_VARS),
        ("spawner", slipway_spawner::ENV_VARS),
        ("notifier", slipway_notifier::ENV_VARS),
        ("tasks", slipway_tasks::ENV_VARS),
    ];
    for (name, vars) in declared {
        let scan = scan_function(&workspace_root(), name).unwrap_or_else(|e| panic!("{e}"));
        let seen: BTreeSet<&str> = scan.env_vars.keys().map(String::as_str).collect();
        let declared: BTreeSet<&str> = vars.iter().copied().collect();
        assert_eq!(seen, declared, "{name}");
    }
}

#[test]
fn the_lambdas_run_the_cargo_lambda_zips_on_arm64_with_their_own_log_groups() {
    let root = workspace_root();
    let t = template();
    let functions: Vec<_> = t.resources_of_type("AWS::Lambda::Function").collect();
    assert_eq!(
        functions.len(),
        FUNCTIONS.len(),
        "one Lambda per function crate"
    );
    for f in FUNCTIONS {
        let p = props(&t, f.logical_id);
        assert_eq!(p["Runtime"], "provided.al2023", "{}", f.logical_id);
        assert_eq!(p["Architectures"], serde_json::json!(["arm64"]));
        assert_eq!(p["Handler"], "bootstrap");
        assert_eq!(p["MemorySize"], 128);
        // The zip `make build` writes, relative to the template (aws cloudformation package).
        assert_eq!(
            p["Code"],
            format!("../target/lambda/{}/bootstrap.zip", f.binary()),
            "{}",
            f.logical_id
        );
        let manifest = std::fs::read_to_string(f.crate_dir(&root).join("Cargo.toml")).unwrap();
        assert!(
            manifest.contains(&format!("name = \"{}\"", f.binary())),
            "crates/{}/Cargo.toml must build the binary {}",
            f.name,
            f.binary()
        );
        let group =
            reference(&p["LoggingConfig"]["LogGroup"]).expect("LoggingConfig.LogGroup: !Ref");
        let g = props(&t, group);
        assert_eq!(t.resource(group)["Type"], "AWS::Logs::LogGroup");
        assert_eq!(
            g["RetentionInDays"],
            serde_json::json!({"Ref": "LogRetentionDays"})
        );
    }
}

#[test]
fn the_webhook_route_is_throttled_and_logged() {
    let t = template();
    let (_, route) = t
        .resources_of_type("AWS::ApiGatewayV2::Route")
        .next()
        .expect("a route");
    assert_eq!(route["Properties"]["RouteKey"], "POST /hooks/github");
    let api = props(&t, "HttpApi");
    assert_eq!(api["ProtocolType"], "HTTP");
    let stage = props(&t, "ApiStage");
    assert!(stage["DefaultRouteSettings"]["ThrottlingRateLimit"].is_object());
    assert!(stage["DefaultRouteSettings"]["ThrottlingBurstLimit"].is_object());
    let (log_group, _) =
        getatt(&stage["AccessLogSettings"]["DestinationArn"]).expect("access logs");
    assert!(props(&t, log_group)["RetentionInDays"].is_object());
    let integration = props(&t, "ListenerIntegration");
    assert_eq!(integration["PayloadFormatVersion"], "2.0");
    assert_eq!(
        getatt(&integration["IntegrationUri"]),
        Some(("ListenerFunction", "Arn"))
    );
    let url = t.json["Outputs"]["WebhookUrl"]["Value"].to_string();
    assert!(url.contains("/hooks/github"), "{url}");
}

#[test]
fn jobs_go_through_a_fifo_queue_with_a_fifo_dead_letter_queue_and_an_alarm() {
    let t = template();
    let q = props(&t, "JobsQueue");
    assert_eq!(q["FifoQueue"], true);
    assert_eq!(q["QueueName"]["Fn::Sub"], "${AWS::StackName}-jobs.fifo");
    let (dlq, _) = getatt(&q["RedrivePolicy"]["deadLetterTargetArn"]).expect("a DLQ");
    assert_eq!(props(&t, dlq)["FifoQueue"], true);
    let alarmed = t.resources_of_type("AWS::CloudWatch::Alarm").any(|(_, a)| {
        a["Properties"]["Dimensions"][0]["Value"]
            == serde_json::json!({"Fn::GetAtt": [dlq, "QueueName"]})
    });
    assert!(alarmed, "no alarm on {dlq}");
    // Lambda's SQS event source wants the visibility timeout at six times the function's.
    let timeout = props(&t, "SpawnerFunction")["Timeout"].as_u64().unwrap();
    assert!(q["VisibilityTimeout"].as_u64().unwrap() >= 6 * timeout);
    let (_, mapping) = t
        .resources_of_type("AWS::Lambda::EventSourceMapping")
        .next()
        .expect("the spawner's event source");
    assert_eq!(
        mapping["Properties"]["FunctionResponseTypes"],
        serde_json::json!(["ReportBatchItemFailures"])
    );
}

#[test]
fn builds_run_privileged_with_a_local_layer_cache_on_the_chosen_architecture() {
    let t = template();
    let p = props(&t, "BuildProject");
    assert_eq!(p["Environment"]["PrivilegedMode"], true);
    assert_eq!(
        p["Environment"]["ComputeType"],
        serde_json::json!({"Ref": "BuildComputeType"})
    );
    assert!(
        p["Cache"]["Modes"]
            .as_array()
            .unwrap()
            .contains(&"LOCAL_DOCKER_LAYER_CACHE".into())
    );
    let group = reference(&p["LogsConfig"]["CloudWatchLogs"]["GroupName"]).unwrap();
    assert!(props(&t, group)["RetentionInDays"].is_object());
    let arch = &t.json["Parameters"]["BuildArchitecture"]["AllowedValues"];
    assert_eq!(arch, &serde_json::json!(["arm64", "x86_64"]));
}

#[test]
fn secrets_are_only_referenced_by_name() {
    let t = template();
    assert_eq!(
        t.resources_of_type("AWS::SSM::Parameter").count(),
        0,
        "the user creates secrets beforehand; the stack must not hold their values"
    );
    for (name, p) in t.json["Parameters"].as_object().unwrap() {
        let lower = name.to_lowercase();
        if lower.contains("secret") || lower.contains("token") || lower.contains("password") {
            assert!(
                name.ends_with("Parameter") || name.ends_with("Prefix") || name.ends_with("Path"),
                "{name}: a secret parameter must be the name of an SSM parameter"
            );
            assert!(
                p["Default"].as_str().is_none_or(|d| d.starts_with('/')),
                "{name}"
            );
        }
    }
}

#[test]
fn schedule_inputs_are_messages_the_functions_accept() {
    let t = template();
    let cleanup = &props(&t, "CleanupRule")["Targets"][0];
    assert_eq!(getatt(&cleanup["Arn"]), Some(("TasksFunction", "Arn")));
    let input: Value = serde_json::from_str(cleanup["Input"].as_str().unwrap()).unwrap();
    assert_eq!(input["task"], "cleanup");
    let calls = &props(&t, "CallsRule")["Targets"][0];
    let input: Value = serde_json::from_str(calls["Input"].as_str().unwrap()).unwrap();
    assert_eq!(input["task"], "calls");
    // The scheduled rebuild is a ScheduledRebuild message on the FIFO jobs queue.
    let rebuild = &props(&t, "RebuildRule")["Targets"][0];
    assert_eq!(getatt(&rebuild["Arn"]), Some(("JobsQueue", "Arn")));
    assert!(rebuild["SqsParameters"]["MessageGroupId"].is_object());
    let text = rebuild["Input"]["Fn::Sub"]
        .as_str()
        .unwrap()
        .replace("${AWS::StackName}", "slipway")
        .replace("${RebuildRepository}", "acme/images");
    match slipway_core::schedule::parse_queue_message(&text) {
        Ok(QueueMessage::ScheduledRebuild(msg)) => {
            assert_eq!(msg.repository, "acme/images");
            assert_eq!(msg.clone_url, "https://github.com/acme/images.git");
        }
        other => panic!("the spawner would not take {text} as a scheduled rebuild: {other:?}"),
    }
    // The default cleanup schedule is an expression slipway (and EventBridge) accepts.
    let cron = t.json["Parameters"]["CleanupSchedule"]["Default"]
        .as_str()
        .unwrap();
    slipway_core::schedule::ScheduleExpr::parse(cron).unwrap_or_else(|e| panic!("{cron}: {e}"));
}

fn tool(name: &str) -> PathBuf {
    // .ci/install's venv (SLIPWAY_VENV, exported by .ci/paths), else the PATH.
    if let Some(venv) = std::env::var_os("SLIPWAY_VENV") {
        let tool = PathBuf::from(venv).join("bin").join(name);
        if tool.exists() {
            return tool;
        }
    }
    let found = std::env::var_os("PATH")
        .map(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join(name))
                .find(|p| p.exists())
        })
        .unwrap_or_default();
    found.unwrap_or_else(|| panic!("{name} is not installed: run .ci/install"))
}

#[test]
fn cfn_lint_finds_no_error_or_warning() {
    let out = Command::new(tool("cfn-lint"))
        .arg("cloudformation/slipway.yml")
        .current_dir(workspace_root())
        .output()
        .expect("cfn-lint runs");
    assert!(
        out.status.success(),
        "cfn-lint:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn checkov_fails_no_check_that_the_template_does_not_skip_with_a_reason() {
    let out = Command::new(tool("checkov"))
        .args([
            "-f",
            "cloudformation/slipway.yml",
            "--compact",
            "--skip-download",
        ])
        .args(["-o", "json"])
        .current_dir(workspace_root())
        .output()
        .expect("checkov runs");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "checkov printed no JSON ({e}):\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let summary = &report["summary"];
    assert_eq!(
        summary["failed"], 0,
        "checkov: {}",
        report["results"]["failed_checks"]
    );
    assert!(summary["passed"].as_u64().unwrap() > 50, "{summary}");
    for skipped in report["results"]["skipped_checks"].as_array().unwrap() {
        let why = skipped["check_result"]["suppress_comment"]
            .as_str()
            .unwrap_or("");
        assert!(why.len() > 20, "a skip without a reason: {skipped}");
    }
}
