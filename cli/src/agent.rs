//! `tether agent`: a sample agent runtime. It performs tool calls through
//! [`Tether::check`] in a loop and prints each verdict, and a status line
//! whenever its connection to the gateway changes. The decisions are the
//! library's; this command only shows them.

use std::path::PathBuf;
use std::time::Duration;

use tether_tokio::client::{
    Action, AgentIdentity, AgentSigningKey, ClientStatus, Decision, FileOperation, LlmCall,
    NetworkCall, ProcessExec, RegistrationPhase, RegistrationSettings, StreamStatus, Tether,
    TetherConfig, TetherError, ToolCall, ToolResult, Verdict, VerdictSource,
};

use crate::common::{self, CliError};

/// Arguments of `tether agent`.
#[derive(Debug, clap::Args)]
pub(crate) struct AgentArgs {
    /// Gateway URL (`https://` for TLS).
    #[arg(long, value_name = "URL", default_value = common::DEFAULT_GATEWAY)]
    gateway: String,

    /// Organisation of the agent.
    #[arg(long, value_name = "ORG", default_value = "acme")]
    org: String,

    /// Team (tenant) of the agent.
    #[arg(long, value_name = "TEAM", default_value = "support")]
    team: String,

    /// Agent id.
    #[arg(long, value_name = "AGENT", default_value = "agent-7")]
    agent: String,

    /// Credential token (sent as `x-aa-credential-token`); needed when the
    /// gateway was started with a token file.
    #[arg(long, value_name = "TOKEN")]
    token: Option<String>,

    /// Register the agent at the gateway's `AgentLifecycleService` with the
    /// Ed25519 key in FILE (created, owner-only, when missing): its did:key
    /// becomes the agent id (`--agent` is ignored) and the token the
    /// registration is issued replaces `--token`. Keep the file to stay the
    /// same agent across restarts.
    #[arg(long, value_name = "FILE", conflicts_with = "ephemeral_key")]
    key: Option<PathBuf>,

    /// Register with a fresh key made for this process, and another fresh
    /// key whenever the gateway forgets the agent's token or refuses its
    /// key as already registered (an ephemeral agent: a new agent id each
    /// registration).
    #[arg(long)]
    ephemeral_key: bool,

    /// Invalidation subscriber id (default: stable for this runtime,
    /// `{org}/{team}/{agent}/{runtime name}`, so a restarted process takes
    /// its old subscription over instead of leaking one at the gateway).
    #[arg(long, value_name = "ID")]
    assembly_id: Option<String>,

    /// This runtime's name, part of the default `--assembly-id`. Give each
    /// runtime of one agent its own.
    #[arg(long, value_name = "NAME", default_value = "default")]
    runtime_name: String,

    /// Arguments of every tool call, as a JSON object (rules on `args.*`
    /// see them).
    #[arg(long, value_name = "JSON")]
    args: Option<String>,

    /// Kind of action to check: `tool-call` (default), `llm-call`,
    /// `file-operation`, `network-call`, `process-exec` or `tool-result`.
    /// Each `--tools` item names its subject: a tool, a model, `OP:PATH`
    /// (`read:/etc/hosts`), `HOST:PORT` or `PROTO://HOST:PORT`, a command
    /// line, or the tool whose result `--args` holds.
    #[arg(long, value_name = "KIND", default_value = "tool-call")]
    action: ActionKind,

    /// Tool names to call, in turn, comma-separated.
    #[arg(
        long,
        value_name = "A,B,C",
        value_delimiter = ',',
        default_value = "read_file"
    )]
    tools: Vec<String>,

    /// Pause between two tool calls, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 1000)]
    interval_ms: u64,

    /// Number of tool calls to make; 0 runs until Ctrl-C.
    #[arg(long, value_name = "N", default_value_t = 0)]
    count: u64,

    /// How long a check waits for a reviewer before falling back to deny,
    /// in milliseconds (default: the library's).
    #[arg(long, value_name = "MS")]
    approval_deadline_ms: Option<u64>,

    /// PEM CA certificate to trust for an `https://` gateway (default: the
    /// system's web roots).
    #[arg(long, value_name = "FILE")]
    ca_cert: Option<PathBuf>,
}

