//! The listener's request path — verify, parse, filter, build the job — on a typical push and on a
//! 6 MB push at GitHub's 2048-commit cap, beside the time to HMAC the same bytes and the time to
//! build the answer's metric line.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use http::{HeaderMap, HeaderValue, Method};
use slipway_core::listener::{Decision, Facts, Inbound, ListenerConfig, decide};
use slipway_core::webhook::{WebhookSecrets, sign};

const SECRET: &str = "a-long-benchmark-webhook-secret";

fn headers(body: &[u8]) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("content-type", HeaderValue::from_static("application/json"));
    h.insert("x-github-event", HeaderValue::from_static("push"));
    h.insert(
        "x-github-delivery",
        HeaderValue::from_static("72d3162e-cc78-11e3-81ab-4c9367dc0958"),
    );
    h.insert(
        "x-hub-signature-256",
        HeaderValue::from_str(&sign(SECRET.as_bytes(), body)).unwrap(),
    );
    h
}

fn bench(c: &mut Criterion) {
    let mut cfg = ListenerConfig::new(WebhookSecrets::parse(SECRET).unwrap());
    cfg.refs = slipway_core::refs::RefRules::parse("$default", "*").unwrap();
    for (name, body) in [
        ("typical", slipway_core::testing::TYPICAL_PUSH.to_vec()),
        ("6mb", slipway_core::testing::large_push()),
    ] {
        let h = headers(&body);
        let mut g = c.benchmark_group(format!("listener/{name}"));
        g.throughput(Throughput::Bytes(body.len() as u64));
        g.bench_function("request_path", |b| {
            b.iter(|| {
                let req = Inbound {
                    method: &Method::POST,
                    headers: &h,
                    body: black_box(&body),
                };
                let mut facts = Facts::default();
                match decide(&cfg, &req, &mut facts) {
                    Decision::Enqueue(job) => black_box(job),
                    Decision::Reply(r) => panic!("not queued: {}", r.body),
                }
            })
        });
        // The listener's metric line for the answer (`slipway_aws::metrics::emit` adds the clock
        // read and the logger's write of the same string).
        let reply = slipway_core::listener::Reply {
            status: http::StatusCode::ACCEPTED,
            body: serde_json::json!({"status": "queued", "job_id": "push-1"}),
        };
        g.bench_function("metric_line", |b| {
            b.iter(|| {
                let at = slipway_core::metrics::Scope {
                    stack: "slipway",
                    timestamp_ms: 1_700_000_000_000,
                };
                black_box(slipway_core::metrics::webhook(at, black_box(&reply)))
            })
        });
        g.bench_function("hmac_sha256_only", |b| {
            b.iter(|| black_box(sign(SECRET.as_bytes(), black_box(&body))))
        });
        g.finish();
        eprintln!("listener/{name}: body {} bytes", body.len());
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
