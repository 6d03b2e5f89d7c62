//! The listener binary under the kit's local Lambda runtime API
//! (`slipway_testkit::lambda::RuntimeApi`, the `/2018-06-01/runtime/...` endpoints a Lambda
//! sandbox serves), handed one API Gateway event, and what a run of the binary under it shows:
//! when it asked for its first event, its answer, its start-up log line and its peak memory. Used
//! by the memory test and the cold-start benchmark (`benches/cold_start.rs` includes this file).
//! SSM and SQS are the moto server's (`tests/services.sh start`).

#![allow(dead_code)]

use std::time::{Duration, Instant};

use base64::Engine;
use slipway_testkit::lambda::RuntimeApi;
use tokio::io::AsyncBufReadExt;

/// The secret the binary reads from SSM; events are signed with it.
pub const SECRET: &str = "a-long-runtime-api-webhook-secret";

/// The API Gateway HTTP API event (payload 2.0) for a signed push of `body`, base64-encoded as
/// API Gateway sends a body it does not know to be text.
pub fn signed_push_event(body: &[u8]) -> Vec<u8> {
    let sig = slipway_core::webhook::sign(SECRET.as_bytes(), body);
    let delivery = uuid::Uuid::new_v4().to_string();
    serde_json::to_vec(&serde_json::json!({
        "version": "2.0", "routeKey": "POST /hooks/github", "rawPath": "/hooks/github",
        "rawQueryString": "",
        "headers": {
            "content-type": "application/json", "x-github-event": "push",
            "x-github-delivery": delivery, "x-hub-signature-256": sig,
            "user-agent": "GitHub-Hookshot/044aadd"
        },
        "requestContext": {
            "accountId": "123456789012", "apiId": "api", "domainName": "api.example",
            "domainPrefix": "api", "requestId": "r", "routeKey": "POST /hooks/github",
            "stage": "$default", "time": "12/Mar/2020:19:03:58 +0000", "timeEpoch": 1583348638390u64,
            "http": { "method": "POST", "path": "/hooks/github", "protocol": "HTTP/1.1",
                      "sourceIp": "192.0.2.1", "userAgent": "GitHub-Hookshot/044aadd" }
        },
        "body": base64::engine::general_purpose::STANDARD.encode(body),
        "isBase64Encoded": true
    }))
    .unwrap()
}

/// The moto resources the binary uses: its secret parameter and a FIFO jobs queue.
pub struct Aws {
    pub moto: String,
    pub secret_param: String,
    pub queue_url: String,
    pub sqs: aws_sdk_sqs::Client,
}

impl Aws {
    /// Creates the parameter and the queue under names unique to this run.
    pub async fn create() -> Self {
        let moto = slipway_testkit::moto::moto_url();
        let cfg = slipway_testkit::moto::moto_config().await;
        let run = uuid::Uuid::new_v4().simple().to_string();
        let secret_param = format!("/slipway/runtime-api/{run}/webhook-secret");
        aws_sdk_ssm::Client::new(&cfg)
            .put_parameter()
            .name(&secret_param)
            .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
            .value(SECRET)
            .send()
            .await
            .expect("moto SSM");
        let sqs = aws_sdk_sqs::Client::new(&cfg);
        let queue_url = slipway_testkit::moto::fifo_queue(&sqs, "slipway-runtime-api-")
            .await
            .url;
        Aws {
            moto,
            secret_param,
            queue_url,
            sqs,
        }
    }
}

/// What one start of the binary showed.
#[derive(Debug)]
pub struct Run {
    /// From spawning the process to its first `GET /runtime/invocation/next` (its init).
    pub init: Duration,
    /// From spawning the process to its answer.
    pub first_answer: Duration,
    /// The answer the function returned (API Gateway's response object).
    pub answer: serde_json::Value,
    /// The process's peak resident memory (`VmHWM`), in KiB, read after it answered.
    pub peak_rss_kib: u64,
    /// The `listener started` log line (the init breakdown), if the log level let it through.
    pub started_log: Option<serde_json::Value>,
}

/// The binary to run: `SLIPWAY_LISTENER_BIN` if set (to measure another build), else this package's.
pub fn listener_bin() -> String {
    std::env::var("SLIPWAY_LISTENER_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_slipway-listener").to_string())
}

/// Starts the listener binary under a fresh local runtime API, hands it `event`, and waits for its
/// answer (at most 60 s).
pub async fn run_once(aws: &Aws, event: Vec<u8>, rust_log: &str) -> Run {
    let api = RuntimeApi::start("slipway-listener", Duration::from_secs(30)).await;
    // One invocation per start; the process is measured and killed while it waits for the next.
    let invocation = api.invoke(event);

    let start = Instant::now();
    let mut child = api
        .command(listener_bin())
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_ENDPOINT_URL", &aws.moto)
        .env("SLIPWAY_QUEUE_URL", &aws.queue_url)
        .env("SLIPWAY_WEBHOOK_SECRET_PARAM", &aws.secret_param)
        .env("SLIPWAY_REPOSITORIES", "*")
        .env("SLIPWAY_BRANCHES", "$default")
        .env("RUST_LOG", rust_log)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("the listener binary starts");
    let stdout = child.stdout.take().unwrap();
    let log = tokio::spawn(async move {
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        let mut started = None;
        while let Ok(Some(line)) = lines.next_line().await {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
                && v["message"] == "listener started"
            {
                started = Some(v);
            }
        }
        started
    });
    let answer = match invocation.answer(Duration::from_secs(60)).await {
        Ok(answer) => answer,
        Err(no) => panic!("the listener did not answer: {no}"),
    };
    let answered_at = answer.at;
    let answer = match answer.result {
        Ok(answer) => answer,
        Err(body) => panic!("the listener reported an error: {body}"),
    };
    // The answer is out; the process now waits for its next event. Its peak is final.
    let pid = child.id().expect("the process is running");
    let peak_rss_kib = peak_rss_kib(pid);
    child.kill().await.ok();
    let init_at = api.first_asked();
    drop(api);
    let started_log = tokio::time::timeout(Duration::from_secs(5), log)
        .await
        .ok()
        .and_then(Result::ok)
        .flatten();
    Run {
        init: init_at.expect("the binary asked for an event") - start,
        first_answer: answered_at - start,
        answer,
        peak_rss_kib,
        started_log,
    }
}

/// `VmHWM` (peak resident set size) of a running process, in KiB.
pub fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/<pid>/status")
}
