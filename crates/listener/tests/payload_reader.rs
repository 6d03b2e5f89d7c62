//! What the push reader does with large and unusual payloads, through the Lambda's request path:
//! it stops collecting paths once a job could not carry them, still refuses a body that is not
//! well-formed JSON anywhere, and reads escaped strings as their values. (GitHub's largest push,
//! 2048 commits, is `memory.rs`'s, through the binary.)

mod common;

use common::*;
use serde_json::{Value, json};
use slipway_core::job::MAX_JOB_PATHS;
use slipway_core::push::Incomplete;

fn big_config() -> slipway_core::ListenerConfig {
    let mut cfg = config();
    cfg.max_body_bytes = slipway_core::listener::DEFAULT_MAX_BODY_BYTES;
    cfg
}

/// The typical push with `n` commits, commit `i` adding `paths(i)`.
fn push_with(n: usize, paths: impl Fn(usize) -> Vec<String>) -> Value {
    let mut v: Value = serde_json::from_slice(&fixture("push-branch.json")).unwrap();
    let template = v["commits"][0].clone();
    v["commits"] = (0..n)
        .map(|i| {
            let mut c = template.clone();
            c["id"] = json!(format!("{:040x}", i + 1));
            c["added"] = json!(paths(i));
            c["removed"] = json!([]);
            c["modified"] = json!([]);
            c
        })
        .collect();
    v
}

async fn answer(body: &[u8]) -> (Answer, Vec<slipway_core::Job>) {
    let q = MemoryQueue::default();
    let a = call(&big_config(), &q, github_request("push", body)).await;
    (a, q.jobs())
}

#[tokio::test]
async fn more_distinct_paths_than_a_job_carries_is_too_many_paths() {
    // 3 commits of 1000 distinct paths each; the third is past the cut: its invalid path is
    // neither collected nor refused, because no path of this push reaches the job.
    let v = push_with(3, |i| {
        let mut p: Vec<String> = (0..1000).map(|j| format!("c{i}/f{j}")).collect();
        if i == 2 {
            p[999] = "../past/the/cut".into();
        }
        p
    });
    let (a, jobs) = answer(&serde_json::to_vec(&v).unwrap()).await;
    assert_eq!(a.body["status"], "queued", "{}", a.body);
    assert!(jobs[0].changed_paths.is_empty());
    assert_eq!(jobs[0].changes_incomplete, Some(Incomplete::TooManyPaths));
}

#[tokio::test]
async fn an_invalid_path_before_the_cut_is_refused_by_name() {
    let v = push_with(3, |i| {
        let mut p: Vec<String> = (0..1000).map(|j| format!("c{i}/f{j}")).collect();
        if i == 0 {
            p[7] = "/etc/shadow".into();
        }
        p
    });
    let (a, jobs) = answer(&serde_json::to_vec(&v).unwrap()).await;
    assert_eq!(
        (a.status, a.body["error"].as_str()),
        (400, Some("invalid_field"))
    );
    assert_eq!(a.body["field"], "commits[0].added[7]");
    assert!(jobs.is_empty());
}

#[tokio::test]
async fn many_listed_but_few_distinct_paths_are_all_carried() {
    // 4 × 1500 listings of the same 3 paths: the job carries what is distinct.
    let v = push_with(4, |_| {
        (0..1500).map(|j| format!("web/file{}", j % 3)).collect()
    });
    const { assert!(4 * 1500 > MAX_JOB_PATHS) };
    let (a, jobs) = answer(&serde_json::to_vec(&v).unwrap()).await;
    assert_eq!(a.body["status"], "queued", "{}", a.body);
    assert_eq!(
        jobs[0].changed_paths,
        ["web/file0", "web/file1", "web/file2"]
    );
    assert_eq!(jobs[0].changes_incomplete, None);
}

#[tokio::test]
async fn a_document_malformed_past_the_cut_is_still_refused() {
    let v = push_with(3, |i| (0..1000).map(|j| format!("c{i}/f{j}")).collect());
    let good = serde_json::to_string(&v).unwrap();
    // Each fault sits in the last commit, after the reader stopped collecting paths, in a field
    // the reader never reads.
    let end = good.find("\"c2/f999\"]").unwrap() + "\"c2/f999\"]".len();
    let with = |extra: &str| format!("{},{extra}{}", &good[..end], &good[end..]);
    let faults = [
        ("an unknown escape", with(r#""x":"a\qb""#)),
        ("a raw newline in a string", with("\"x\":\"a\nb\"")),
        ("a number with a leading zero", with("\"x\":01")),
        ("a misspelt literal", with("\"x\":tru")),
        ("a missing comma", with("\"x\":1 \"y\":2")),
        ("an unclosed array", with("\"x\":[1,2")),
    ];
    for (what, body) in faults {
        assert_ne!(body, good, "{what}: the fault was not placed");
        let (a, jobs) = answer(body.as_bytes()).await;
        assert_eq!(
            (a.status, a.body["error"].as_str()),
            (400, Some("invalid_json")),
            "{what}: {}",
            a.body
        );
        assert!(jobs.is_empty(), "{what}");
    }
}

#[tokio::test]
async fn bytes_that_are_not_utf8_in_an_unread_field_are_refused() {
    let good = fixture("push-branch.json");
    let text = String::from_utf8(good.clone()).unwrap();
    let at = text.find("Codertocat@users.noreply.github.com").unwrap();
    let mut body = good;
    body[at] = 0xff;
    let (a, jobs) = answer(&body).await;
    assert_eq!(
        (a.status, a.body["error"].as_str()),
        (400, Some("invalid_json")),
        "{}",
        a.body
    );
    assert!(jobs.is_empty());
}

#[tokio::test]
async fn anything_after_the_object_is_refused() {
    let mut body = fixture("push-branch.json");
    body.extend_from_slice(b"\n{\"ref\":\"refs/heads/evil\"}");
    let (a, jobs) = answer(&body).await;
    assert_eq!(
        (a.status, a.body["error"].as_str()),
        (400, Some("invalid_json")),
        "{}",
        a.body
    );
    assert!(jobs.is_empty());
}

#[tokio::test]
async fn a_field_sent_twice_is_refused_by_name() {
    let text = String::from_utf8(fixture("push-branch.json")).unwrap();
    let body = text.replacen("{", "{\"ref\":\"refs/heads/other\",", 1);
    let (a, jobs) = answer(body.as_bytes()).await;
    assert_eq!(
        (a.status, a.body["error"].as_str()),
        (400, Some("invalid_field")),
        "{}",
        a.body
    );
    assert_eq!(a.body["field"], "ref");
    assert!(jobs.is_empty());
}

#[tokio::test]
async fn escaped_strings_are_read_as_their_values() {
    let text = String::from_utf8(fixture("push-branch.json")).unwrap();
    // `\/` and `\u00e9` are how some encoders write `/` and `é`.
    let body = text
        .replace("\"web/Dockerfile\"", "\"web\\/Dockerfile\"")
        .replace("\"README.md\"", "\"R\\u00e9ADME.md\"")
        .replace("\"refs/heads/master\"", "\"refs\\/heads\\/master\"");
    assert_ne!(body, text);
    let (a, jobs) = answer(body.as_bytes()).await;
    assert_eq!(a.body["status"], "queued", "{}", a.body);
    assert_eq!(jobs[0].git_ref, "refs/heads/master");
    assert!(
        jobs[0]
            .changed_paths
            .contains(&"web/Dockerfile".to_string())
    );
    assert!(jobs[0].changed_paths.contains(&"RéADME.md".to_string()));
}
