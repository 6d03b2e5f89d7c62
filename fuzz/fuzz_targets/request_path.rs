//! Any request to the listener: the first byte picks the method, content type, event, whether the
//! body is signed with the active secret (so the fuzzer also reaches the payload parser) and which
//! headers are repeated or missing; the rest is the body. The decision never panics, and a job is
//! only ever made from a signed push.
#![no_main]

use http::{HeaderMap, HeaderValue, Method};
use libfuzzer_sys::fuzz_target;
use slipway_core::listener::{Decision, Facts, Inbound, ListenerConfig, decide};
use slipway_core::webhook::{WebhookSecrets, sign};

const SECRET: &str = "a-long-fuzzing-webhook-secret";

fuzz_target!(|data: &[u8]| {
    let Some((&flags, body)) = data.split_first() else { return };
    let cfg = ListenerConfig::new(WebhookSecrets::parse(SECRET).unwrap());
    let method = if flags & 1 == 0 { Method::POST } else { Method::GET };
    let mut h = HeaderMap::new();
    let ct = ["application/json", "application/x-www-form-urlencoded", "text/plain", "application/json; charset=utf-8"];
    h.insert("content-type", HeaderValue::from_static(ct[((flags >> 1) & 3) as usize]));
    let events = ["push", "ping", "issues", "Push"];
    h.insert("x-github-event", HeaderValue::from_static(events[((flags >> 3) & 3) as usize]));
    h.insert("x-github-delivery", HeaderValue::from_static("72d3162e-cc78-11e3-81ab-4c9367dc0958"));
    let signed = flags & 0x20 == 0;
    if signed {
        h.insert("x-hub-signature-256", HeaderValue::from_str(&sign(SECRET.as_bytes(), body)).unwrap());
    } else if let Ok(v) = HeaderValue::from_bytes(&body[..body.len().min(80)]) {
        h.insert("x-hub-signature-256", v);
    }
    if flags & 0x40 != 0 {
        h.append("x-hub-signature-256", HeaderValue::from_static("sha256=00"));
    }
    if flags & 0x80 != 0 {
        h.remove("x-github-delivery");
    }
    let req = Inbound { method: &method, headers: &h, body };
    let mut facts = Facts::default();
    match decide(&cfg, &req, &mut facts) {
        Decision::Enqueue(job) => {
            assert!(signed && method == Method::POST, "a job from an unsigned request");
            assert!(job.changed_paths.iter().all(|p| !p.split('/').any(|c| c == "..")));
        }
        Decision::Reply(r) => {
            assert!(r.body.get("error").is_some() || r.body.get("status").is_some());
            assert!(r.body.get("message").is_some());
        }
    }
});
