//! A pushed image whose `slipway.toml` names a deploy target: `slipway serve` calls the deploy
//! agent's endpoint with a signed request once the build succeeded.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::time::Duration;

use slipway_testkit::git::{commit_all, init, write};
use slipway_testkit::registry::{busybox_dockerfile, registry};
use slipway_testkit::serve_setup;
use slipway_testkit::unique;

struct Request {
    line: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// A stand-in deploy agent: records one request and answers 202.
fn agent() -> (u16, std::thread::JoinHandle<Request>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let h = std::thread::spawn(move || {
        let (s, _) = l.accept().unwrap();
        let mut r = BufReader::new(s);
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        let mut headers = Vec::new();
        loop {
            let mut l = String::new();
            r.read_line(&mut l).unwrap();
            let l = l.trim_end().to_string();
            if l.is_empty() {
                break;
            }
            let (k, v) = l.split_once(':').unwrap();
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
        let len: usize = headers
            .iter()
            .find(|(k, _)| k == "content-length")
            .map(|(_, v)| v.parse().unwrap())
            .unwrap_or(0);
        let mut body = vec![0; len];
        r.read_exact(&mut body).unwrap();
        let answer = r#"{"status":"accepted"}"#;
        write!(
            r.get_mut(),
            "HTTP/1.1 202 Accepted\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
            answer.len()
        )
        .unwrap();
        Request {
            line,
            headers,
            body,
        }
    });
    (port, h)
}

#[test]
fn a_pushed_image_calls_its_deploy_agent_with_a_signed_request() {
    let r = registry();
    let tmp = tempfile::tempdir().unwrap();
    let ns_path = unique("deploy");
    let repo = tmp.path().join("site");
    init(&repo);
    r.busybox_context(&repo, "web", &busybox_dockerfile(0, ""));
    write(
        &repo,
        "slipway.toml",
        "[[image]]\ncontext = \"web\"\ndeploy = [\"local\"]\n",
    );
    let c1 = commit_all(&repo, "web with a deploy target");

    let (port, agent) = agent();
    let deploy_secret = "deploy-test-secret-0123456789abcdef";
    let secret_file = tmp.path().join("deploy-secret");
    std::fs::write(&secret_file, deploy_secret).unwrap();
    let targets = tmp.path().join("deploy-targets.json");
    std::fs::write(
        &targets,
        serde_json::json!({"local": {"url": format!("http://127.0.0.1:{port}/deploys"), "service": "web", "secret_file": secret_file}})
            .to_string(),
    )
    .unwrap();
    let serve = serve_setup!(
        &r,
        tmp.path(),
        &ns_path,
        &format!("deploy_targets_file = \"{}\"", targets.display())
    );
    let server = serve.start(1);
    server.push(&repo, None, &c1, "deploy-1");
    let builds = server.wait_settled(1, Duration::from_secs(240));
    assert_eq!(builds[0]["state"], "succeeded", "{}", server.log());

    let got = agent.join().unwrap();
    assert!(got.line.starts_with("POST /deploys "), "{}", got.line);
    let body: serde_json::Value = serde_json::from_slice(&got.body).unwrap();
    assert_eq!(body["service"], "web");
    let header = |n: &str| {
        got.headers
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("no {n} header"))
    };
    let ts: i64 = header("x-slipway-timestamp").parse().unwrap();
    let nonce = header("x-slipway-nonce");
    let expected = slipway_core::deploy::sign(
        deploy_secret.as_bytes(),
        "POST",
        "/deploys",
        &got.body,
        ts,
        &nonce,
    );
    let sig = expected
        .iter()
        .find(|(k, _)| *k == slipway_core::deploy::HEADER_SIGNATURE)
        .unwrap();
    assert_eq!(
        header("x-slipway-signature"),
        sig.1,
        "the signature verifies"
    );

    // Reported in the build's notification: delivered, on the first attempt.
    let t = std::time::Instant::now();
    let deployed = loop {
        if let Some(e) = server
            .events()
            .into_iter()
            .find(|e| e["deploys"].as_array().is_some_and(|d| !d.is_empty()))
        {
            break e;
        }
        assert!(t.elapsed() < Duration::from_secs(30), "{}", server.log());
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(deployed["deploys"][0]["target"], "local");
    assert_eq!(deployed["deploys"][0]["outcome"], "delivered", "{deployed}");
    assert!(!server.log().contains(deploy_secret));
}
