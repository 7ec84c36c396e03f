//! `tether gateway`, `tether agent` and `tether ctl` run as processes on
//! 127.0.0.1 with ephemeral ports: their output, the metrics endpoint, and
//! the one-line errors. Every child is killed when its test ends, and every
//! wait is bounded.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(30);
const ADMIN: &str = "adm-secret";
const TOKEN: &str = "tok-agent-7";

/// A running child process, killed in `Drop`.
struct Running {
    child: std::process::Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Running {
    /// Wait (bounded) for a stdout line containing `needle`; return it.
    fn wait_for_line(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => panic!("no line with {needle:?}; saw {:#?}", self.seen),
            }
        }
    }

    /// Count (bounded) until `n` stdout lines contain `needle`.
    fn wait_for_lines(&mut self, needle: &str, n: usize) {
        let mut found = self.seen.iter().filter(|l| l.contains(needle)).count();
        while found < n {
            self.wait_for_line(needle);
            found += 1;
        }
    }
}

fn tether() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tether"));
    cmd.env_remove("RUST_LOG").stdin(Stdio::null());
    cmd
}

/// Spawn `tether ARGS` in the background, its stdout read line by line.
fn spawn(args: &[&str]) -> Running {
    let mut child = tether()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn tether");
    let out = child.stdout.take().expect("stdout");
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    Running {
        child,
        lines,
        seen: Vec::new(),
    }
}

/// What a finished command printed.
#[derive(Debug)]
struct Output {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Run `tether ARGS` to completion (bounded by [`TIMEOUT`]).
fn run(args: &[&str]) -> Output {
    let mut child = tether()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tether");
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let out_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("tether {args:?} did not finish within {TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        code: status.code(),
        stdout: out_reader.join().expect("stdout reader"),
        stderr: err_reader.join().expect("stderr reader"),
    }
}

/// Run and expect exit 0; the stdout.
fn ok(args: &[&str]) -> String {
    let out = run(args);
    assert_eq!(out.code, Some(0), "tether {args:?}: {out:#?}");
    out.stdout
}

/// Run and expect exit 1 with exactly one stderr line; that line.
fn fails(args: &[&str]) -> String {
    let out = run(args);
    assert_eq!(out.code, Some(1), "tether {args:?}: {out:#?}");
    let lines: Vec<&str> = out.stderr.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), 1, "one error line expected: {out:#?}");
    lines[0].to_owned()
}

/// A port that was free a moment ago.
fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// A temporary file holding `text`.
fn file(text: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().expect("temp file");
    f.write_all(text.as_bytes()).expect("write temp file");
    f
}

/// A gateway with a token file and an admin token, listening.
struct Gw {
    proc: Running,
    url: String,
    _tokens: tempfile::NamedTempFile,
}

fn gateway(extra: &[&str]) -> Gw {
    let tokens = file(&format!(
        "# test tokens\n{TOKEN} acme support agent-7\ntok-other acme sales agent-9\n"
    ));
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut args = vec![
        "gateway",
        "--listen",
        &listen,
        "--tokens",
        tokens.path().to_str().expect("utf-8 path"),
        "--admin-token",
        ADMIN,
    ];
    args.extend_from_slice(extra);
    let mut proc = spawn(&args);
    let line = proc.wait_for_line("listening");
    assert_eq!(line, format!("gateway listening on {listen} (http)"));
    Gw {
        proc,
        url: format!("http://{listen}"),
        _tokens: tokens,
    }
}

/// `GET /metrics` over a plain TcpStream; the body.
fn scrape(addr: &str) -> Option<String> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    Some(body)
}

