//! The listener's request path — verify, parse, filter, build the job — on a typical push and on a
//! 6 MB push at GitHub's 2048-commit cap, beside the time to HMAC the same bytes.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use http::{HeaderMap, HeaderValue, Method};
use serde_json::{Value, json};
use slipway_core::listener::{Decision, Facts, Inbound, ListenerConfig, decide};
use slipway_core::webhook::{WebhookSecrets, sign};

const SECRET: &str = "a-long-benchmark-webhook-secret";

fn typical() -> Vec<u8> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/github/push-branch.json"
    );
    std::fs::read(path).expect("fixture")
}

/// The typical payload grown to 2048 commits of 59 paths each (about 6.1 MB).
fn large() -> Vec<u8> {
    let mut v: Value = serde_json::from_slice(&typical()).unwrap();
    let template = v["commits"][0].clone();
    let commits: Vec<Value> = (0..2048)
        .map(|i| {
            let mut c = template.clone();
            c["id"] = json!(format!("{:040x}", i + 1));
            c["message"] = json!(format!(
                "Change number {i} across the services of the monorepo"
            ));
            c["added"] = json!(
                (0..21)
                    .map(|j| format!("services/svc-{:03}/src/module_{j}/file_{i}.rs", i % 500))
                    .collect::<Vec<_>>()
            );
            c["modified"] = json!(
                (0..21)
                    .map(|j| format!("services/svc-{:03}/config/settings_{j}.toml", (i + j) % 500))
                    .collect::<Vec<_>>()
            );
            c["removed"] = json!(
                (0..17)
                    .map(|j| format!("legacy/area-{:03}/old_{j}_{i}.txt", i % 97))
                    .collect::<Vec<_>>()
            );
            c
        })
        .collect();
    v["head_commit"] = commits.last().unwrap().clone();
    v["after"] = commits.last().unwrap()["id"].clone();
    v["commits"] = json!(commits);
    serde_json::to_vec(&v).unwrap()
}

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
    for (name, body) in [("typical", typical()), ("6mb", large())] {
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
        g.bench_function("hmac_sha256_only", |b| {
            b.iter(|| black_box(sign(SECRET.as_bytes(), black_box(&body))))
        });
        g.finish();
        eprintln!("listener/{name}: body {} bytes", body.len());
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
