//! Cold start of the listener binary: from process start to the first answer, under a small local
//! Lambda runtime API (the endpoints a real Lambda sandbox serves), with SSM and SQS on the moto
//! server. Prints min / median / max over several starts. Needs `tests/services.sh start`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use tokio::sync::mpsc;

#[derive(Clone)]
struct Runtime {
    event: Arc<String>,
    served: Arc<Mutex<bool>>,
    seen: mpsc::UnboundedSender<(&'static str, Instant, String)>,
}

async fn next(State(rt): State<Runtime>) -> (HeaderMap, String) {
    let _ = rt.seen.send(("next", Instant::now(), String::new()));
    let first = !std::mem::replace(&mut *rt.served.lock().unwrap(), true);
    if !first {
        // One invocation per start; the process is killed while it waits for the next.
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
    let mut h = HeaderMap::new();
    h.insert("lambda-runtime-aws-request-id", "req-1".parse().unwrap());
    let deadline = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        + 30_000;
    h.insert(
        "lambda-runtime-deadline-ms",
        deadline.to_string().parse().unwrap(),
    );
    h.insert(
        "lambda-runtime-invoked-function-arn",
        "arn:aws:lambda:us-east-1:123456789012:function:slipway-listener"
            .parse()
            .unwrap(),
    );
    (h, rt.event.as_ref().clone())
}

async fn response(State(rt): State<Runtime>, Path(_id): Path<String>, body: String) -> StatusCode {
    let _ = rt.seen.send(("response", Instant::now(), body));
    StatusCode::ACCEPTED
}

async fn error(State(rt): State<Runtime>, body: String) -> StatusCode {
    let _ = rt.seen.send(("error", Instant::now(), body));
    StatusCode::ACCEPTED
}

fn signed_event(secret: &str) -> String {
    let body = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/github/push-branch.json"
    ))
    .unwrap();
    let sig = slipway_core::webhook::sign(secret.as_bytes(), &body);
    let delivery = uuid::Uuid::new_v4().to_string();
    use base64::Engine;
    serde_json::json!({
        "version": "2.0", "routeKey": "POST /hooks/github", "rawPath": "/hooks/github",
        "rawQueryString": "",
        "headers": {
            "content-type": "application/json", "x-github-event": "push",
            "x-github-delivery": delivery, "x-hub-signature-256": sig
        },
        "requestContext": {
            "accountId": "123456789012", "apiId": "api", "domainName": "api.example",
            "domainPrefix": "api", "requestId": "r", "routeKey": "POST /hooks/github",
            "stage": "$default", "time": "12/Mar/2020:19:03:58 +0000", "timeEpoch": 1583348638390u64,
            "http": { "method": "POST", "path": "/hooks/github", "protocol": "HTTP/1.1",
                      "sourceIp": "192.0.2.1", "userAgent": "GitHub-Hookshot/1" }
        },
        "body": base64::engine::general_purpose::STANDARD.encode(&body),
        "isBase64Encoded": true
    })
    .to_string()
}

#[tokio::main]
async fn main() {
    let moto = std::env::var("SLIPWAY_TEST_MOTO_URL")
        .expect("SLIPWAY_TEST_MOTO_URL is not set: `source tests/services.sh start` first");
    let secret = "a-long-cold-start-webhook-secret";
    let aws = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(&moto)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_sqs::config::Credentials::new(
            "testing", "testing", None, None, "moto",
        ))
        .load()
        .await;
    let ssm = aws_sdk_ssm::Client::new(&aws);
    ssm.put_parameter()
        .name("/slipway/bench/webhook-secret")
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .value(secret)
        .overwrite(true)
        .send()
        .await
        .expect("moto SSM");
    let sqs = aws_sdk_sqs::Client::new(&aws);
    let queue_url = sqs
        .create_queue()
        .queue_name("slipway-bench-jobs.fifo")
        .attributes(aws_sdk_sqs::types::QueueAttributeName::FifoQueue, "true")
        .send()
        .await
        .expect("moto SQS")
        .queue_url
        .unwrap();

    let runs: usize = std::env::var("COLD_START_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let mut init = Vec::new();
    let mut first_answer = Vec::new();
    for _ in 0..runs {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let rt = Runtime {
            event: Arc::new(signed_event(secret)),
            served: Arc::default(),
            seen: tx,
        };
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(response),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(error))
            .with_state(rt);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move { axum::serve(listener, app).await });

        let start = Instant::now();
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_slipway-listener"))
            .env_clear()
            .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", "slipway-listener")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", "bench")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_ENDPOINT_URL", &moto)
            .env("SLIPWAY_QUEUE_URL", &queue_url)
            .env(
                "SLIPWAY_WEBHOOK_SECRET_PARAM",
                "/slipway/bench/webhook-secret",
            )
            .env("SLIPWAY_REPOSITORIES", "*")
            .env("SLIPWAY_BRANCHES", "$default")
            .env("RUST_LOG", "warn")
            .kill_on_drop(true)
            .spawn()
            .expect("listener binary");
        let mut init_at = None;
        let answered = loop {
            let (what, at, body) = tokio::time::timeout(Duration::from_secs(30), rx.recv())
                .await
                .expect("the listener answered within 30 s")
                .unwrap();
            match what {
                "next" if init_at.is_none() => init_at = Some(at),
                "response" => {
                    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
                    assert_eq!(v["statusCode"], 202, "{body}");
                    break at;
                }
                "error" => panic!("the listener reported an error: {body}"),
                _ => {}
            }
        };
        init.push(init_at.unwrap() - start);
        first_answer.push(answered - start);
        child.kill().await.ok();
        server.abort();
    }
    let show = |name: &str, v: &mut Vec<Duration>| {
        v.sort();
        println!(
            "{name}: min {:.1} ms, median {:.1} ms, max {:.1} ms ({} starts)",
            v[0].as_secs_f64() * 1e3,
            v[v.len() / 2].as_secs_f64() * 1e3,
            v[v.len() - 1].as_secs_f64() * 1e3,
            v.len()
        );
    };
    show(
        "process start to first /next (init: config, SSM secret)",
        &mut init,
    );
    show(
        "process start to first answer (202, job on SQS)",
        &mut first_answer,
    );
}
