//! `slipway deliver`: asks a deploy agent to redeploy a service, signed with the secret from an
//! environment variable (never an argument: argv is visible to every user of the machine), and
//! with `--wait` follows the deploy to its end.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use slipway_core::deploy::{self, Action, DeployState};

use crate::Error;

/// One delivery.
pub struct Args {
    /// The agent's base URL, for example `https://deploy.example.com` (or with the path prefix
    /// the reverse proxy strips, such as `https://example.com/agent`).
    pub url: String,
    /// The compose service: `name`, or `project/name` when several projects have it.
    pub service: String,
    pub action: Action,
    /// Follow the deploy; the result says whether it succeeded (or the image was unchanged).
    pub wait: bool,
    /// With `wait`: give up after this many seconds.
    pub timeout: u64,
    /// The environment variable holding the secret.
    pub secret_env: String,
}

struct Client {
    http: reqwest::Client,
    base: reqwest::Url,
    secret: Vec<u8>,
}

impl Client {
    /// Sends one signed request; returns the status and the JSON body.
    async fn send(
        &self,
        method: reqwest::Method,
        route: &str,
        body: Vec<u8>,
    ) -> Result<(u16, Value), Error> {
        let mut url = self.base.clone();
        let path = format!("{}{route}", self.base.path().trim_end_matches('/'));
        url.set_path(&path);
        let timestamp = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs() as i64;
        let nonce = uuid::Uuid::new_v4().simple().to_string();
        let mut req = self.http.request(method.clone(), url);
        for (name, value) in deploy::sign(
            &self.secret,
            method.as_str(),
            &path,
            &body,
            timestamp,
            &nonce,
        ) {
            req = req.header(name, value);
        }
        if !body.is_empty() {
            req = req.header("content-type", "application/json").body(body);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| format!("cannot reach the agent: {e}"))?;
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        let value = serde_json::from_str(&text).unwrap_or_else(|_| json!({ "raw": text }));
        Ok((status, value))
    }
}

fn refusal(status: u16, body: &Value) -> Error {
    format!(
        "the agent refused ({status} {}): {}",
        body["error"].as_str().unwrap_or("unknown"),
        body["message"].as_str().unwrap_or("no message")
    )
    .into()
}

/// Asks the agent; `Ok(false)` when the followed deploy did not succeed or did not end in time.
pub async fn run(args: Args) -> Result<bool, Error> {
    slipway_core::names::check_service(&args.service).map_err(|e| format!("--service: {e}"))?;
    let secret = std::env::var(&args.secret_env).map_err(|_| {
        format!(
            "set the deploy secret in the environment variable {}",
            args.secret_env
        )
    })?;
    let base = reqwest::Url::parse(&args.url).map_err(|e| format!("--url: {e}"))?;
    if !matches!(base.scheme(), "http" | "https") || base.query().is_some() {
        return Err("--url must be an http(s) URL without a query".into());
    }
    let client = Client {
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none())
            .build()?,
        base,
        secret: secret.trim().as_bytes().to_vec(),
    };
    let body = serde_json::to_vec(&json!({ "service": args.service, "action": args.action }))?;
    let (status, answer) = client.send(reqwest::Method::POST, "/deploys", body).await?;
    if status != 202 {
        return Err(refusal(status, &answer));
    }
    let id = answer["deploy_id"]
        .as_str()
        .ok_or("the agent answered without a deploy id")?
        .to_string();
    eprintln!(
        "slipway deliver: deploy {id} of {} ({}) {}",
        args.service,
        args.action.as_str(),
        answer["status"].as_str().unwrap_or("accepted")
    );
    if !args.wait {
        println!("{answer}");
        return Ok(true);
    }
    let deadline = Instant::now() + Duration::from_secs(args.timeout);
    let mut shown = 0;
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let (status, record) = client
            .send(reqwest::Method::GET, &format!("/deploys/{id}"), Vec::new())
            .await?;
        if status != 200 {
            return Err(refusal(status, &record));
        }
        if let Some(log) = record["log"].as_array() {
            for line in log.iter().skip(shown) {
                eprintln!("  {}", line.as_str().unwrap_or_default());
            }
            shown = log.len();
        }
        let state: DeployState = serde_json::from_value(record["state"].clone())
            .map_err(|e| format!("the agent answered an unknown state: {e}"))?;
        if state.is_terminal() {
            println!("{record}");
            return Ok(if state.is_success() {
                true
            } else {
                eprintln!(
                    "slipway deliver: deploy {id} ended {}: {}",
                    record["state"].as_str().unwrap_or("?"),
                    record["message"].as_str().unwrap_or("")
                );
                false
            });
        }
        if Instant::now() >= deadline {
            eprintln!(
                "slipway deliver: deploy {id} still running after {}s",
                args.timeout
            );
            return Ok(false);
        }
    }
}