/// Run the agent until `--count` calls are made or Ctrl-C.
pub(crate) async fn run(args: AgentArgs, json: bool) -> Result<(), CliError> {
    if args.tools.iter().all(|t| t.trim().is_empty()) {
        return Err(CliError::Input("--tools names no tool".into()));
    }
    for subject in args
        .tools
        .iter()
        .map(|t| t.trim())
        .filter(|t| !t.is_empty())
    {
        action_for(args.action, subject, args.args.as_deref()).map_err(CliError::Input)?;
    }
    common::probe(&args.gateway).await?;

    let key = match (&args.key, args.ephemeral_key) {
        (Some(path), _) => Some(
            AgentSigningKey::load_or_create(path).map_err(|e| CliError::Input(e.to_string()))?,
        ),
        (None, true) => {
            Some(AgentSigningKey::generate().map_err(|e| CliError::Other(e.to_string()))?)
        }
        (None, false) => None,
    };
    let agent = key
        .as_ref()
        .map(AgentSigningKey::did)
        .unwrap_or_else(|| args.agent.clone());
    let identity = AgentIdentity::new(&args.org, &args.team, &agent);
    if let Some(a) = &args.args {
        serde_json::from_str::<serde_json::Value>(a)
            .map_err(|e| CliError::Input(format!("--args is not JSON: {e}")))?;
    }
    let assembly_id = args
        .assembly_id
        .clone()
        .unwrap_or_else(|| identity.assembly_id(&args.runtime_name));
    let mut config = TetherConfig::new(&args.gateway, identity, assembly_id);
    if let Some(token) = &args.token {
        config = config.with_token(token.clone());
    }
    if let Some(key) = key {
        let tools: Vec<String> = args.tools.iter().map(|t| t.trim().to_owned()).collect();
        let mut settings = RegistrationSettings::new(key)
            .with_name(format!("tether-agent-{}", args.runtime_name))
            .with_tools(tools);
        if args.ephemeral_key {
            settings = settings.with_fresh_key_per_registration();
        }
        config = config.with_registration(settings);
    }
    if let Some(ms) = args.approval_deadline_ms {
        config = config.with_approval_deadline(Duration::from_millis(ms), Decision::Deny);
    }
    if let Some(path) = &args.ca_cert {
        let pem = std::fs::read(path)
            .map_err(|e| CliError::Input(format!("cannot read {}: {e}", path.display())))?;
        config.tls.ca_pem = Some(pem);
    }
    let tether = Tether::connect(config).map_err(|e| CliError::Input(e.to_string()))?;

    if json {
        println!(
            "{}",
            serde_json::json!({
                "type": "start",
                "gateway": args.gateway,
                "agent": format!("{}/{}/{}", args.org, args.team, agent),
            })
        );
    } else {
        println!(
            "agent {}/{}/{} -> {}",
            args.org, args.team, agent, args.gateway
        );
    }
    let watcher = tokio::spawn(show_status(tether.watch_status(), json));
    // Give the streams a moment to come up, so the first calls see a live
    // connection; not connecting is not an error (they keep retrying, and
    // the first check reports a refused credential).
    let mut rx = tether.watch_status();
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        let _ = rx
            .wait_for(|s| {
                let registered = match &s.registration {
                    None => true,
                    Some(r) => !matches!(
                        r.phase,
                        RegistrationPhase::Starting | RegistrationPhase::Registering { .. }
                    ),
                };
                (registered && s.invalidation.connected && s.op_control.connected)
                    || s.invalidation.last_error.is_some()
                    || s.op_control.last_error.is_some()
            })
            .await;
    })
    .await;

    let result = tokio::select! {
        r = call_loop(&tether, &args, json) => r,
        r = tokio::signal::ctrl_c() => {
            r.map_err(|e| CliError::Other(format!("cannot wait for Ctrl-C: {e}")))
        }
    };
    watcher.abort();
    tether.shutdown(Duration::from_secs(2)).await;
    result
}

/// Make the tool calls; the first call's failure ends the command.
async fn call_loop(tether: &Tether, args: &AgentArgs, json: bool) -> Result<(), CliError> {
    let tools: Vec<&str> = args
        .tools
        .iter()
        .map(|t| t.trim())
        .filter(|t| !t.is_empty())
        .collect();
    let mut n: u64 = 0;
    loop {
        let trace = n / tools.len() as u64 + 1;
        let span = n % tools.len() as u64 + 1;
        let tool = tools[(n % tools.len() as u64) as usize];
        let op = format!("trace-{trace}:span-{span}");
        let action = match action_for(args.action, tool, args.args.as_deref()) {
            Ok(a) => a,
            Err(e) => return Err(CliError::Input(e)),
        };
        match tether.check_action(&op, &action).await {
            Ok(v) => print_verdict(&op, tool, &v, json),
            Err(e) if n == 0 => return Err(first_error(&args.gateway, e)),
            Err(e) => print_error(&op, tool, &e, json),
        }
        n += 1;
        if args.count != 0 && n >= args.count {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(args.interval_ms)).await;
    }
}

