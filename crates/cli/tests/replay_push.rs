//! `slipway replay` against a local HTTP server that records what it receives: the push payload
//! built from a repository's commits is what GitHub would send, signed with the secret.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;

use slipway_core::WebhookSecrets;
use slipway_core::push::PushEvent;
use slipway_testkit::git::{commit_all, init, write};

const SECRET: &str = "replay-test-secret-0123456789";

struct Received {
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Received {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Accepts one request, answers `status` with a JSON body, and returns what it got.
fn one_request(status: u16) -> (String, std::thread::JoinHandle<Received>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hooks/github", l.local_addr().unwrap());
    let h = std::thread::spawn(move || {
        let (s, _) = l.accept().unwrap();
        let mut r = BufReader::new(s);
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        assert!(line.starts_with("POST /hooks/github "), "{line}");
        let mut headers = Vec::new();
        loop {
            let mut l = String::new();
            r.read_line(&mut l).unwrap();
            let l = l.trim_end();
            if l.is_empty() {
                break;
            }
            let (k, v) = l.split_once(':').unwrap();
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
        let len: usize = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .map(|(_, v)| v.parse().unwrap())
            .unwrap();
        let mut body = vec![0; len];
        r.read_exact(&mut body).unwrap();
        let answer = r#"{"status":"queued","message":"ok"}"#;
        write!(
            r.get_mut(),
            "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
            answer.len()
        )
        .unwrap();
        Received { headers, body }
    });
    (url, h)
}

fn commit(dir: &Path, files: &[(&str, Option<&str>)]) -> String {
    for (p, text) in files {
        match text {
            Some(t) => write(dir, p, t),
            None => std::fs::remove_file(dir.join(p)).unwrap(),
        }
    }
    commit_all(dir, "change")
}

#[test]
fn a_push_from_local_commits_is_signed_and_lists_every_change() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("shop");
    init(&repo);
    let c1 = commit(
        &repo,
        &[
            ("web/Dockerfile", Some("FROM scratch\n")),
            ("old.txt", Some("x")),
        ],
    );
    let _c2 = commit(&repo, &[("web/index.html", Some("hi"))]);
    let c3 = commit(
        &repo,
        &[
            ("web/Dockerfile", Some("FROM scratch\n# 2\n")),
            ("old.txt", None),
        ],
    );

    let (url, server) = one_request(202);
    let out = Command::new(env!("CARGO_BIN_EXE_slipway"))
        .args([
            "replay",
            "--url",
            &url,
            "--secret-env",
            "REPLAY_TEST_SECRET",
            "--ref",
            "refs/heads/main",
            "--before",
            &c1,
            "--after",
            "HEAD",
            "--delivery",
            "d-1",
        ])
        .arg("--repo")
        .arg(&repo)
        .env("REPLAY_TEST_SECRET", SECRET)
        .output()
        .unwrap();
    let got = server.join().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(printed["status"], "queued");

    // Signed as GitHub signs, with GitHub's headers.
    let sig = got.header("x-hub-signature-256").unwrap();
    WebhookSecrets::parse(SECRET)
        .unwrap()
        .verify(&[sig.as_bytes()], false, &got.body)
        .expect("the signature verifies");
    assert_eq!(got.header("x-github-event"), Some("push"));
    assert_eq!(got.header("x-github-delivery"), Some("d-1"));
    assert!(
        got.header("content-type")
            .unwrap()
            .starts_with("application/json")
    );
    // The secret itself never travels.
    assert!(!String::from_utf8_lossy(&got.body).contains(SECRET));

    // A payload the listener accepts, with both commits and their changes.
    let push = PushEvent::parse(&got.body).expect("a valid push payload");
    assert_eq!(push.before, c1);
    assert_eq!(push.after, c3);
    assert_eq!(push.git_ref, "refs/heads/main");
    assert_eq!(push.commit_count, 2);
    assert!(!push.created && !push.forced);
    let changes = push.changes(100);
    assert!(changes.incomplete.is_none());
    assert_eq!(
        changes.paths,
        ["old.txt", "web/Dockerfile", "web/index.html"]
    );
    assert!(push.repository.clone_url.starts_with("file:///"));
    assert_eq!(push.repository.full_name, "local/shop");
}

#[test]
fn a_saved_payload_is_sent_as_is_and_a_refusal_fails_the_command() {
    let tmp = tempfile::tempdir().unwrap();
    let payload = tmp.path().join("push.json");
    std::fs::write(&payload, br#"{"zen":"hello"}"#).unwrap();
    let (url, server) = one_request(401);
    let out = Command::new(env!("CARGO_BIN_EXE_slipway"))
        .args([
            "replay",
            "--url",
            &url,
            "--secret-env",
            "REPLAY_TEST_SECRET",
            "--event",
            "ping",
        ])
        .arg(&payload)
        .env("REPLAY_TEST_SECRET", SECRET)
        .output()
        .unwrap();
    let got = server.join().unwrap();
    assert_eq!(got.body, br#"{"zen":"hello"}"#);
    assert_eq!(got.header("x-github-event"), Some("ping"));
    assert!(!out.status.success(), "a 401 answer must fail the command");
    assert!(String::from_utf8_lossy(&out.stderr).contains("HTTP 401"));
}

#[test]
fn a_missing_secret_is_named_and_nothing_is_sent() {
    let out = Command::new(env!("CARGO_BIN_EXE_slipway"))
        .args([
            "replay",
            "--url",
            "http://127.0.0.1:9/hooks/github",
            "--secret-env",
            "REPLAY_TEST_UNSET_SECRET",
            "x.json",
        ])
        .env_remove("REPLAY_TEST_UNSET_SECRET")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("REPLAY_TEST_UNSET_SECRET") && err.contains("not set"),
        "{err}"
    );
}
