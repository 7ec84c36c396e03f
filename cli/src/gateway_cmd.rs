//! `tether gateway`: serve the reference gateway until Ctrl-C.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use tether_gateway::auth::TokenTable;
use tether_gateway::ops::AgentKey;
use tether_gateway::rules::RuleTable;
use tether_gateway::{Gateway, Reregistration};

use crate::common::{self, CliError};

/// The built-in rule table, as a literal so `--help` can show it.
macro_rules! default_rules {
    () => {
        "allow   read_file\n\
         allow   search\n\
         approve deploy 30\n\
         hold    wire_money 60\n\
         deny    rm_*\n\
         default deny\n"
    };
}

/// The rule table used without `--rules`.
const DEFAULT_RULES: &str = default_rules!();

/// Arguments of `tether gateway`.
#[derive(Debug, clap::Args)]
#[command(after_help = concat!(
    "Rule file format: one rule per line, `#` starts a comment:\n",
    "  allow|deny PATTERN       (a trailing * matches any suffix)\n",
    "  approve PATTERN [SECS]   answer PENDING; a reviewer has SECS to decide\n",
    "  hold PATTERN [SECS]      hold CheckAction open until decided\n",
    "  default allow|deny\n\n",
    "Built-in rules (without --rules):\n",
    default_rules!(),
    "\n",
    "Token file format: `token org team agent` per line, `#` comments."
))]
pub(crate) struct GatewayArgs {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:50051")]
    listen: SocketAddr,

    /// CheckAction rule file (format below); default: the built-in table.
    #[arg(long, value_name = "FILE")]
    rules: Option<PathBuf>,

    /// Agent token file, `token org team agent` per line; without it
    /// credentials are not required.
    #[arg(long, value_name = "FILE")]
    tokens: Option<PathBuf>,

    /// Require this token (header `x-tether-admin-token`) on operator calls.
    #[arg(long, value_name = "TOKEN")]
    admin_token: Option<String>,

    /// Serve TLS with this PEM certificate chain (needs --tls-key).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,

    /// The PEM private key of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,

    /// Require a credential on every agent call even without --tokens: the
    /// only tokens are then those agents obtain by registering through
    /// `AgentLifecycleService`.
    #[arg(long)]
    require_credentials: bool,

    /// Answer `ALREADY_EXISTS` to a registration of a key that is already
    /// registered (as Agent Assembly's gateway does) instead of issuing a
    /// new token and revoking the old one.
    #[arg(long)]
    refuse_reregistration: bool,

    /// The heartbeat interval registered agents are told to keep, in
    /// seconds (default: the gateway's, 30).
    #[arg(long, value_name = "SECS")]
    heartbeat_secs: Option<u64>,

    /// Most agents registered at once (default: the gateway's).
    #[arg(long, value_name = "N")]
    max_agents: Option<usize>,
}

fn read(path: &Path) -> Result<Vec<u8>, CliError> {
    std::fs::read(path).map_err(|e| CliError::Input(format!("cannot read {}: {e}", path.display())))
}

fn read_text(path: &Path) -> Result<String, CliError> {
    String::from_utf8(read(path)?)
        .map_err(|_| CliError::Input(format!("{}: not UTF-8 text", path.display())))
}

/// Serve until Ctrl-C, then shut down gracefully.
pub(crate) async fn run(args: GatewayArgs, json: bool) -> Result<(), CliError> {
    let rules = match &args.rules {
        Some(path) => RuleTable::parse(&read_text(path)?)
            .map_err(|e| CliError::Input(format!("{}: {e}", path.display())))?,
        None => RuleTable::parse(DEFAULT_RULES)
            .map_err(|e| CliError::Other(format!("built-in rules: {e}")))?,
    };
    let tokens = match &args.tokens {
        Some(path) => TokenTable::required(
            TokenTable::parse(&read_text(path)?)
                .map_err(|e| CliError::Input(format!("{}: {e}", path.display())))?,
        ),
        None if args.require_credentials => {
            TokenTable::required(std::iter::empty::<(String, AgentKey)>())
        }
        None => TokenTable::open(),
    };
    let mut builder = Gateway::builder().rules(rules).tokens(tokens);
    if args.refuse_reregistration {
        builder = builder.reregistration(Reregistration::Refuse);
    }
    if let Some(secs) = args.heartbeat_secs {
        if secs == 0 {
            return Err(CliError::Input(
                "--heartbeat-secs must be at least 1".into(),
            ));
        }
        builder = builder.heartbeat_interval(std::time::Duration::from_secs(secs));
    }
    if let Some(n) = args.max_agents {
        builder = builder.max_agents(n);
    }
    if let Some(token) = &args.admin_token {
        builder = builder.admin_token(token.clone());
    }
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => {
            builder = builder.tls(read(cert)?, read(key)?);
            true
        }
        _ => false,
    };

    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| CliError::Other(format!("cannot listen on {}: {e}", args.listen)))?;
    let gateway = builder.serve(listener).await.map_err(|e| {
        CliError::Other(format!(
            "cannot start the gateway: {}",
            common::error_chain(&e)
        ))
    })?;
    let stop = Stop::new()?;
    let addr = gateway.local_addr();
    let scheme = if tls { "https" } else { "http" };
    if json {
        println!(
            "{}",
            serde_json::json!({
                "event": "listening",
                "addr": addr.to_string(),
                "url": format!("{scheme}://{addr}"),
                "tls": tls,
                "tokens_required": args.tokens.is_some(),
                "admin_token": args.admin_token.is_some(),
            })
        );
    } else {
        println!("gateway listening on {addr} ({scheme})");
    }
    tracing::info!(%addr, tls, "gateway serving; Ctrl-C to stop");

    stop.wait().await?;
    if json {
        println!("{}", serde_json::json!({"event": "shutting_down"}));
    } else {
        println!("gateway shutting down");
    }
    gateway
        .shutdown()
        .await
        .map_err(|e| CliError::Other(format!("gateway shutdown: {e}")))
}

/// Ctrl-C (SIGINT), or SIGTERM on Unix; registered when created, so a
/// signal that arrives before [`Stop::wait`] is polled is not lost.
struct Stop {
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
}

fn signal_error(e: std::io::Error) -> CliError {
    CliError::Other(format!("cannot wait for Ctrl-C: {e}"))
}

impl Stop {
    fn new() -> Result<Self, CliError> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Ok(Stop {
                int: signal(SignalKind::interrupt()).map_err(signal_error)?,
                term: signal(SignalKind::terminate()).map_err(signal_error)?,
            })
        }
        #[cfg(not(unix))]
        {
            Ok(Stop {})
        }
    }

    async fn wait(mut self) -> Result<(), CliError> {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.int.recv() => Ok(()),
                _ = self.term.recv() => Ok(()),
            }
        }
        #[cfg(not(unix))]
        {
            tokio::signal::ctrl_c().await.map_err(signal_error)
        }
    }
}
