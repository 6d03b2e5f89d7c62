//! Any bytes as a push payload: reading, checking, the changed-path list and the job never panic,
//! and a job is only made from a payload that was accepted.
#![no_main]

use libfuzzer_sys::fuzz_target;
use slipway_core::Job;
use slipway_core::job::MAX_JOB_PATHS;
use slipway_core::push::PushEvent;

fuzz_target!(|data: &[u8]| {
    let Ok(push) = PushEvent::parse(data) else { return };
    // An accepted payload is valid UTF-8 and well-formed JSON: the reader skipped nothing unchecked.
    let text = std::str::from_utf8(data).expect("accepted payloads are UTF-8");
    serde_json::from_str::<serde::de::IgnoredAny>(text).expect("accepted payloads are well-formed JSON");
    let changes = push.changes(MAX_JOB_PATHS);
    assert!(changes.paths.windows(2).all(|w| w[0] < w[1]), "paths sorted and unique");
    assert!(changes.paths.len() <= MAX_JOB_PATHS);
    let job = Job::from_push(&push, "fuzz-delivery");
    let back = slipway_core::job::from_json(&slipway_core::job::to_json(&job)).expect("a job reads back");
    assert_eq!(back, job);
});
