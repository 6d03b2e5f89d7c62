//! For tests and benchmarks only (feature `testing`): payloads too large to keep as fixtures.

use serde_json::{Value, json};

/// GitHub's documented push (`tests/fixtures/github/push-branch.json`, 9.6 KB, two commits).
pub const TYPICAL_PUSH: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/fixtures/github/push-branch.json"
));

/// The typical push grown to GitHub's cap of 2048 commits, each listing 59 paths (6.1 MB): the
/// largest push payload GitHub sends for a monorepo.
pub fn large_push() -> Vec<u8> {
    let mut v: Value = serde_json::from_slice(TYPICAL_PUSH).expect("the fixture is JSON");
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
    v["head_commit"] = commits.last().expect("2048 commits").clone();
    v["after"] = commits.last().expect("2048 commits")["id"].clone();
    v["commits"] = json!(commits);
    serde_json::to_vec(&v).expect("a value serializes")
}
