//! The agent's HTTP routes. Every refusal is `{"error": code, "message": ...}` with the status
//! of `slipway_core::deploy::AgentError`; nothing runs before a request passed every check.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use slipway_core::deploy::{self, Action, AgentError, NonceCache, SignedRequest, Verifier};

use super::config::{Config, DockerHubHook};
use super::engine::Engine;
use super::runner::{self, Settings, SharedDeploys, Submitted};

/// Requests are small JSON documents; Docker Hub's are a few KiB.
const MAX_BODY_BYTES: usize = 64 * 1024;

pub struct AgentState {
    pub config: Config,
    pub verifier: Verifier,
    pub hooks: Vec<DockerHubHook>,
    pub nonces: Mutex<NonceCache>,
    pub engine: Arc<Engine>,
    pub deploys: SharedDeploys,
    /// Health URLs and Docker Hub callbacks; built once at start-up ([`crate::http_client`]).
    pub http: reqwest::Client,
}

type Shared = Arc<AgentState>;

pub fn router(state: Shared) -> Router {
    Router::new()
        .route("/deploys", post(create_deploy))
        .route("/deploys/{id}", get(show_deploy))
        .route("/hooks/dockerhub/{token}", post(dockerhub))
        .route(
            "/healthz",
            get(|| async { axum::Json(json!({"status": "ok"})) }),
        )
        .fallback(|| async { refuse_plain(StatusCode::NOT_FOUND, "not_found", "no such route") })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::map_response(json_too_large))
        .with_state(state)
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn refuse(e: AgentError) -> Response {
    (e.status(), axum::Json(e.body())).into_response()
}

/// axum answers an over-long body in plain text; every refusal of the agent is JSON.
async fn json_too_large(response: Response) -> Response {
    let is_json = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if response.status() == StatusCode::PAYLOAD_TOO_LARGE && !is_json {
        return refuse_plain(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "the body is over the agent's limit of 64 KiB",
        );
    }
    response
}

fn refuse_plain(status: StatusCode, code: &str, message: &str) -> Response {
    answer(status, json!({ "error": code, "message": message }))
}

