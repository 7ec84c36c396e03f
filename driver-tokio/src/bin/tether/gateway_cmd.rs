//! Placeholder until the `gateway_cmd` subcommand lands.

use crate::common::CliError;

/// Arguments of the subcommand.
#[derive(Debug, clap::Args)]
pub(crate) struct GatewayArgs {}

pub(crate) async fn run(_args: GatewayArgs, _json: bool) -> Result<(), CliError> {
    Err(CliError::Other("not built yet".into()))
}
