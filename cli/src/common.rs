//! What every subcommand shares: the error type (one line for a person),
//! logging through `tracing-subscriber` with `RUST_LOG`, and the Prometheus
//! metrics endpoint.

use std::net::SocketAddr;
use std::process::ExitCode;

/// A failure, printed as one line.
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

/// Logs to stderr, filtered by `RUST_LOG`. Without it: warnings only when
/// `warn_by_default` (so the commands' own output stays readable), nothing
/// otherwise. Colour only when stderr is a terminal.
pub(crate) fn init_tracing(warn_by_default: bool) {
    use std::io::IsTerminal;
    let filter = match tracing_subscriber::EnvFilter::try_from_default_env() {
        Ok(f) => f,
        Err(_) if warn_by_default => tracing_subscriber::EnvFilter::new("warn"),
        Err(_) => return,
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
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

/// `e` and every error in its source chain, joined with ": " (a transport
/// error's own message rarely names the cause; its sources do).
pub(crate) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

/// The default gateway URL of `agent` and `ctl`.
pub(crate) const DEFAULT_GATEWAY: &str = "http://127.0.0.1:50051";

/// How long `agent` and `ctl` try to open a connection before reporting the
/// gateway unreachable.
pub(crate) const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// A gRPC error as the one-line "gateway refused WHAT: CODE: MESSAGE".
pub(crate) fn refused(what: impl Into<String>, status: &tonic::Status) -> CliError {
    CliError::Refused {
        what: what.into(),
        cause: format!("{:?}: {}", status.code(), status.message()),
    }
}

/// Check that the host and port of `url` accept a TCP connection within
/// [`CONNECT_TIMEOUT`], so an unreachable gateway is reported at once and in
/// one line.
pub(crate) async fn probe(url: &str) -> Result<(), CliError> {
    let uri: tonic::codegen::http::Uri = url
        .parse()
        .map_err(|e| CliError::Input(format!("invalid gateway URL {url:?}: {e}")))?;
    let host = uri
        .host()
        .ok_or_else(|| CliError::Input(format!("gateway URL {url:?} has no host")))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = uri
        .port_u16()
        .unwrap_or(if uri.scheme_str() == Some("https") {
            443
        } else {
            80
        });
    match tokio::time::timeout(
        CONNECT_TIMEOUT,
        tokio::net::TcpStream::connect((host.as_str(), port)),
    )
    .await
    {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(unreachable(url, e)),
        Err(_) => Err(unreachable(url, "connect timed out")),
    }
}

/// Wall-clock time of day (UTC) as `HH:MM:SS.mmm`, and milliseconds since
/// the Unix epoch.
pub(crate) fn now() -> (String, u64) {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let day_ms = ms % 86_400_000;
    let text = format!(
        "{:02}:{:02}:{:02}.{:03}",
        day_ms / 3_600_000,
        day_ms / 60_000 % 60,
        day_ms / 1000 % 60,
        day_ms % 1000
    );
    (text, ms)
}
