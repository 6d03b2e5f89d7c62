//! `slipway`: the same core as the Lambdas, on one machine.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod agent;
mod build;
mod init;
mod plan;
mod replay;
mod serve;

/// An error a subcommand ends with; its message says what to fix.
pub type CliError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Parser)]
#[command(
    name = "slipway",
    version,
    about = "Builds the Docker images a git push changed."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the whole pipeline on this machine: webhook listener, queue, builds, notifications.
    Serve(serve::Args),
    /// Run buildspec.yml for one image on the local Docker engine, as CodeBuild would.
    Build(build::Args),
    /// Write a commented slipway.toml for a repository (coming from Docker Hub: hooks, autotests).
    Init(init::Args),
    /// Print what a push would build, as JSON.
    Plan(plan::Args),
    /// Send a GitHub-style signed push webhook.
    Replay(replay::Args),
    /// Redeploy docker compose services on signed requests.
    Agent(agent::Args),
    /// Ask a deploy agent to redeploy a service (for any CI pipeline).
    Deliver(agent::DeliverArgs),
}

/// Structured logs on standard error for the long-running commands (`serve`, `agent`):
/// `RUST_LOG` filters, `info` by default; colours only on a terminal.
fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .try_init();
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let (name, result) = match cli.command {
        Command::Serve(a) => ("serve", serve::run(a).await),
        Command::Build(a) => ("build", build::run(a).await),
        Command::Init(a) => ("init", init::run(a).await),
        Command::Plan(a) => ("plan", plan::run(a).await),
        Command::Replay(a) => ("replay", replay::run(a).await),
        Command::Agent(a) => ("agent", agent::run(a).await),
        Command::Deliver(a) => ("deliver", agent::deliver(a).await),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("slipway {name}: error: {e}");
            ExitCode::FAILURE
        }
    }
}
