//! The agent's refusals, against a real `slipway agent` process whose docker and compose are
//! recording stand-ins: each refusal must come with its status and code, and run nothing.

mod agent_support;

use std::path::{Path, PathBuf};

use agent_support::*;
use serde_json::json;

const IMAGE_ID: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
const HUB_TOKEN: &str = "hub-token-abcdefghijklmnopqrstuvwxyz012345";

/// docker: answers `ps`/`inspect` for one compose service `shop/web`; records anything else.
/// compose: records its argv, then sleeps and exits as FAKE_COMPOSE_SLEEP / _EXIT say.
fn fakes(dir: &Path) -> (PathBuf, PathBuf) {
    let inspect = json!([{
        "Id": "c0ffee",
        "Image": IMAGE_ID,
        "Config": {"Image": "127.0.0.1:5999/shop/web:live", "Labels": {
            "com.docker.compose.project": "shop",
            "com.docker.compose.project.working_dir": "/srv/shop",
            "com.docker.compose.project.config_files": "/srv/shop/docker-compose.yml",
            "com.docker.compose.service": "web"}},
        "State": {"Status": "running", "Running": true, "StartedAt": "2026-01-01T00:00:00Z"}
    }]);
    std::fs::write(dir.join("inspect.json"), inspect.to_string()).unwrap();
    let docker = dir.join("docker");
    std::fs::write(
        &docker,
        format!(
            r#"#!/bin/sh
case "$1" in
  ps) case "$*" in *"com.docker.compose.service=web"*) echo c0ffee ;; esac ;;
  inspect) cat "{dir}/inspect.json" ;;
  image) echo "{IMAGE_ID}" ;;
  *) echo "docker $*" >> "{dir}/exec.log" ;;
esac
"#,
            dir = dir.display()
        ),
    )
    .unwrap();
    let compose = dir.join("compose");
    std::fs::write(
        &compose,
        format!(
            "#!/bin/sh\necho \"compose $*\" >> \"{}/exec.log\"\nsleep \"${{FAKE_COMPOSE_SLEEP:-0}}\"\nexit \"${{FAKE_COMPOSE_EXIT:-0}}\"\n",
            dir.display()
        ),
    )
    .unwrap();
    for f in [&docker, &compose] {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    (docker, compose)
}

fn config(dir: &Path, extra: &str) -> String {
    let (docker, compose) = fakes(dir);
    std::fs::write(dir.join("ci.secret"), SECRET).unwrap();
    std::fs::write(dir.join("hub.token"), HUB_TOKEN).unwrap();
    format!(
        r#"
docker = ["{docker}"]
compose = ["{compose}"]
health_timeout_secs = 5
{extra}

[[secret]]
name = "ci"
file = "{dir}/ci.secret"
services = ["web"]

[[dockerhub]]
name = "hub"
token_file = "{dir}/hub.token"
services = ["web"]
callback_allow = ["https://registry.hub.docker.com"]
"#,
        docker = docker.display(),
        compose = compose.display(),
        dir = dir.display()
    )
}

fn executed(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("exec.log")).unwrap_or_default()
}

const PULL_WEB: &str = r#"{"service":"web","action":"pull"}"#;

#[tokio::test]
async fn captured_request_is_refused_on_second_use() {
    let dir = tempfile::tempdir().unwrap();
    let agent = start_agent(dir.path(), &config(dir.path(), ""), &[]);
    let request = signed("POST", "/deploys", PULL_WEB, unix_now());

    let (status, first) = send(&agent, &request).await;
    assert_eq!(status, 202, "{first}");
    assert_eq!(first["resolved"], "shop/web");
    let record = wait_deploy(&agent, first["deploy_id"].as_str().unwrap()).await;
    // The stand-in engine says the image did not change: pulled, nothing recreated.
    assert_eq!(record["state"], "unchanged", "{record}");

    let (status, second) = send(&agent, &request).await;
    assert_eq!(
        (status, second["error"].as_str()),
        (401, Some("replayed")),
        "{second}"
    );
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let log = executed(dir.path());
    assert_eq!(log.matches(" pull ").count(), 1, "exactly one pull: {log}");
    assert!(log.contains("compose -p shop --project-directory /srv/shop -f /srv/shop/docker-compose.yml pull -- web"), "{log}");
}

