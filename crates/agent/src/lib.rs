//! `slipway agent --config FILE`: redeploys docker compose services on signed requests.
//! See docs/agent.md for the API and the security model.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use slipway_core::deploy::{NonceCache, WINDOW_SECS};

use crate::CliError;

mod config;
mod engine;
mod runner;
mod server;

#[derive(clap::Args)]
pub struct Args {
    /// The agent's TOML configuration (secrets, services, Docker Hub hooks).
    #[arg(long)]
    config: PathBuf,
    /// Listen here instead of the configuration's `listen` (for example 127.0.0.1:0).
    #[arg(long)]
    listen: Option<std::net::SocketAddr>,
}

pub async fn run(args: Args) -> Result<ExitCode, CliError> {
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .try_init();
    let config = config::Config::load(&args.config)?;
    let verifier = config.verifier()?;
    let hooks = config.dockerhub_hooks()?;
    let listen = args.listen.unwrap_or(config.listen);
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
    Ok(ExitCode::SUCCESS)
}
