//! The template's IAM against the code: no wildcard action, each function's role grants exactly
//! the actions listed beside its code (`crates/<function>/iam-actions.txt`), every SDK call in
//! the code is listed, and every parameter, queue, topic and project a function is handed is
//! granted to its role — and only that.

use serde_json::Value;
use slipway_stack::code::scan_function;
use slipway_stack::template::{self, Template, actions, mentions, reference, resources};
use slipway_stack::{
    FUNCTIONS, read_action_list, uncalled_actions, unlisted_calls, workspace_root,
};
use std::collections::BTreeSet;
use std::path::Path;

/// Actions whose API has no resource-level permissions, so `Resource: "*"` is the only choice.
const WITHOUT_RESOURCE_LEVEL: &[&str] = &["ecr:GetAuthorizationToken"];

fn template() -> Template {
    Template::load(&workspace_root().join("cloudformation/slipway.yml"))
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Every policy statement in the template (role policies, queue policies, trust policies).
fn all_statements(v: &Value, out: &mut Vec<Value>) {
    match v {
        Value::Object(m) => {
            if m.contains_key("Effect") && (m.contains_key("Action") || m.contains_key("NotAction"))
            {
                out.push(v.clone());
            }
            m.values().for_each(|x| all_statements(x, out));
        }
        Value::Array(a) => a.iter().for_each(|x| all_statements(x, out)),
        _ => {}
    }
}

#[test]
fn no_statement_grants_a_wildcard_action_or_uses_not_action() {
    let t = template();
    let mut statements = Vec::new();
    all_statements(&t.json, &mut statements);
    assert!(
        statements.len() > 10,
        "the template's policies were not found"
    );
    for s in &statements {
        assert!(
            s.get("NotAction").is_none(),
            "NotAction grants everything else: {s}"
        );
        for a in actions(s) {
            assert!(!a.contains('*'), "wildcard action {a} in {s}");
        }
    }
}

#[test]
fn a_star_resource_is_only_for_actions_without_resource_permissions_and_is_commented() {
    let t = template();
    let mut statements = Vec::new();
    all_statements(&t.json, &mut statements);
    let mut stars = 0;
    for s in &statements {
        if resources(s).iter().any(|r| r == "*") {
            stars += 1;
            for a in actions(s) {
                assert!(
                    WITHOUT_RESOURCE_LEVEL.contains(&a.as_str()),
                    "{a} is granted on every resource, but its API has resource-level permissions: {s}"
                );
            }
        }
    }
    // In the file: the statement holding `Resource: "*"` starts right below a comment.
    let lines: Vec<&str> = t.text.lines().collect();
    let mut commented = 0;
    for (i, line) in lines.iter().enumerate() {
        let l = line.trim();
        if l == r#"Resource: "*""# || l == "Resource: '*'" || l == r#"- "*""# || l == "- '*'" {
            let start = (0..i)
                .rev()
                .find(|&j| lines[j].trim_start().starts_with("- Effect:"))
                .unwrap_or_else(|| panic!("line {}: a `*` resource outside a statement", i + 1));
            assert!(
                start > 0 && lines[start - 1].trim_start().starts_with('#'),
                "line {}: a `*` resource whose statement (line {}) has no comment saying why",
                i + 1,
                start + 1
            );
            commented += 1;
        }
    }
    assert_eq!(
        stars, commented,
        "a `*` resource written in a form this test cannot see"
    );
}

#[test]
fn each_function_role_grants_exactly_the_actions_listed_beside_its_code() {
    let root = workspace_root();
    let t = template();
    for f in FUNCTIONS {
        let list = read_action_list(&f.list_path(&root)).unwrap_or_else(|e| panic!("{e}"));
        let listed: BTreeSet<String> = list.iter().map(|l| l.action.clone()).collect();
        let role = t.role_of(f.logical_id);
        let granted: BTreeSet<String> = t
            .role_statements(&role)
            .iter()
            .filter(|s| s["Effect"] == "Allow")
            .flat_map(actions)
            .collect();
        let missing: Vec<_> = listed.difference(&granted).collect();
        let extra: Vec<_> = granted.difference(&listed).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "{} ({role}): listed in {} but not granted: {missing:?}; granted but not listed: {extra:?}",
            f.logical_id,
            f.list_path(Path::new("")).display()
        );
    }
}

