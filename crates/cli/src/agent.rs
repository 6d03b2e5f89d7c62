//! `slipway agent` and `slipway deliver`: the flags; the product is `slipway_agent`.

use std::path::PathBuf;
use std::process::ExitCode;

use slipway_core::deploy::Action;

use crate::CliError;

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
    crate::init_logs();
    match slipway_agent::run(&args.config, args.listen).await {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) => Err(format!("{e} [{}]", e.code()).into()),
    }
}

#[derive(clap::Args)]
pub struct DeliverArgs {
    /// The agent's base URL, for example `https://deploy.example.com` (or with the path prefix
    /// the reverse proxy strips, such as `https://example.com/agent`).
    #[arg(long)]
    url: String,
    /// The compose service: `name`, or `project/name` when several projects have it.
    #[arg(long)]
    service: String,
    /// `pull` (pull, recreate if the image changed) or `build` (compose build, recreate).
    #[arg(long, default_value = "pull", value_parser = parse_action)]
    action: Action,
    /// Follow the deploy and exit non-zero unless it succeeded (or the image was unchanged).
    #[arg(long)]
    wait: bool,
    /// With --wait: give up after this many seconds.
    #[arg(long, default_value_t = 900)]
    timeout: u64,
    /// The environment variable holding the secret.
    #[arg(long, default_value = "SLIPWAY_DEPLOY_SECRET")]
    secret_env: String,
}

fn parse_action(s: &str) -> Result<Action, String> {
    s.parse::<Action>().map_err(|e| e.to_string())
}

pub async fn deliver(args: DeliverArgs) -> Result<ExitCode, CliError> {
    let ok = slipway_agent::deliver::run(slipway_agent::deliver::Args {
        url: args.url,
        service: args.service,
        action: args.action,
        wait: args.wait,
        timeout: args.timeout,
        secret_env: args.secret_env,
    })
    .await?;
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
