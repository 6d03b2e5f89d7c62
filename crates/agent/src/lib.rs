//! `slipway agent --config FILE`: redeploys docker compose services on signed requests; and its
//! client, `slipway deliver` ([`deliver`]), beside it so that both ends of the protocol live in
//! one crate. See docs/agent.md for the API and the security model.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use slipway_core::deploy::{NonceCache, WINDOW_SECS};

mod config;
pub mod deliver;
mod engine;
mod runner;
mod server;

/// An error `deliver` ends with; its message says what to fix.
pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// Why the agent cannot start (or stopped serving). Codes are stable.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Config(String),
    #[error("cannot make the HTTP client for health URLs and callbacks: {0}")]
    HttpClient(String),
    #[error("cannot listen on {addr}: {reason}")]
    Listen { addr: SocketAddr, reason: String },
    #[error("the server stopped: {0}")]
    Server(String),
}

impl StartError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::Config(_) => "config_invalid",
            Self::HttpClient(_) => "http_client_unavailable",
            Self::Listen { .. } => "listen_failed",
            Self::Server(_) => "server_failed",
        }
    }
}

/// The agent's one HTTP client: no redirects (a redirect could lead a callback off its
/// allow-list, or a health probe elsewhere); each request sets its own timeout.
pub(crate) fn http_client() -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
}

/// A lock of the agent's shared state, recovered when a panic poisoned it: the agent is a
/// long-running process, and each critical section only writes a few fields, so a bug in one
/// request must not fail every later one.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Runs the agent with the configuration at `config` until SIGINT; `listen` overrides the
/// configuration's address (for example 127.0.0.1:0).
pub async fn run(config: &Path, listen: Option<SocketAddr>) -> Result<(), StartError> {
    let bad = |e: Error| StartError::Config(e.to_string());
    let config = config::Config::load(config).map_err(bad)?;
    let verifier = config.verifier().map_err(bad)?;
    let hooks = config.dockerhub_hooks().map_err(bad)?;
    let http = http_client().map_err(|e| StartError::HttpClient(e.to_string()))?;
    let listen = listen.unwrap_or(config.listen);
    let engine = Arc::new(engine::Engine {
        docker: config.docker.clone(),
        compose: config.compose.clone(),
    });
    let state = Arc::new(server::AgentState {
        nonces: Mutex::new(NonceCache::new(config.nonce_capacity, WINDOW_SECS)),
        config,
        verifier,
        hooks,
        engine,
        deploys: Default::default(),
        http,
    });
    let listening = |addr: SocketAddr| {
        move |e: std::io::Error| StartError::Listen {
            addr,
            reason: e.to_string(),
        }
    };
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(listening(listen))?;
    let addr = listener.local_addr().map_err(listening(listen))?;
    // The first line of stdout says where the agent listens (tests and scripts read it).
    println!("slipway agent: listening on http://{addr}");
    tracing::info!(%addr, "agent listening");
    if !addr.ip().is_loopback() {
        // Allowed (a container network, say), but the agent is meant to sit behind TLS.
        tracing::warn!(%addr, "agent listens beyond loopback: put a TLS reverse proxy in front");
    }
    axum::serve(listener, server::router(state))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .map_err(|e| StartError::Server(e.to_string()))
}
