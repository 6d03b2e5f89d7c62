//! Deploy calls and GitHub commit statuses against real HTTP servers on 127.0.0.1. The deploy
//! server verifies every request with `slipway_core::deploy`'s verifier (and its replay cache),
//! as `slipway agent` does.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::routing::post;
use serde_json::{Value, json};
use slipway_calls::deploy::DeployCalls;
use slipway_core::Job;
use slipway_core::deploy::{DeployRequest, DeploySecret, NonceCache, SignedRequest, Verifier};
use slipway_core::listener::Enqueued;
use slipway_core::notify::{
    self, BuildOutcome, CommitStatus, DeployResult, Notification, NotifyConfig, SinkError, Sinks,
};
use slipway_github::GitHub;

const SECRET: &str = "a-long-random-deploy-secret-0123456789";

#[derive(Default)]
struct Server {
    nonces: Mutex<Option<NonceCache>>,
    /// Verified requests per path, with their service.
    verified: Mutex<Vec<(String, String)>>,
    refused: AtomicUsize,
    slow_in_flight: AtomicUsize,
    /// What the good target saw: was the slow target's request in flight meanwhile?
    good_saw_slow: Mutex<Option<bool>>,
    statuses: Mutex<Vec<(String, String, Value)>>,
}

fn verifier() -> Verifier {
    Verifier::new(vec![
        DeploySecret::new("notifier", SECRET.as_bytes(), vec!["web".into()]).unwrap(),
    ])
    .unwrap()
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

async fn deploys(
    State(s): State<Arc<Server>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let path = uri.path().to_string();
    let checked = {
        let mut nonces = s.nonces.lock().unwrap();
        let cache = nonces.get_or_insert_with(|| NonceCache::new(1000, 300));
        verifier().verify(
            &SignedRequest {
                method: "POST",
                path: &path,
                headers: &headers,
                body: &body,
            },
            now(),
            cache,
        )
    };
    if checked.is_err() {
        s.refused.fetch_add(1, Ordering::SeqCst);
        return StatusCode::UNAUTHORIZED;
    }
    let req: DeployRequest = serde_json::from_slice(&body).expect("the agent's request shape");
    s.verified.lock().unwrap().push((path.clone(), req.service));
    match path.as_str() {
        "/good/deploys" => {
            let mut saw = false;
            for _ in 0..60 {
                if s.slow_in_flight.load(Ordering::SeqCst) > 0 {
                    saw = true;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            *s.good_saw_slow.lock().unwrap() = Some(saw);
            StatusCode::ACCEPTED
        }
        "/flaky/deploys" => StatusCode::INTERNAL_SERVER_ERROR,
        "/slow/deploys" => {
            s.slow_in_flight.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_secs(5)).await;
            s.slow_in_flight.fetch_sub(1, Ordering::SeqCst);
            StatusCode::ACCEPTED
        }
        _ => StatusCode::NOT_FOUND,
    }
}

async fn statuses(
    State(s): State<Arc<Server>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    s.statuses.lock().unwrap().push((
        uri.path().to_string(),
        auth,
        serde_json::from_slice(&body).unwrap(),
    ));
    StatusCode::CREATED
}

async fn serve() -> (String, Arc<Server>) {
    let state = Arc::new(Server::default());
    let app = Router::new()
        .route("/{target}/deploys", post(deploys))
        .route("/api/repos/{owner}/{name}/statuses/{sha}", post(statuses))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), state)
}

struct Parts {
    deploy: DeployCalls<slipway_calls::FileSecrets>,
    github: GitHub,
    published: Mutex<Vec<Notification>>,
}

impl Sinks for Parts {
    async fn publish(&self, n: &Notification) -> Result<(), SinkError> {
        self.published.lock().unwrap().push(n.clone());
        Ok(())
    }
    async fn commit_status(&self, s: &CommitStatus) -> Result<(), SinkError> {
        Ok(self.github.set_status(s).await?)
    }
    async fn deploy(&self, targets: &[String], _o: &BuildOutcome) -> Vec<DeployResult> {
        self.deploy.call_all(targets).await
    }
    async fn enqueue(&self, _job: &Job) -> Result<Enqueued, SinkError> {
        Ok(Enqueued::Queued)
    }
}

fn event_deploying_to(targets: &str) -> Value {
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/codebuild/succeeded.json");
    let mut e: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    for v in e["detail"]["additional-information"]["environment"]["environment-variables"]
        .as_array_mut()
        .unwrap()
    {
        if v["name"] == "SLIPWAY_DEPLOY" {
            v["value"] = json!(targets);
        }
    }
    e
}