/// Scrape until `pred` holds (bounded); the last body.
fn scrape_until(addr: &str, pred: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let body = scrape(addr).unwrap_or_default();
        if pred(&body) {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "metrics at {addr} never matched:\n{body}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `ctl --gateway URL --admin-token ADMIN ARGS`.
fn ctl<'a>(url: &'a str, args: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["ctl", "--gateway", url, "--admin-token", ADMIN];
    v.extend_from_slice(args);
    v
}

fn json_lines(stdout: &str) -> Vec<serde_json::Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

#[test]
fn gateway_ctl_and_agent_work_together() {
    let gw = gateway(&[]);
    let url = gw.url.as_str();

    // Operator calls need the admin token.
    let line = fails(&["ctl", "--gateway", url, "status"]);
    assert!(
        line.starts_with("error: gateway refused status: Unauthenticated"),
        "{line}"
    );

    // Three allowed calls, each printed as a verdict line.
    let out = ok(&[
        "agent",
        "--gateway",
        url,
        "--token",
        TOKEN,
        "--assembly-id",
        "cli-agent",
        "--count",
        "3",
        "--interval-ms",
        "20",
        "--tools",
        "read_file",
    ]);
    let verdicts: Vec<&str> = out.lines().filter(|l| l.contains(" verdict ")).collect();
    assert_eq!(verdicts.len(), 3, "{out}");
    for (i, v) in verdicts.iter().enumerate() {
        assert!(
            v.contains(&format!("trace-{}:span-1 read_file allow ", i + 1)),
            "{v}"
        );
    }
    assert!(verdicts[0].contains(" allow gateway "), "{}", verdicts[0]);
    assert!(
        out.lines()
            .any(|l| l.contains(" status ") && l.contains("connected")),
        "{out}"
    );

    // The same as JSON objects, one per line.
    let out = ok(&[
        "--json",
        "agent",
        "--gateway",
        url,
        "--token",
        TOKEN,
        "--assembly-id",
        "cli-agent-json",
        "--count",
        "2",
        "--interval-ms",
        "20",
        "--tools",
        "read_file,rm_rf",
    ]);
    let verdicts: Vec<_> = json_lines(&out)
        .into_iter()
        .filter(|v| v["type"] == "verdict")
        .collect();
    assert_eq!(verdicts.len(), 2, "{out}");
    assert_eq!(verdicts[0]["decision"], "allow");
    assert_eq!(verdicts[0]["op"], "trace-1:span-1");
    assert_eq!(verdicts[1]["tool"], "rm_rf");
    assert_eq!(verdicts[1]["decision"], "deny");
    assert_eq!(verdicts[1]["source"], "gateway");

    // A wrong token is refused by the gateway: one error line, the last
    // (the client's tracing warnings may precede it).
    let out = run(&["agent", "--gateway", url, "--token", "nope", "--count", "1"]);
    assert_eq!(out.code, Some(1), "{out:#?}");
    let errors: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.starts_with("error:"))
        .collect();
    assert_eq!(errors.len(), 1, "{out:#?}");
    assert_eq!(out.stderr.lines().last(), Some(errors[0]), "{out:#?}");
    assert!(
        errors[0].starts_with("error: gateway refused the first check: Unauthenticated"),
        "{out:#?}"
    );

    // Status: the subscribers with seq, acked, lag, connected.
    let out = ok(&ctl(url, &["status"]));
    assert!(out.starts_with(&format!("gateway {url} (tether ")), "{out}");
    assert!(
        out.contains("SEQ") && out.contains("ACKED") && out.contains("LAG"),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with("cli-agent ") && l.contains("support")),
        "{out}"
    );

    let out = ok(&ctl(
        url,
        &[
            "pause",
            "trace-1:span-1",
            "--org",
            "acme",
            "--team",
            "support",
            "--agent",
            "agent-7",
        ],
    ));
    assert!(out.starts_with("paused trace-1:span-1 (sequence "), "{out}");
    let out = ok(&ctl(
        url,
        &[
            "resume",
            "trace-1:span-1",
            "--org",
            "acme",
            "--team",
            "support",
            "--agent",
            "agent-7",
        ],
    ));
    assert!(
        out.starts_with("resumed trace-1:span-1 (sequence "),
        "{out}"
    );
    let out = ok(&ctl(
        url,
        &[
            "terminate",
            "trace-9:span-1",
            "--org",
            "acme",
            "--team",
            "support",
            "--agent",
            "agent-7",
        ],
    ));
    assert!(
        out.starts_with("terminated trace-9:span-1 (sequence "),
        "{out}"
    );
    let out = ok(&ctl(url, &["halt", "--agent", "acme/sales/agent-9"]));
    assert!(out.starts_with("halted agent:agent-9 (sequence "), "{out}");

    let out = ok(&ctl(url, &["invalidate", "--policy-version", "2"]));
    assert!(
        out.starts_with("invalidated policy version 2 for every agent: queued for "),
        "{out}"
    );
    let out = ok(&ctl(url, &["--json", "status"]));
    let status = &json_lines(&out)[0];
    assert_eq!(
        status["gateway"]["ops_tracked"].as_u64().map(|n| n >= 2),
        Some(true),
        "{out}"
    );
    let subs = status["subscribers"].as_array().expect("subscribers");
    let me = subs
        .iter()
        .find(|s| s["assembly_id"] == "cli-agent")
        .expect("cli-agent listed");
    assert_eq!(me["seq"], 1, "{out}");
    assert_eq!(me["connected"], false, "{out}");
    assert_eq!(me["lag"], 1, "{out}");

    // Approvals: none, then one the agent gave up on at its deadline, then
    // approved by the reviewer, then none.
    assert_eq!(ok(&ctl(url, &["pending"])).trim(), "no pending approvals");
    let out = ok(&[
        "--json",
        "agent",
        "--gateway",
        url,
        "--token",
        TOKEN,
        "--count",
        "1",
        "--tools",
        "deploy",
        "--approval-deadline-ms",
        "100",
    ]);
    let v = json_lines(&out)
        .into_iter()
        .find(|v| v["type"] == "verdict")
        .expect("a verdict");
    assert_eq!(v["source"], "deadline", "{out}");
    assert_eq!(v["decision"], "deny", "{out}");
    let id = v["approval_id"].as_str().expect("approval id").to_owned();
    let out = ok(&ctl(url, &["pending"]));
    assert!(
        out.lines()
            .any(|l| l.starts_with(&id) && l.contains("agent-7") && l.contains("deploy")),
        "{out}"
    );
    let out = ok(&ctl(
        url,
        &["approve", &id, "--by", "alice", "--reason", "ok"],
    ));
    assert_eq!(out.trim(), format!("approved {id} (by alice)"));
    assert_eq!(ok(&ctl(url, &["pending"])).trim(), "no pending approvals");
    let line = fails(&ctl(url, &["deny", "no-such-id"]));
    assert!(
        line.starts_with("error: gateway refused deny no-such-id"),
        "{line}"
    );

    drop(gw);
}