#[test]
fn every_sdk_call_in_a_functions_code_has_its_action_listed() {
    let root = workspace_root();
    let mut problems = Vec::new();
    for f in FUNCTIONS {
        let scan = scan_function(&root, f.name).unwrap_or_else(|e| panic!("{e}"));
        let list = read_action_list(&f.list_path(&root)).unwrap_or_else(|e| panic!("{e}"));
        problems.extend(unlisted_calls(&scan, &list, &f.list_path(Path::new(""))));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_listed_action_is_called_by_the_code_or_says_why_the_platform_needs_it() {
    let root = workspace_root();
    let mut problems = Vec::new();
    for f in FUNCTIONS {
        let scan = scan_function(&root, f.name).unwrap_or_else(|e| panic!("{e}"));
        let list = read_action_list(&f.list_path(&root)).unwrap_or_else(|e| panic!("{e}"));
        problems.extend(uncalled_actions(&scan, &list, &f.list_path(Path::new(""))));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_scanner_sees_the_listeners_calls_through_the_aws_crate() {
    let scan = scan_function(&workspace_root(), "listener").unwrap_or_else(|e| panic!("{e}"));
    let by_action = |a: &str| {
        scan.calls
            .iter()
            .find(|c| c.actions == [a])
            .unwrap_or_else(|| panic!("no call needing {a} found in {:?}", scan.files))
            .site
            .file
            .clone()
    };
    assert_eq!(
        by_action("sqs:SendMessage"),
        Path::new("crates/aws/src/sqs.rs")
    );
    assert_eq!(
        by_action("ssm:GetParameter"),
        Path::new("crates/aws/src/ssm.rs")
    );
    // Modules the listener does not use are not read: their calls are not its calls.
    assert!(
        !scan.files.iter().any(|f| f.ends_with("cleanup.rs")),
        "{:?}",
        scan.files
    );
}

/// A small workspace with a function whose code publishes to SNS through an aws module.
fn fake_workspace(list: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let w = |p: &str, text: &str| {
        let path = dir.path().join(p);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    w("crates/aws/src/lib.rs", "pub mod notify;\npub mod sqs;\n");
    w(
        "crates/aws/src/notify.rs",
        "use aws_sdk_sns::Client;\n\npub async fn tell(c: &Client) {\n    // .start_build() in a comment is no call\n    c\n        .publish()\n        .send()\n        .await;\n    crate::sqs::noop();\n}\n",
    );
    w(
        "crates/aws/src/sqs.rs",
        "pub fn noop() {}\n\n#[cfg(test)]\nmod tests {\n    fn t(c: aws_sdk_sqs::Client) { c.purge_queue(); }\n}\n",
    );
    w(
        "crates/fake/src/main.rs",
        "use slipway_aws::{notify, sqs as _};\nfn main() { let _ = std::env::var(\"SLIPWAY_TOPIC_ARN\"); }\n",
    );
    w("crates/fake/iam-actions.txt", list);
    dir
}

#[test]
fn adding_an_sdk_call_without_its_action_fails_the_check() {
    let ws = fake_workspace("logs:PutLogEvents platform: Lambda logs\n");
    let scan = scan_function(ws.path(), "fake").unwrap();
    let list = read_action_list(&ws.path().join("crates/fake/iam-actions.txt")).unwrap();
    let problems = unlisted_calls(&scan, &list, Path::new("crates/fake/iam-actions.txt"));
    assert_eq!(
        problems,
        [
            "crates/aws/src/notify.rs:6 calls .publish() which needs sns:Publish, not listed in crates/fake/iam-actions.txt"
        ]
    );
    // Test code and comments are not calls; the env var is seen.
    assert_eq!(scan.actions(), BTreeSet::from(["sns:Publish".to_string()]));
    assert!(scan.env_vars.contains_key("SLIPWAY_TOPIC_ARN"));

    let ws = fake_workspace("sns:Publish\n");
    let scan = scan_function(ws.path(), "fake").unwrap();
    let list = read_action_list(&ws.path().join("crates/fake/iam-actions.txt")).unwrap();
    assert!(unlisted_calls(&scan, &list, Path::new("x")).is_empty());
    assert!(uncalled_actions(&scan, &list, Path::new("x")).is_empty());
}

#[test]
fn a_listed_action_nothing_calls_is_reported_unless_the_platform_needs_it() {
    let ws =
        fake_workspace("sns:Publish\nsqs:SendMessage\nlogs:PutLogEvents platform: Lambda logs\n");
    let scan = scan_function(ws.path(), "fake").unwrap();
    let list = read_action_list(&ws.path().join("crates/fake/iam-actions.txt")).unwrap();
    let problems = uncalled_actions(&scan, &list, Path::new("crates/fake/iam-actions.txt"));
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].starts_with("crates/fake/iam-actions.txt:2 lists sqs:SendMessage"));
}

#[test]
fn a_list_with_a_wildcard_or_an_unexplained_extra_is_refused() {
    assert!(slipway_stack::parse_action_list("sqs:*\n").is_err());
    assert!(slipway_stack::parse_action_list("sqs:SendMessage because\n").is_err());
    assert!(slipway_stack::parse_action_list("sqs:SendMessage platform:\n").is_err());
    assert!(slipway_stack::parse_action_list("sqs:SendMessage\nsqs:SendMessage\n").is_err());
}

const SSM_ARN_PREFIX: &str = "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter";

/// A grant on an SSM path the user configures as a template parameter (`...parameter${XPath}/*`):
/// the code reads parameter names from configuration under it.
fn ssm_path_grant(t: &Template, r: &Value) -> bool {
    template::sub_text(r)
        .and_then(|s| s.strip_prefix(&format!("{SSM_ARN_PREFIX}${{")))
        .and_then(|s| s.strip_suffix("}/*"))
        .is_some_and(|p| p.ends_with("Path") && t.is_parameter(p))
}

/// The IAM service prefix that acts on a resource type.
fn service_of(resource_type: &str) -> Option<&'static str> {
    match resource_type {
        "AWS::SQS::Queue" => Some("sqs"),
        "AWS::SNS::Topic" => Some("sns"),
        "AWS::CodeBuild::Project" => Some("codebuild"),
        "AWS::DynamoDB::Table" => Some("dynamodb"),
        _ => None,
    }
}

#[test]
fn every_parameter_queue_topic_and_project_a_function_is_handed_is_granted_to_its_role() {
    let t = template();
    let mut checked = 0;
    for f in FUNCTIONS {
        let function = t.resource(f.logical_id);
        let statements = t.role_statements(&t.role_of(f.logical_id));
        let vars = function["Properties"]["Environment"]["Variables"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        for (name, value) in &vars {
            let Some(target) = reference(value) else {
                continue;
            };
            if name.ends_with("_PARAM") {
                assert!(
                    t.is_parameter(target),
                    "{name} must name a template parameter"
                );
                let arn = format!("{SSM_ARN_PREFIX}${{{target}}}");
                let granted = statements.iter().any(|s| {
                    actions(s).iter().any(|a| a.starts_with("ssm:GetParameter"))
                        && resources(s)
                            .iter()
                            .any(|r| template::sub_text(r) == Some(&arn))
                });
                assert!(
                    granted,
                    "{}: {name} names SSM parameter ${{{target}}}, which its role may not read ({arn})",
                    f.logical_id
                );
                checked += 1;
            } else if let Some(service) = t.json["Resources"]
                .get(target)
                .and_then(|r| r["Type"].as_str())
                .and_then(service_of)
            {
                let granted = statements.iter().any(|s| {
                    actions(s)
                        .iter()
                        .any(|a| a.starts_with(&format!("{service}:")))
                        && resources(s).iter().any(|r| mentions(r, target))
                });
                assert!(
                    granted,
                    "{}: {name} hands it {target}, but its role has no {service} grant on it",
                    f.logical_id
                );
                checked += 1;
            }
        }
        // Least privilege the other way: every granted resource is one the function is handed
        // (its log group, its event source, its dead-letter queue count as handed).
        for s in &statements {
            for r in resources(s) {
                if r == "*" {
                    continue;
                }
                let handed = vars.values().any(|v| {
                    reference(v).is_some_and(|id| mentions(&r, id))
                        || (reference(v).is_some_and(|p| {
                            t.is_parameter(p)
                                && template::sub_text(&r)
                                    == Some(&format!("{SSM_ARN_PREFIX}${{{p}}}"))
                        }))
                }) || ssm_path_grant(&t, &r)
                    // ECR repositories under the image namespace the function is handed (the
                    // spawner creates them on an image's first push).
                    || (template::sub_text(&r).is_some_and(|s| {
                        s == "arn:${AWS::Partition}:ecr:${AWS::Region}:${AWS::AccountId}:repository/*"
                    }) && vars.values().any(|v| reference(v) == Some("ImageNamespace")))
                    || [
                        &function["Properties"]["LoggingConfig"]["LogGroup"],
                        &function["Properties"]["DeadLetterConfig"]["TargetArn"],
                    ]
                    .iter()
                    .any(|v| {
                        reference(v)
                            .or(template::getatt(v).map(|(id, _)| id))
                            .is_some_and(|id| mentions(&r, id))
                    })
                    || t.resources_of_type("AWS::Lambda::EventSourceMapping")
                        .any(|(_, m)| {
                            reference(&m["Properties"]["FunctionName"]) == Some(f.logical_id)
                                && template::getatt(&m["Properties"]["EventSourceArn"])
                                    .is_some_and(|(q, _)| mentions(&r, q))
                        });
                assert!(
                    handed,
                    "{}: its role grants {r}, which the function is never handed",
                    f.logical_id
                );
            }
        }
    }
    assert!(
        checked >= 8,
        "only {checked} environment references were checked"
    );
}