/// The kinds of action `--action` names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ActionKind {
    /// A tool call (`--args` are its arguments).
    ToolCall,
    /// A model call; the subject is the model.
    LlmCall,
    /// A file operation; the subject is `OP:PATH`.
    FileOperation,
    /// A network call; the subject is `HOST:PORT` or `PROTO://HOST:PORT`.
    NetworkCall,
    /// A process start; the subject is the command line.
    ProcessExec,
    /// A tool's result; the subject is the tool, `--args` the result.
    ToolResult,
}

/// The action of kind `kind` about `subject`, or why the subject does not
/// name one.
fn action_for(kind: ActionKind, subject: &str, args: Option<&str>) -> Result<Action, String> {
    let json = args.unwrap_or("{}").as_bytes().to_vec();
    Ok(match kind {
        ActionKind::ToolCall => Action::ToolCall(match args {
            Some(a) => ToolCall::new(subject).with_args(a.as_bytes().to_vec()),
            None => ToolCall::new(subject),
        }),
        ActionKind::LlmCall => Action::LlmCall(LlmCall::new(subject)),
        ActionKind::FileOperation => {
            let (op, path) = subject
                .split_once(':')
                .filter(|(op, path)| !op.is_empty() && !path.is_empty())
                .ok_or_else(|| {
                    format!("{subject:?} is not OP:PATH (for example read:/etc/hosts)")
                })?;
            Action::FileOperation(FileOperation::new(op, path))
        }
        ActionKind::NetworkCall => {
            let (protocol, rest) = match subject.split_once("://") {
                Some((p, r)) => (p, r),
                None => ("", subject),
            };
            let (host, port) = rest
                .rsplit_once(':')
                .and_then(|(h, p)| Some((h, p.parse::<u16>().ok()?)))
                .filter(|(h, _)| !h.is_empty())
                .ok_or_else(|| format!("{subject:?} is not HOST:PORT or PROTO://HOST:PORT"))?;
            Action::NetworkCall(NetworkCall::new(host, i32::from(port), protocol))
        }
        ActionKind::ProcessExec => {
            let mut words = subject.split_whitespace();
            let command = words
                .next()
                .ok_or_else(|| "an empty command line".to_owned())?;
            Action::ProcessExec(ProcessExec::new(command, words.map(str::to_owned)))
        }
        ActionKind::ToolResult => Action::ToolResult(ToolResult::new(subject, json)),
    })
}

/// The first check's failure, as one line.
fn first_error(url: &str, e: TetherError) -> CliError {
    match &e {
        TetherError::Gateway(s) if s.code() == tonic::Code::Unavailable => {
            common::unreachable(url, s.message())
        }
        TetherError::Gateway(s) => common::refused("the first check", s),
        _ => CliError::Other(format!("first check failed: {e}")),
    }
}

fn source_text(source: &VerdictSource) -> (&'static str, Option<&str>) {
    match source {
        VerdictSource::Terminated => ("terminated", None),
        VerdictSource::OutagePolicy => ("outage-policy", None),
        VerdictSource::Cache => ("cache", None),
        VerdictSource::Gateway => ("gateway", None),
        VerdictSource::Reviewer { approval_id } => ("reviewer", Some(approval_id)),
        VerdictSource::ApprovalDeadline { approval_id } => ("deadline", Some(approval_id)),
        _ => ("other", None),
    }
}

fn print_verdict(op: &str, tool: &str, v: &Verdict, json: bool) {
    let (time, ms) = common::now();
    let decision = match v.decision {
        Decision::Allow => "allow",
        Decision::Deny => "deny",
        Decision::Redact => "redact",
        _ => "other",
    };
    let (source, approval) = source_text(&v.source);
    let latency_us = v.latency.as_micros() as u64;
    if json {
        println!(
            "{}",
            serde_json::json!({
                "type": "verdict",
                "time_unix_ms": ms,
                "op": op,
                "tool": tool,
                "decision": decision,
                "source": source,
                "approval_id": approval,
                "reason": v.reason,
                "latency_us": latency_us,
            })
        );
    } else {
        let approval = approval.map(|a| format!(" ({a})")).unwrap_or_default();
        println!(
            "{time} verdict {op} {tool} {decision} {source}{approval} {:.3}ms {}",
            latency_us as f64 / 1000.0,
            v.reason
        );
    }
}

fn print_error(op: &str, tool: &str, e: &TetherError, json: bool) {
    let (time, ms) = common::now();
    if json {
        println!(
            "{}",
            serde_json::json!({
                "type": "error", "time_unix_ms": ms, "op": op, "tool": tool, "error": e.to_string(),
            })
        );
    } else {
        println!("{time} error   {op} {tool} {e}");
    }
}