#[test]
fn metrics_endpoint_serves_the_documented_names() {
    let gw_metrics = format!("127.0.0.1:{}", free_port());
    let gw = gateway(&["--metrics-addr", &gw_metrics]);
    // The gateway process registers the counters and gauges at zero.
    let body = scrape_until(&gw_metrics, |b| b.contains("tether_events_applied_total"));
    for name in [
        "tether_events_applied_total",
        "tether_duplicates_total",
        "tether_gaps_total",
        "tether_gateway_restarts_total",
        "tether_unreplayable_gaps_total",
        "tether_reconnects_total",
        "tether_stream_connected",
        "tether_op_signals_total",
        "tether_auth_refreshes_total",
    ] {
        assert!(body.contains(name), "{name} missing:\n{body}");
    }

    // A running agent also records check latency and applied events, so
    // its endpoint serves every documented name.
    let agent_metrics = format!("127.0.0.1:{}", free_port());
    let mut agent = spawn(&[
        "--metrics-addr",
        &agent_metrics,
        "agent",
        "--gateway",
        &gw.url,
        "--token",
        TOKEN,
        "--assembly-id",
        "cli-metrics",
        "--interval-ms",
        "50",
    ]);
    agent.wait_for_lines(" verdict ", 2);
    ok(&[
        "ctl",
        "--gateway",
        &gw.url,
        "--admin-token",
        ADMIN,
        "invalidate",
        "--policy-version",
        "7",
    ]);
    let body = scrape_until(&agent_metrics, |b| {
        tether_tokio::metrics_names::CLIENT
            .iter()
            .all(|n| b.contains(n))
    });
    assert!(body.contains("tether_check_seconds"), "{body}");
    drop(agent);
}

#[test]
fn gateway_stops_gracefully_on_a_signal() {
    let mut gw = gateway(&[]);
    let pid = gw.proc.child.id().to_string();
    let killed = Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .expect("run kill");
    assert!(killed.success());
    let deadline = Instant::now() + TIMEOUT;
    let status = loop {
        if let Some(s) = gw.proc.child.try_wait().expect("wait") {
            break s;
        }
        assert!(Instant::now() < deadline, "gateway did not stop");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status}");
    gw.proc.wait_for_line("shutting");
}

#[test]
fn gateway_json_listening_line() {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut gw = spawn(&["--json", "gateway", "--listen", &listen]);
    let line = gw.wait_for_line("listening");
    let v: serde_json::Value = serde_json::from_str(&line).expect("JSON");
    assert_eq!(v["event"], "listening");
    assert_eq!(v["addr"], listen);
    assert_eq!(v["tokens_required"], false);
}

