//! What every subcommand shares: the error type (one line for a person),
//! logging through `tracing-subscriber` with `RUST_LOG`, and the Prometheus
//! metrics endpoint.

use std::net::SocketAddr;
use std::process::ExitCode;

/// A failure, printed as one line.
// TEMP(cli branch): allow until gateway/agent/ctl use every variant.
#[allow(dead_code)]
#[derive(Debug, thiserror::Error)]
pub(crate) enum CliError {
    /// The gateway cannot be reached.
    #[error("cannot reach gateway at {addr}: {cause}")]
    Unreachable { addr: String, cause: String },
    /// The gateway refused or failed a request.
    #[error("gateway refused {what}: {cause}")]
    Refused { what: String, cause: String },
    /// A file could not be read or parsed.
    #[error("{0}")]
    Input(String),
    /// Some guarantees of the demo did not hold.
    #[error("{0} of the demo's guarantees did not hold")]
    DemoFailed(usize),
    /// Anything else.
    #[error("{0}")]
    Other(String),
}

/// Print `e` as one line on stderr and return the failure exit code.
pub(crate) fn fail(e: &CliError) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::from(1)
}

/// Logs to stderr, filtered by `RUST_LOG` (default: warnings only, so the
/// commands' own output stays readable).
pub(crate) fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Serve Prometheus metrics (every name in `tether_tokio::metrics_names`)
/// on `addr`.
pub(crate) fn serve_metrics(addr: SocketAddr) -> Result<(), CliError> {
    metrics_exporter_prometheus::PrometheusBuilder::new()
        .with_http_listener(addr)
        .install()
        .map_err(|e| CliError::Other(format!("cannot serve metrics on {addr}: {e}")))?;
    // Register every documented name so the endpoint lists them from the
    // start, before the first event.
    for name in tether_tokio::metrics_names::ALL {
        metrics::describe_counter!(*name, "see tether_tokio::metrics_names");
    }
    tether_tokio::metrics_names::register_all();
    Ok(())
}

/// Turn a connect failure into the one-line "cannot reach" error.
#[allow(dead_code)] // TEMP(cli branch)
pub(crate) fn unreachable(url: &str, e: impl std::fmt::Display) -> CliError {
    let addr = url
        .trim_start_matches("http://")
        .trim_start_matches("https://")
        .trim_end_matches('/')
        .to_owned();
    let mut cause = e.to_string();
    let lower = cause.to_lowercase();
    if lower.contains("connection refused") {
        cause = "connection refused".into();
    } else if lower.contains("timed out") || lower.contains("deadline") {
        cause = "timed out".into();
    }
    CliError::Unreachable { addr, cause }
}