/// The part of a status that deserves a line when it changes.
fn status_key(s: &ClientStatus) -> (bool, bool, u64, u64, Option<String>) {
    (
        s.invalidation.connected,
        s.op_control.connected,
        s.invalidation.reconnects,
        s.op_control.reconnects,
        s.registration.as_ref().map(registration_text),
    )
}

fn registration_text(r: &tether_tokio::client::RegistrationReport) -> String {
    let mut text = format!("{} (registrations {})", r.phase, r.registrations);
    if r.suspended {
        text.push_str(", suspended by the gateway");
    }
    text
}

/// Print a status line whenever the connection state changes.
async fn show_status(mut rx: tokio::sync::watch::Receiver<ClientStatus>, json: bool) {
    let mut last = None;
    loop {
        let status = rx.borrow_and_update().clone();
        let k = status_key(&status);
        if last.as_ref() != Some(&k) {
            last = Some(k);
            print_status(&status, json);
        }
        if rx.changed().await.is_err() {
            return;
        }
    }
}

fn stream_text(s: &StreamStatus) -> String {
    format!(
        "{} (last seq {}, reconnects {})",
        if s.connected {
            "connected"
        } else {
            "reconnecting"
        },
        s.last_seq,
        s.reconnects
    )
}

fn stream_json(s: &StreamStatus) -> serde_json::Value {
    serde_json::json!({
        "connected": s.connected,
        "last_seq": s.last_seq,
        "reconnects": s.reconnects,
        "events_applied": s.events_applied,
        "last_error": s.last_error,
    })
}

fn print_status(s: &ClientStatus, json: bool) {
    let (time, ms) = common::now();
    if json {
        println!(
            "{}",
            serde_json::json!({
                "type": "status",
                "time_unix_ms": ms,
                "invalidation": stream_json(&s.invalidation),
                "op_control": stream_json(&s.op_control),
                "registration": s.registration.as_ref().map(|r| serde_json::json!({
                    "agent_id": r.agent_id,
                    "phase": r.phase.to_string(),
                    "registrations": r.registrations,
                    "suspended": r.suspended,
                    "control_stream_open": r.control_stream_open,
                })),
            })
        );
    } else {
        let registration = s
            .registration
            .as_ref()
            .map(|r| format!("; registration {}", registration_text(r)))
            .unwrap_or_default();
        println!(
            "{time} status  invalidation {}; op-control {}{registration}",
            stream_text(&s.invalidation),
            stream_text(&s.op_control)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_kind_reads_its_subject() {
        let file = action_for(ActionKind::FileOperation, "read:/etc/hosts", None).unwrap();
        assert_eq!(
            file,
            Action::FileOperation(FileOperation::new("read", "/etc/hosts"))
        );
        let net = action_for(ActionKind::NetworkCall, "https://api.example.com:443", None).unwrap();
        assert_eq!(
            net,
            Action::NetworkCall(NetworkCall::new("api.example.com", 443, "https"))
        );
        let bare = action_for(ActionKind::NetworkCall, "10.0.0.1:22", None).unwrap();
        assert_eq!(
            bare,
            Action::NetworkCall(NetworkCall::new("10.0.0.1", 22, ""))
        );
        let exec = action_for(ActionKind::ProcessExec, "ls -la /tmp", None).unwrap();
        assert_eq!(
            exec,
            Action::ProcessExec(ProcessExec::new(
                "ls",
                ["-la".to_owned(), "/tmp".to_owned()]
            ))
        );
        let result = action_for(ActionKind::ToolResult, "search", Some(r#"{"hits":3}"#)).unwrap();
        assert_eq!(
            result,
            Action::ToolResult(ToolResult::new("search", br#"{"hits":3}"#.to_vec()))
        );
        let tool = action_for(ActionKind::ToolCall, "read_file", Some(r#"{"path":"/a"}"#)).unwrap();
        assert_eq!(
            tool,
            Action::ToolCall(ToolCall::new("read_file").with_args(br#"{"path":"/a"}"#.to_vec()))
        );
    }

    #[test]
    fn a_subject_that_names_no_action_is_refused_with_the_reason() {
        assert!(action_for(ActionKind::FileOperation, "/etc/hosts", None)
            .unwrap_err()
            .contains("OP:PATH"));
        assert!(action_for(ActionKind::NetworkCall, "example.com", None)
            .unwrap_err()
            .contains("HOST:PORT"));
        assert!(action_for(ActionKind::NetworkCall, "example.com:99999", None).is_err());
        assert!(action_for(ActionKind::ProcessExec, "   ", None).is_err());
    }
}
