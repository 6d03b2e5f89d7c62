//! `slipway deliver` (not built yet: see the open issue).

use std::process::ExitCode;

use crate::CliError;

#[derive(clap::Args)]
pub struct Args {}

pub async fn run(_args: Args) -> Result<ExitCode, CliError> {
    Err("`slipway deliver` is not built yet".into())
}
