//! `slipway agent --config FILE`: redeploys docker compose services on signed requests; and its
//! client, `slipway deliver` ([`deliver`]), beside it so that both ends of the protocol live in
//! one crate. See docs/agent.md for the API and the security model.

use std::path::Path;
use std::sync::{Arc, Mutex};

use slipway_core::deploy::{NonceCache, WINDOW_SECS};

mod config;
pub mod deliver;
mod engine;
mod runner;
mod server;

/// An error the agent or `deliver` ends with; its message says what to fix.
pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// Runs the agent with the configuration at `config` until SIGINT; `listen` overrides the
/// configuration's address (for example 127.0.0.1:0).
pub async fn run(config: &Path, listen: Option<std::net::SocketAddr>) -> Result<(), Error> {
    let config = config::Config::load(config)?;
    let verifier = config.verifier()?;
    let hooks = config.dockerhub_hooks()?;
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
    });
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let addr = listener.local_addr()?;
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
        .await?;
    Ok(())
}
