//! Placeholder until the `ctl` subcommand lands.

use crate::common::CliError;

/// Arguments of the subcommand.
#[derive(Debug, clap::Args)]
pub(crate) struct CtlArgs {}

pub(crate) async fn run(_args: CtlArgs, _json: bool) -> Result<(), CliError> {
    Err(CliError::Other("not built yet".into()))
}