#[tokio::test]
async fn refusals_run_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let agent = start_agent(dir.path(), &config(dir.path(), ""), &[]);
    let now = unix_now();

    // Signed for `pull`, sent as `build`.
    let mut tampered = signed("POST", "/deploys", PULL_WEB, now);
    tampered.body = br#"{"service":"web","action":"build"}"#.to_vec();
    // Signed for another endpoint.
    let mut moved = signed("POST", "/elsewhere", PULL_WEB, now);
    moved.path = "/deploys".into();
    let mut unsigned = signed("POST", "/deploys", PULL_WEB, now);
    unsigned.headers.clear();

    let cases = [
        ("pull sent as build", tampered, 401, "signature_mismatch"),
        ("other endpoint", moved, 401, "signature_mismatch"),
        ("unsigned", unsigned, 401, "signature_missing"),
        (
            "too old",
            signed("POST", "/deploys", PULL_WEB, now - 301),
            401,
            "timestamp_out_of_window",
        ),
        (
            "from the future",
            signed("POST", "/deploys", PULL_WEB, now + 400),
            401,
            "timestamp_out_of_window",
        ),
        (
            "service not on the secret's list",
            signed(
                "POST",
                "/deploys",
                r#"{"service":"db","action":"pull"}"#,
                now,
            ),
            403,
            "service_not_allowed",
        ),
        (
            "shell metacharacters",
            signed(
                "POST",
                "/deploys",
                r#"{"service":"web; docker rm -f $(docker ps -aq)","action":"pull"}"#,
                now,
            ),
            422,
            "service_invalid",
        ),
        (
            "option-like service",
            signed(
                "POST",
                "/deploys",
                r#"{"service":"--help","action":"pull"}"#,
                now,
            ),
            422,
            "service_invalid",
        ),
        (
            "unknown action",
            signed(
                "POST",
                "/deploys",
                r#"{"service":"web","action":"rm"}"#,
                now,
            ),
            422,
            "invalid_request",
        ),
        (
            "body over 64 KiB",
            signed(
                "POST",
                "/deploys",
                &format!(
                    r#"{{"service":"web","action":"pull","pad":"{}"}}"#,
                    "x".repeat(70_000)
                ),
                now,
            ),
            413,
            "payload_too_large",
        ),
    ];
    for (what, request, want_status, want_code) in cases {
        let (status, body) = send(&agent, &request).await;
        assert_eq!(status, want_status, "{what}: {body}");
        assert_eq!(body["error"], want_code, "{what}: {body}");
        assert!(
            body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{what}: {body}"
        );
    }
    // A signed request for a service no container has: looked up, nothing run.
    let secret_ok_unknown = {
        let dir2 = tempfile::tempdir().unwrap();
        let cfg = config(dir2.path(), "")
            .replace(r#"services = ["web"]"#, r#"services = ["web", "ghost"]"#);
        let agent2 = start_agent(dir2.path(), &cfg, &[]);
        let (status, body) = send(
            &agent2,
            &signed("POST", "/deploys", r#"{"service":"ghost"}"#, now),
        )
        .await;
        assert!(executed(dir2.path()).is_empty());
        (status, body)
    };
    assert_eq!(
        (secret_ok_unknown.0, secret_ok_unknown.1["error"].as_str()),
        (404, Some("service_unknown"))
    );

    // Docker Hub: unknown token; callback to a host off the allow-list.
    let hub_body = |callback: &str| {
        json!({
            "callback_url": callback,
            "push_data": {"tag": "latest"},
            "repository": {"repo_name": "shop/web"}
        })
        .to_string()
    };
    let raw = |path: String, body: String| Raw {
        method: reqwest::Method::POST,
        path,
        headers: vec![("content-type".into(), "application/json".into())],
        body: body.into_bytes(),
    };
    let (status, body) = send(
        &agent,
        &raw(
            "/hooks/dockerhub/hub-token-guessed-000000000000000000000000".into(),
            hub_body("https://registry.hub.docker.com/u/shop/web/hook/1/"),
        ),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (404, Some("hook_unknown")),
        "{body}"
    );
    let (status, body) = send(
        &agent,
        &raw(
            format!("/hooks/dockerhub/{HUB_TOKEN}"),
            hub_body("https://attacker.example/collect"),
        ),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("callback_not_allowed")),
        "{body}"
    );

    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(executed(dir.path()), "", "a refused request ran something");
}

#[tokio::test]
async fn second_request_is_refused_while_deploying_when_not_coalescing() {
    let dir = tempfile::tempdir().unwrap();
    let agent = start_agent(
        dir.path(),
        &config(dir.path(), "coalesce = false"),
        &[
            ("FAKE_COMPOSE_SLEEP", "3".into()),
            ("FAKE_COMPOSE_EXIT", "1".into()),
        ],
    );
    let (status, first) = send(&agent, &signed("POST", "/deploys", PULL_WEB, unix_now())).await;
    assert_eq!(status, 202, "{first}");
    let (status, second) = send(&agent, &signed("POST", "/deploys", PULL_WEB, unix_now())).await;
    assert_eq!(
        (status, second["error"].as_str()),
        (409, Some("deploy_running")),
        "{second}"
    );
    let record = wait_deploy(&agent, first["deploy_id"].as_str().unwrap()).await;
    // The pull failed, so the service was left untouched: no recreate was attempted.
    assert_eq!(record["state"], "failed", "{record}");
    assert!(
        !executed(dir.path()).contains(" up "),
        "{}",
        executed(dir.path())
    );
}