#[test]
fn bad_rule_and_token_files_name_file_and_line() {
    let rules = file("allow read_file\nfrobnicate x\n");
    let path = rules.path().to_str().expect("utf-8 path");
    let line = fails(&["gateway", "--listen", "127.0.0.1:0", "--rules", path]);
    assert!(
        line.starts_with(&format!("error: {path}: rule line 2: unknown rule")),
        "{line}"
    );
    let tokens = file("t1 acme support a1\nt2 acme\n");
    let path = tokens.path().to_str().expect("utf-8 path");
    let line = fails(&["gateway", "--listen", "127.0.0.1:0", "--tokens", path]);
    assert!(
        line.starts_with(&format!("error: {path}: token line 2:")),
        "{line}"
    );
    let line = fails(&["gateway", "--rules", "/nonexistent/rules.txt"]);
    assert!(
        line.starts_with("error: cannot read /nonexistent/rules.txt:"),
        "{line}"
    );
}

#[test]
fn a_bad_flag_exits_2_with_clap_message() {
    let out = run(&["--frobnicate"]);
    assert_eq!(out.code, Some(2), "{out:#?}");
    assert!(
        out.stderr
            .starts_with("error: unexpected argument '--frobnicate'"),
        "{out:#?}"
    );
    let out = run(&["agent", "--count", "many"]);
    assert_eq!(out.code, Some(2), "{out:#?}");
    assert!(out.stderr.contains("invalid value 'many'"), "{out:#?}");
    let out = run(&["ctl", "halt"]);
    assert_eq!(out.code, Some(2), "{out:#?}");
    assert!(out.stderr.contains("--agent"), "{out:#?}");
    // --help is not a failure.
    let out = run(&["gateway", "--help"]);
    assert_eq!(out.code, Some(0), "{out:#?}");
    assert!(out.stdout.contains("Built-in rules"), "{out:#?}");
}