fn answer(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

impl AgentState {
    /// Verifies the signature; returns the index of the secret.
    fn authenticate(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<usize, AgentError> {
        let path = format!("{}{}", self.config.path_prefix, uri.path());
        let req = SignedRequest {
            method: method.as_str(),
            path: &path,
            headers,
            body,
        };
        let mut nonces = crate::lock(&self.nonces);
        match self.verifier.verify(&req, now(), &mut nonces) {
            Ok((index, scheme)) => {
                tracing::debug!(secret = %self.verifier.secret(index).name, ?scheme, "signature verified");
                Ok(index)
            }
            Err(e) => {
                tracing::warn!(path = %path, error = e.code(), "request refused");
                Err(e.into())
            }
        }
    }

    fn settings(&self, requested: &str, qualified: &str) -> Settings {
        let svc = self.config.service(requested, qualified);
        Settings {
            coalesce: self.config.coalesce,
            health_timeout: Duration::from_secs(
                svc.and_then(|s| s.health_timeout_secs)
                    .unwrap_or(self.config.health_timeout_secs),
            ),
            min_running: Duration::from_secs(self.config.min_running_secs),
            health_url: svc.and_then(|s| s.health_url.clone()),
            remove_old_images: self.config.remove_old_images,
        }
    }

    /// Resolves and submits one deploy; the answer's body on success.
    async fn start(&self, requested: &str, action: Action) -> Result<Value, AgentError> {
        let service = self.engine.resolve(requested).await.inspect_err(|e| {
            tracing::warn!(service = %requested, error = e.code(), "deploy refused");
        })?;
        let qualified = service.qualified();
        let settings = self.settings(requested, &qualified);
        match runner::submit(
            &self.deploys,
            &self.engine,
            requested,
            service,
            action,
            settings,
            &self.http,
        ) {
            Submitted::New(id) => Ok(json!({
                "status": "accepted",
                "deploy_id": id,
                "service": requested,
                "resolved": qualified,
                "action": action,
                "status_url": format!("{}/deploys/{id}", self.config.path_prefix),
            })),
            Submitted::Coalesced(id) => {
                tracing::info!(deploy_id = %id, service = %qualified, "request joined a queued deploy");
                Ok(json!({
                    "status": "coalesced",
                    "deploy_id": id,
                    "service": requested,
                    "resolved": qualified,
                    "action": action,
                    "status_url": format!("{}/deploys/{id}", self.config.path_prefix),
                }))
            }
            Submitted::Busy => {
                tracing::info!(service = %qualified, "deploy refused: one is running");
                Err(AgentError::DeployRunning(requested.to_string()))
            }
        }
    }
}

async fn create_deploy(
    State(state): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let result = async {
        let secret = state.authenticate(&method, &uri, &headers, &body)?;
        let request = deploy::parse_request(&body)?;
        let secret = state.verifier.secret(secret);
        if !secret.allows(&request.service) {
            tracing::warn!(secret = %secret.name, service = %request.service, "service not allowed for this secret");
            return Err(AgentError::ServiceNotAllowed(request.service));
        }
        state.start(&request.service, request.action).await
    }
    .await;
    match result {
        Ok(body) => answer(StatusCode::ACCEPTED, body),
        Err(e) => refuse(e),
    }
}

async fn show_deploy(
    State(state): State<Shared>,
    Path(id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let secret = match state.authenticate(&method, &uri, &headers, b"") {
        Ok(i) => state.verifier.secret(i),
        Err(e) => return refuse(e),
    };
    let record = state.deploys.get(&id);
    match record {
        // A deploy of a service the secret may not redeploy is not shown to it either.
        Some(r) if secret.allows(&r.service) => answer(StatusCode::OK, json!(r)),
        _ => refuse(AgentError::DeployUnknown),
    }
}

async fn dockerhub(
    State(state): State<Shared>,
    Path(token): Path<String>,
    body: Bytes,
) -> Response {
    let tokens: Vec<&str> = state.hooks.iter().map(|h| h.token.as_str()).collect();
    let Some(index) = deploy::match_token(&token, &tokens) else {
        tracing::warn!("Docker Hub webhook with an unknown token refused");
        return refuse(AgentError::HookUnknown);
    };
    let hook = &state.hooks[index];
    let result = async {
        let push = deploy::parse_dockerhub(&body)?;
        if let Some(repo) = &hook.repository
            && &push.repository.repo_name != repo
        {
            return Err(AgentError::RepositoryNotAllowed(push.repository.repo_name.clone()));
        }
        if let Some(cb) = &push.callback_url
            && !deploy::callback_allowed(cb, &hook.callback_allow)
        {
            tracing::warn!(hook = %hook.name, "Docker Hub callback host not on the allow-list: refused");
            return Err(AgentError::CallbackNotAllowed);
        }
        // Every service must resolve before any deploy starts.
        for s in &hook.services {
            state.engine.resolve(s).await?;
        }
        let mut started = Vec::new();
        for s in &hook.services {
            let answer = state.start(s, Action::Pull).await?;
            started.push(answer);
        }
        tracing::info!(hook = %hook.name, repository = %push.repository.repo_name, deploys = started.len(), "Docker Hub push accepted");
        Ok((push.callback_url, started))
    }
    .await;
    match result {
        Ok((callback, started)) => {
            let ids: Vec<String> = started
                .iter()
                .filter_map(|a| a["deploy_id"].as_str().map(String::from))
                .collect();
            if let Some(url) = callback {
                tokio::spawn(call_back(state.clone(), url, ids));
            }
            answer(
                StatusCode::ACCEPTED,
                json!({"status": "accepted", "deploys": started}),
            )
        }
        Err(e) => refuse(e),
    }
}

/// Waits for the deploys, then tells Docker Hub the result (its callback format).
async fn call_back(state: Shared, url: String, ids: Vec<String>) {
    let states = loop {
        let states = state.deploys.states(&ids);
        if states.iter().all(|s| s.is_terminal()) {
            break states;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let ok = states.iter().all(|s| s.is_success());
    let body = json!({
        "state": if ok { "success" } else { "failure" },
        "description": format!("slipway agent: {} deploy(s) {}", ids.len(), if ok { "succeeded" } else { "failed" }),
        "context": "slipway agent",
    });
    let sent = state
        .http
        .post(&url)
        .timeout(Duration::from_secs(10))
        .json(&body)
        .send()
        .await;
    match sent {
        Ok(r) => tracing::info!(status = %r.status(), ok, "Docker Hub callback sent"),
        Err(e) => tracing::warn!(error = %e, "Docker Hub callback failed"),
    }
}