#[tokio::test]
async fn deploy_calls_are_signed_retried_reported_and_never_wait_for_each_other() {
    let (base, server) = serve().await;
    let dir = tempfile::tempdir().unwrap();
    let good_secret = dir.path().join("secret");
    std::fs::write(&good_secret, format!("{SECRET}\n")).unwrap();
    let wrong_secret = dir.path().join("wrong");
    std::fs::write(&wrong_secret, "not-the-agents-secret-at-all").unwrap();
    let config = json!({
        "slow": {"url": format!("{base}/slow/deploys"), "service": "web",
                 "secret_file": good_secret, "timeout_seconds": 0.3, "retries": 2},
        "flaky": {"url": format!("{base}/flaky/deploys"), "service": "web",
                  "secret_file": good_secret, "retries": 2},
        "good": {"url": format!("{base}/good/deploys"), "service": "web",
                 "secret_file": good_secret, "timeout_seconds": 10},
        "forged": {"url": format!("{base}/good/deploys"), "service": "web",
                   "secret_file": wrong_secret, "retries": 2},
    });
    let targets = notify::parse_deploy_targets(&config.to_string()).unwrap();
    let mut deploy = DeployCalls::new(targets, slipway_calls::FileSecrets).unwrap();
    deploy.backoff_base = Duration::from_millis(20);
    deploy.backoff_max = Duration::from_millis(100);
    let sinks = Parts {
        deploy,
        github: GitHub::new(&format!("{base}/api"), Some("ghp_test".to_string().into())).unwrap(),
        published: Mutex::default(),
    };
    let cfg = NotifyConfig {
        in_progress: false,
        commit_status: true,
    };
    let report = slipway_notifier::handle_event(
        &event_deploying_to("slow flaky good forged unknown"),
        &cfg,
        &sinks,
    )
    .await;

    let by_target: BTreeMap<String, Value> = report["deploys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["target"].as_str().unwrap().to_string(), d.clone()))
        .collect();
    assert_eq!(by_target["good"]["outcome"], "delivered");
    assert_eq!(by_target["good"]["attempts"], 1);
    assert_eq!(by_target["good"]["status"], 202);
    assert_eq!(by_target["flaky"]["outcome"], "failed");
    assert_eq!(by_target["flaky"]["attempts"], 3, "a 500 is retried");
    assert_eq!(by_target["flaky"]["status"], 500);
    assert_eq!(by_target["slow"]["outcome"], "failed");
    assert_eq!(by_target["slow"]["attempts"], 3, "a timeout is retried");
    assert_eq!(by_target["slow"]["error_code"], "timeout");
    assert_eq!(by_target["forged"]["outcome"], "failed");
    assert_eq!(by_target["forged"]["attempts"], 1, "a 401 is final");
    assert_eq!(by_target["forged"]["status"], 401);
    assert_eq!(by_target["unknown"]["outcome"], "not_configured");

    // Every attempt was verified by the agent's own verifier: fresh nonce each time.
    let verified = server.verified.lock().unwrap().clone();
    let count = |p: &str| verified.iter().filter(|(path, _)| path == p).count();
    assert_eq!(count("/flaky/deploys"), 3);
    assert_eq!(count("/slow/deploys"), 3);
    assert_eq!(count("/good/deploys"), 1);
    assert!(verified.iter().all(|(_, service)| service == "web"));
    assert_eq!(
        server.refused.load(Ordering::SeqCst),
        1,
        "the forged request"
    );
    assert_eq!(
        *server.good_saw_slow.lock().unwrap(),
        Some(true),
        "the good target was called while the slow one was still hanging"
    );

    // The outcome of each is in the notification.
    let n = sinks.published.lock().unwrap()[0].clone();
    for line in [
        "Deploy slow: failed after 3 attempts (timeout)\n",
        "Deploy flaky: failed after 3 attempts, HTTP 500 (unexpected_status)\n",
        "Deploy good: delivered after 1 attempt, HTTP 202\n",
        "Deploy forged: failed after 1 attempt, HTTP 401 (unexpected_status)\n",
        "Deploy unknown: not_configured\n",
    ] {
        assert!(n.text.contains(line), "{line:?} missing from:\n{}", n.text);
    }
    assert_eq!(n.json["deploys"].as_array().unwrap().len(), 5);

    // And the commit status went to GitHub with the token.
    let st = server.statuses.lock().unwrap().clone();
    assert_eq!(st.len(), 1);
    let (path, auth, body) = &st[0];
    assert_eq!(
        path,
        "/api/repos/acme/site/statuses/6113728f27ae82c7b1a177c8d03f9e96e0adf246"
    );
    assert_eq!(auth, "Bearer ghp_test");
    assert_eq!(body["state"], "success");
    assert_eq!(body["context"], "slipway/acme/web");
    assert_eq!(body["description"], "pushed :main in 1m 59s");
    assert!(
        body["target_url"]
            .as_str()
            .unwrap()
            .starts_with("https://console.aws.amazon.com/")
    );
    assert_eq!(report["commit_status"], "set");
}

#[tokio::test]
async fn a_commit_status_github_refuses_is_reported_not_hidden() {
    let (base, _server) = serve().await;
    // No such route on the server: 404 from GitHub's point of view.
    let github = GitHub::new(&format!("{base}/elsewhere"), Some("t".to_string().into())).unwrap();
    let sinks = Parts {
        deploy: DeployCalls::new(BTreeMap::new(), slipway_calls::FileSecrets).unwrap(),
        github,
        published: Mutex::default(),
    };
    let cfg = NotifyConfig {
        in_progress: false,
        commit_status: true,
    };
    let report = slipway_notifier::handle_event(&event_deploying_to(""), &cfg, &sinks).await;
    assert_eq!(report["commit_status"], "failed: github_status_failed");
    assert_eq!(report["publish"], "published");
    let n = sinks.published.lock().unwrap()[0].clone();
    assert_eq!(n.json["commit_status"], "failed: github_status_failed");
}
