//! Placeholder until the `agent` subcommand lands.

use crate::common::CliError;

/// Arguments of the subcommand.
#[derive(Debug, clap::Args)]
pub(crate) struct AgentArgs {}

pub(crate) async fn run(_args: AgentArgs, _json: bool) -> Result<(), CliError> {
    Err(CliError::Other("not built yet".into()))
}