#[tokio::test]
async fn requests_are_coalesced_while_deploying() {
    let dir = tempfile::tempdir().unwrap();
    let agent = start_agent(
        dir.path(),
        &config(dir.path(), ""),
        &[("FAKE_COMPOSE_SLEEP", "2".into())],
    );
    let (_, first) = send(&agent, &signed("POST", "/deploys", PULL_WEB, unix_now())).await;
    let (s2, second) = send(&agent, &signed("POST", "/deploys", PULL_WEB, unix_now())).await;
    let (s3, third) = send(&agent, &signed("POST", "/deploys", PULL_WEB, unix_now())).await;
    assert_eq!((s2, s3), (202, 202));
    assert_eq!(second["status"], "accepted");
    assert_eq!(third["status"], "coalesced");
    assert_eq!(third["deploy_id"], second["deploy_id"]);
    assert_ne!(first["deploy_id"], second["deploy_id"]);
    wait_deploy(&agent, second["deploy_id"].as_str().unwrap()).await;
    // One pull for the running deploy, one for the queued one the third request joined.
    assert_eq!(executed(dir.path()).matches(" pull ").count(), 2);
}

#[tokio::test]
async fn delivery_hook_scheme_when_enabled() {
    let dir = tempfile::tempdir().unwrap();
    let now = unix_now();
    let compat = |ts: i64| Raw {
        method: reqwest::Method::POST,
        path: "/deploys".into(),
        headers: slipway_core::deploy::sign_compat(SECRET.as_bytes(), PULL_WEB.as_bytes(), ts)
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
        body: PULL_WEB.as_bytes().to_vec(),
    };
    {
        let off = start_agent(dir.path(), &config(dir.path(), ""), &[]);
        let (status, body) = send(&off, &compat(now)).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (401, Some("signature_missing"))
        );
    }
    let on = start_agent(
        dir.path(),
        &config(dir.path(), "delivery_hook_compat = true"),
        &[],
    );
    let request = compat(now);
    let (status, body) = send(&on, &request).await;
    assert_eq!(status, 202, "{body}");
    let (status, body) = send(&on, &request).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("replayed")));
}

#[tokio::test]
async fn dockerhub_hook_calls_back_with_the_result() {
    use axum::routing::post;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<serde_json::Value>(1);
    let app = axum::Router::new().route(
        "/callback/{id}",
        post(move |axum::Json(v): axum::Json<serde_json::Value>| {
            let tx = tx.clone();
            async move {
                tx.send(v).await.unwrap();
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), "").replace(
        r#"callback_allow = ["https://registry.hub.docker.com"]"#,
        &format!(r#"callback_allow = ["http://{addr}"]"#),
    );
    let agent = start_agent(dir.path(), &cfg, &[]);
    let body = json!({
        "callback_url": format!("http://{addr}/callback/42"),
        "push_data": {"tag": "live"},
        "repository": {"repo_name": "shop/web"}
    });
    let (status, answer) = send(
        &agent,
        &Raw {
            method: reqwest::Method::POST,
            path: format!("/hooks/dockerhub/{HUB_TOKEN}"),
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.to_string().into_bytes(),
        },
    )
    .await;
    assert_eq!(status, 202, "{answer}");
    let callback = tokio::time::timeout(std::time::Duration::from_secs(20), rx.recv())
        .await
        .expect("callback within 20 s")
        .unwrap();
    assert_eq!(callback["state"], "success", "{callback}");
    assert!(executed(dir.path()).contains("pull -- web"));
}

#[test]
fn example_configuration_parses_and_secrets_are_required() {
    let example = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/agent/agent.toml"
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_slipway"))
        .args(["agent", "--config", example])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    // Past parsing: it stops at the secret file the example points to.
    assert!(
        stderr.contains("secret `ci`: cannot read /etc/slipway/agent-ci.secret"),
        "{stderr}"
    );
}

#[test]
fn deliver_reads_the_secret_from_the_environment_only() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_slipway"))
        .args(["deliver", "--url", "http://127.0.0.1:9", "--service", "web"])
        .env_remove("SLIPWAY_DEPLOY_SECRET")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("SLIPWAY_DEPLOY_SECRET"));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_slipway"))
        .args([
            "deliver",
            "--url",
            "http://127.0.0.1:9",
            "--service",
            "web",
            "--secret",
            "x",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success(), "a --secret argument must not exist");
}

#[tokio::test]
async fn deliver_reports_the_agents_refusal() {
    let dir = tempfile::tempdir().unwrap();
    let agent = start_agent(dir.path(), &config(dir.path(), ""), &[]);
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_slipway"))
        .args(["deliver", "--url", &agent.url, "--service", "web", "--wait"])
        .env("SLIPWAY_DEPLOY_SECRET", "not-the-agents-secret-at-all")
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("401 signature_mismatch"), "{stderr}");
    assert_eq!(executed(dir.path()), "");
}