#[test]
fn an_unreachable_gateway_is_one_line() {
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let want = format!("error: cannot reach gateway at 127.0.0.1:{port}: connection refused");
    for args in [
        vec!["agent", "--gateway", &url, "--count", "1"],
        vec!["ctl", "--gateway", &url, "status"],
        vec!["ctl", "--gateway", &url, "pending"],
    ] {
        let out = run(&args);
        assert_eq!(out.code, Some(1), "{args:?}: {out:#?}");
        assert_eq!(out.stderr, format!("{want}\n"), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}: {out:#?}");
    }
}

#[test]
fn a_restarted_agent_takes_its_subscription_over_and_sends_tool_arguments() {
    let gw = gateway(&[]);
    let url = gw.url.as_str();
    let agent = |extra: &[&str]| {
        let mut a = vec![
            "agent",
            "--gateway",
            url,
            "--token",
            TOKEN,
            "--count",
            "1",
            "--tools",
            "read_file",
            "--args",
            r#"{"path":"README.md"}"#,
        ];
        a.extend_from_slice(extra);
        let out = ok(&a);
        assert!(out.contains("trace-1:span-1 read_file allow"), "{out}");
    };
    // The same runtime, started three times: one subscriber at the gateway.
    agent(&[]);
    agent(&[]);
    agent(&[]);
    let status = |url: &str| -> serde_json::Value {
        let out = ok(&[
            "--json",
            "ctl",
            "--gateway",
            url,
            "--admin-token",
            ADMIN,
            "status",
        ]);
        json_lines(&out).remove(0)
    };
    let s = status(url);
    assert_eq!(s["gateway"]["invalidation_subscribers"], 1, "{s}");
    assert_eq!(
        s["subscribers"][0]["assembly_id"], "acme/support/agent-7/default",
        "{s}"
    );
    // Another runtime of the same agent is another subscriber.
    agent(&["--runtime-name", "worker-2"]);
    assert_eq!(status(url)["gateway"]["invalidation_subscribers"], 2);

    // Arguments that are not JSON are refused in one line, before any call.
    let line = fails(&[
        "agent",
        "--gateway",
        url,
        "--token",
        TOKEN,
        "--count",
        "1",
        "--args",
        "{not json",
    ]);
    assert!(line.starts_with("error: --args is not JSON"), "{line}");
}

/// `tether agent --key FILE` registers itself through the gateway's
/// lifecycle service (its did:key is its id, the issued token its
/// credential), keeps its key across runs, and checks other kinds of
/// action than tool calls.
#[test]
fn agent_registers_with_its_key_and_checks_other_action_kinds() {
    let gw = gateway(&[]);
    let url = gw.url.as_str();
    let dir = tempfile::tempdir().expect("temp dir");
    let key = dir.path().join("agent.key");
    let key_arg = key.to_str().expect("utf-8 path");

    let run_once = |action: &str, subject: &str| {
        ok(&[
            "--json",
            "agent",
            "--gateway",
            url,
            "--key",
            key_arg,
            "--count",
            "1",
            "--action",
            action,
            "--tools",
            subject,
        ])
    };
    let first = run_once("tool-call", "read_file");
    let lines = json_lines(&first);
    let start = &lines[0];
    let agent = start["agent"].as_str().expect("agent").to_owned();
    assert!(agent.starts_with("acme/support/did:key:z6Mk"), "{first}");
    let verdict = lines
        .iter()
        .find(|l| l["type"] == "verdict")
        .unwrap_or_else(|| panic!("no verdict: {first}"));
    assert_eq!(verdict["decision"], "allow", "{first}");
    assert_eq!(verdict["source"], "gateway", "{first}");
    assert!(
        lines
            .iter()
            .any(|l| l["type"] == "status" && l["registration"]["phase"] == "registered"),
        "{first}"
    );
    // The key file was created (owner-only) and is reused: the same id.
    assert!(key.exists());
    let second = run_once("file-operation", "read:/etc/hosts");
    let lines = json_lines(&second);
    assert_eq!(lines[0]["agent"], agent.as_str(), "{second}");
    let verdict = lines
        .iter()
        .find(|l| l["type"] == "verdict")
        .unwrap_or_else(|| panic!("no verdict: {second}"));
    assert_eq!(verdict["tool"], "read:/etc/hosts", "{second}");
    assert_eq!(verdict["source"], "gateway", "{second}");

    // A subject that names no action of its kind is refused up front.
    let line = fails(&[
        "agent",
        "--gateway",
        url,
        "--key",
        key_arg,
        "--action",
        "network-call",
        "--tools",
        "example.com",
    ]);
    assert!(line.contains("HOST:PORT"), "{line}");
}

/// `tether gateway --require-credentials --refuse-reregistration`: only
/// registered agents get in, and a second runtime of a registered key is
/// refused with a clear line (as Agent Assembly's gateway refuses it).
#[test]
fn a_gateway_that_refuses_reregistration_and_the_agent_that_says_so() {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut gw = spawn(&[
        "gateway",
        "--listen",
        &listen,
        "--require-credentials",
        "--refuse-reregistration",
        "--heartbeat-secs",
        "5",
    ]);
    gw.wait_for_line("listening");
    let url = format!("http://{listen}");
    let dir = tempfile::tempdir().expect("temp dir");
    let key = dir.path().join("agent.key");
    let key = key.to_str().expect("utf-8 path");

    // Without a registration there is no credential to present.
    let line = last_error(&["agent", "--gateway", &url, "--count", "1"]);
    assert!(line.contains("Unauthenticated"), "{line}");

    // The first runtime of the key registers and keeps running.
    let mut first = spawn(&[
        "agent",
        "--gateway",
        &url,
        "--key",
        key,
        "--count",
        "0",
        "--interval-ms",
        "50",
    ]);
    let verdict = first.wait_for_line(" verdict ");
    assert!(verdict.contains(" allow gateway "), "{verdict}");

    // A second runtime of the same key is refused, and says so.
    let line = last_error(&["agent", "--gateway", &url, "--key", key, "--count", "1"]);
    assert!(
        line.contains("not registered") && line.contains("already exists"),
        "{line}"
    );
}

/// Run a command that must fail; its one `error:` line, which must be the
/// last line of stderr (the client's tracing warnings may precede it).
fn last_error(args: &[&str]) -> String {
    let out = run(args);
    assert_eq!(out.code, Some(1), "{out:#?}");
    let errors: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.starts_with("error:"))
        .collect();
    assert_eq!(errors.len(), 1, "{out:#?}");
    assert_eq!(out.stderr.lines().last(), Some(errors[0]), "{out:#?}");
    errors[0].to_owned()
}
