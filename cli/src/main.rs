//! `tether`: the demo, the reference gateway, a sample agent runtime, and
//! operator commands.
//!
//! Every failure prints one line naming the cause and exits non-zero.

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod agent;
mod common;
mod ctl;
mod demo;
mod gateway_cmd;

use common::CliError;

/// tether governs AI agents at run time: it keeps the gateway's streams
/// alive and turns them into correct local decisions.
#[derive(Debug, Parser)]
#[command(name = "tether", version, about, long_about = None)]
struct Cli {
    /// Serve Prometheus metrics on this address (e.g. 127.0.0.1:9184).
    #[arg(long, global = true, value_name = "ADDR")]
    metrics_addr: Option<SocketAddr>,

    /// Machine-readable JSON output where it makes sense.
    #[arg(long, global = true)]
    json: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Play a scenario that shows every guarantee live, on an embedded
    /// gateway (nothing else to start). Exits non-zero if any did not hold.
    Demo(demo::DemoArgs),
    /// Serve the reference gateway.
    Gateway(gateway_cmd::GatewayArgs),
    /// Run a sample agent runtime against a gateway.
    Agent(agent::AgentArgs),
    /// Operator commands against a gateway.
    Ctl(ctl::CtlArgs),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version are not failures.
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    // The demo tells what happened in its own timeline: library logs stay
    // out of it unless RUST_LOG asks for them.
    common::init_tracing(!matches!(cli.command, Command::Demo(_)));
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return common::fail(&CliError::Other(format!("cannot start the runtime: {e}"))),
    };
    let result = runtime.block_on(async move {
        if let Some(addr) = cli.metrics_addr {
            common::serve_metrics(addr)?;
        }
        match cli.command {
            Command::Demo(a) => demo::run(a, cli.json).await,
            Command::Gateway(a) => gateway_cmd::run(a, cli.json).await,
            Command::Agent(a) => agent::run(a, cli.json).await,
            Command::Ctl(a) => ctl::run(a, cli.json).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => common::fail(&e),
    }
}
