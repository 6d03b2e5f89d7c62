//! The Makefile's AWS targets: without credentials or a bucket they fail at once saying what to
//! set; `make -n deploy` shows the exact aws commands.

use slipway_stack::workspace_root;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// `make ARGS` with an environment that has no AWS configuration at all.
fn make(args: &[&str], env: &[(&str, &str)]) -> (Output, Duration) {
    let home = tempfile::tempdir().expect("temp dir");
    let mut cmd = Command::new("make");
    cmd.args(["--no-print-directory", "-C"])
        .arg(workspace_root())
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home.path());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let start = Instant::now();
    let out = cmd.output().expect("make runs");
    (out, start.elapsed())
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn deploy_without_bucket_or_credentials_fails_in_under_a_second_saying_what_to_set() {
    let (out, took) = make(&["deploy"], &[]);
    let err = stderr(&out);
    assert!(!out.status.success(), "{err}");
    assert!(took < Duration::from_secs(1), "took {took:?}");
    assert!(err.contains("BUCKET is not set"), "{err}");
    assert!(err.contains("no AWS credentials"), "{err}");
    assert!(
        err.contains("AWS_PROFILE") && err.contains("AWS_ACCESS_KEY_ID"),
        "{err}"
    );
    assert!(err.contains("no AWS region"), "{err}");
    // Nothing slow started: no cargo, no aws.
    assert!(
        !err.contains("Compiling") && !err.contains("cargo"),
        "{err}"
    );

    // With a bucket but no credentials, only the credentials are missing.
    let (out, took) = make(
        &["deploy", "BUCKET=my-artifacts"],
        &[("AWS_REGION", "eu-west-1")],
    );
    let err = stderr(&out);
    assert!(!out.status.success());
    assert!(took < Duration::from_secs(1), "took {took:?}");
    assert!(!err.contains("BUCKET"), "{err}");
    assert!(err.contains("no AWS credentials"), "{err}");

    // With credentials but no bucket, only the bucket is missing.
    let (out, _) = make(
        &["package"],
        &[("AWS_PROFILE", "prod"), ("AWS_REGION", "eu-west-1")],
    );
    let err = stderr(&out);
    assert!(!out.status.success());
    assert!(err.contains("make package: BUCKET is not set"), "{err}");
    assert!(!err.contains("credentials"), "{err}");
}

#[test]
fn dry_run_deploy_shows_the_exact_aws_commands_with_quoted_values() {
    let (out, _) = make(
        &[
            "-n",
            "deploy",
            "BUCKET=my-artifacts",
            "STACK_NAME=images",
            "REPOSITORIES=acme/*",
            "IMAGE_NAMESPACE=docker.io/acme",
            "PARAMS=Branches=$default,release/* NotificationEmail=ops@example.com",
        ],
        &[],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", stderr(&out));
    let lines: Vec<&str> = text.lines().collect();
    let find = |prefix: &str| {
        lines
            .iter()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no `{prefix}` line in:\n{text}"))
            .to_string()
    };
    assert_eq!(
        find("aws cloudformation package"),
        "aws cloudformation package --template-file cloudformation/slipway.yml --s3-bucket 'my-artifacts' --s3-prefix 'images' --output-template-file target/slipway.packaged.yml"
    );
    assert_eq!(
        find("aws cloudformation deploy"),
        "aws cloudformation deploy --template-file target/slipway.packaged.yml --stack-name 'images' --capabilities CAPABILITY_IAM --no-fail-on-empty-changeset --parameter-overrides 'Repositories=acme/*' 'ImageNamespace=docker.io/acme' 'WebhookSecretParameter=/slipway/webhook-secret' 'Branches=$default,release/*' 'NotificationEmail=ops@example.com'"
    );
    // The zips are built before they are packaged.
    let build = lines
        .iter()
        .position(|l| l.contains("lambda build --release --arm64 --output-format zip"));
    let package = lines
        .iter()
        .position(|l| l.starts_with("aws cloudformation package"));
    assert!(build.is_some() && build < package, "{text}");
}

#[test]
fn logs_needs_a_known_function_and_help_lists_the_variables() {
    let env = [("AWS_PROFILE", "p"), ("AWS_REGION", "eu-west-1")];
    let (out, _) = make(&["logs"], &env);
    assert!(
        stderr(&out).contains("FUNCTION is not set"),
        "{}",
        stderr(&out)
    );
    let (out, _) = make(&["logs", "FUNCTION=listener;id"], &env);
    assert!(
        stderr(&out).contains("is not one of listener"),
        "{}",
        stderr(&out)
    );
    let (out, _) = make(
        &["-n", "logs", "FUNCTION=spawner", "STACK_NAME=images"],
        &env,
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("aws logs tail '/aws/lambda/images-spawner' --follow --since '1h'"),
        "{text}"
    );

    let (out, _) = make(&["help"], &[]);
    let text = String::from_utf8_lossy(&out.stdout);
    for word in [
        "build",
        "deploy",
        "destroy",
        "logs",
        "webhook-url",
        "secret",
        "BUCKET",
        "STACK_NAME",
        "AWS_PROFILE",
    ] {
        assert!(
            text.contains(word),
            "make help does not mention {word}:\n{text}"
        );
    }
}

#[test]
fn destroy_asks_for_the_stack_name_and_secret_never_puts_the_value_in_argv() {
    let env = [("AWS_PROFILE", "p"), ("AWS_REGION", "eu-west-1")];
    let (out, _) = make(&["destroy"], &env);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("make destroy CONFIRM=slipway"),
        "{}",
        stderr(&out)
    );

    let (out, _) = make(&["-n", "secret"], &env);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("aws ssm put-parameter --cli-input-json file:///dev/stdin"),
        "{text}"
    );
    assert!(!text.contains("--value"), "{text}");
}
