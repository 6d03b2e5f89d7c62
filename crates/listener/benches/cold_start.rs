//! Cold start and memory of the listener binary under the local Lambda runtime API
//! (`tests/common/runtime_api.rs`), with SSM and SQS on the moto server. Needs
//! `tests/services.sh start`.
//!
//! - Cold start: `COLD_START_RUNS` (default 20) starts, each answering one signed typical push:
//!   min / median / max from process start to the first `/next` and to the answer, and the median of
//!   each part of the init from the binary's `listener started` log line.
//! - Memory: the peak resident memory (`VmHWM`) of a start answering the typical push and of one
//!   answering the 6.1 MB push at GitHub's 2048-commit cap, both base64-encoded in the event as
//!   API Gateway sends them.
//!
//! `SLIPWAY_LISTENER_BIN=path` measures another build of the binary (for before/after figures).

#[path = "../tests/common/runtime_api.rs"]
mod runtime_api;

use std::time::Duration;

use runtime_api::{Aws, run_once, signed_push_event};

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn summary(name: &str, mut v: Vec<f64>) {
    v.sort_by(f64::total_cmp);
    println!(
        "{name}: min {:.2} ms, median {:.2} ms, max {:.2} ms ({} starts)",
        v[0],
        v[v.len() / 2],
        v[v.len() - 1],
        v.len()
    );
}

#[tokio::main]
async fn main() {
    let aws = Aws::create().await;
    let typical = slipway_core::testing::TYPICAL_PUSH;
    println!("binary: {}", runtime_api::listener_bin());

    let runs: usize = std::env::var("COLD_START_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let (mut init, mut first_answer) = (Vec::new(), Vec::new());
    let parts = [
        "init_logging_us",
        "init_settings_us",
        "init_aws_config_us",
        "init_secret_us",
        "init_sqs_client_us",
    ];
    let mut breakdown: Vec<Vec<f64>> = vec![Vec::new(); parts.len()];
    for _ in 0..runs {
        let run = run_once(&aws, signed_push_event(typical), "info").await;
        assert_eq!(run.answer["statusCode"], 202, "{}", run.answer);
        init.push(ms(run.init));
        first_answer.push(ms(run.first_answer));
        if let Some(log) = &run.started_log {
            for (i, p) in parts.iter().enumerate() {
                if let Some(us) = log[*p].as_f64() {
                    breakdown[i].push(us / 1e3);
                }
            }
        }
    }
    summary("process start to first /next (init)", init);
    summary(
        "process start to first answer (202, job on SQS)",
        first_answer,
    );
    for (p, v) in parts.iter().zip(breakdown) {
        if !v.is_empty() {
            summary(&format!("  init part {p}"), v);
        }
    }

    for (name, body) in [
        ("typical push (9.6 KB)", typical.to_vec()),
        (
            "2048-commit push (6.1 MB)",
            slipway_core::testing::large_push(),
        ),
    ] {
        let event = signed_push_event(&body);
        let run = run_once(&aws, event.clone(), "warn").await;
        assert_eq!(run.answer["statusCode"], 202, "{}", run.answer);
        println!(
            "peak resident memory answering the {name}, event {} bytes: {:.1} MiB (answered {:.1} ms after start)",
            event.len(),
            run.peak_rss_kib as f64 / 1024.0,
            ms(run.first_answer)
        );
    }
}
