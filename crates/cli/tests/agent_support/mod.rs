//! Shared by the agent tests: start `slipway agent` on a free port, sign requests.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;

pub const SECRET: &str = "agent-test-secret-0123456789abcdef";

pub struct Agent {
    pub child: Child,
    pub url: String,
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the agent with `config` (written into `dir`) and the given environment.
pub fn start_agent(dir: &Path, config: &str, env: &[(&str, String)]) -> Agent {
    let path = dir.join("agent.toml");
    std::fs::write(&path, config).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_slipway"));
    cmd.args(["agent", "--config"])
        .arg(&path)
        .args(["--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(dir.join("agent.log")).unwrap());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("start slipway agent");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("slipway agent: listening on ")
        .unwrap_or_else(|| {
            panic!(
                "agent did not start: {line:?}; log: {}",
                std::fs::read_to_string(dir.join("agent.log")).unwrap_or_default()
            )
        })
        .to_string();
    Agent { child, url }
}

pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

pub fn nonce() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// A request, signed or not, ready to be sent (possibly twice).
#[derive(Clone)]
pub struct Raw {
    pub method: reqwest::Method,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

pub fn signed(method: &str, path: &str, body: &str, timestamp: i64) -> Raw {
    let headers = slipway_core::deploy::sign(
        SECRET.as_bytes(),
        method,
        path,
        body.as_bytes(),
        timestamp,
        &nonce(),
    );
    Raw {
        method: method.parse().unwrap(),
        path: path.to_string(),
        headers: headers
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
        body: body.as_bytes().to_vec(),
    }
}

pub async fn send(agent: &Agent, raw: &Raw) -> (u16, Value) {
    let client = reqwest::Client::new();
    let mut req = client.request(raw.method.clone(), format!("{}{}", agent.url, raw.path));
    for (k, v) in &raw.headers {
        req = req.header(k, v);
    }
    let resp = req
        .body(raw.body.clone())
        .send()
        .await
        .expect("agent reachable");
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.expect("JSON answer");
    (status, body)
}

/// Polls `GET /deploys/{id}` until the deploy ends; returns its record.
pub async fn wait_deploy(agent: &Agent, id: &str) -> Value {
    for _ in 0..120 {
        let (status, record) = send(
            agent,
            &signed("GET", &format!("/deploys/{id}"), "", unix_now()),
        )
        .await;
        assert_eq!(status, 200, "{record}");
        let state = record["state"].as_str().unwrap();
        if state != "queued" && state != "running" {
            return record;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    panic!("deploy {id} did not end");
}
