//! Any bytes as a push payload: parsing, validation, the changed-path list and the job never panic,
//! and a job is only made from a payload that validated.
#![no_main]

use libfuzzer_sys::fuzz_target;
use slipway_core::Job;
use slipway_core::push::{PushEvent, from_json};

fuzz_target!(|data: &[u8]| {
    if let Ok(push) = from_json::<PushEvent>(data)
        && push.validate().is_ok()
    {
        let changes = push.changes(slipway_core::job::MAX_JOB_PATHS);
        assert!(changes.paths.windows(2).all(|w| w[0] < w[1]), "paths sorted and unique");
        let job = Job::from_push(&push, "fuzz-delivery");
        let json = serde_json_roundtrip(&job);
        assert_eq!(json, job);
    }
});

fn serde_json_roundtrip(job: &Job) -> Job {
    let s = slipway_core::job::to_json(job);
    slipway_core::job::from_json(&s).expect("a job reads back")
}
