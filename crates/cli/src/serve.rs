//! `slipway serve`: the flags; the product is `slipway_serve`.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::CliError;

#[derive(clap::Args)]
pub struct Args {
    /// The configuration file (TOML; `--print-config` shows every key). Default: built-in defaults.
    #[arg(long, env = "SLIPWAY_CONFIG")]
    config: Option<PathBuf>,
    /// Listen on this address instead of the configuration's.
    #[arg(long)]
    listen: Option<std::net::SocketAddr>,
    /// Keep the queue, history and logs here instead of the configuration's data directory.
    #[arg(long, env = "SLIPWAY_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Print an example configuration with every key at its default, and exit.
    #[arg(long)]
    print_config: bool,
}

pub async fn run(args: Args) -> Result<ExitCode, CliError> {
    if args.print_config {
        print!("{}", slipway_serve::EXAMPLE);
        return Ok(ExitCode::SUCCESS);
    }
    crate::init_logs();
    let opts = slipway_serve::Options {
        config: args.config,
        listen: args.listen,
        data_dir: args.data_dir,
    };
    match slipway_serve::run(opts).await {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) => Err(format!("{e} [{}]", e.code()).into()),
    }
}
