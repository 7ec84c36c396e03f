//! `tether agent`, the command a user runs, against Agent Assembly's real
//! gateway: it registers itself (a did:key from its own key) and reports
//! every verdict with its true source. Runs the workspace's `tether`
//! binary (`TETHER_BIN`, set by `.ci/interop`; otherwise
//! `target/debug/tether` of the workspace).

use std::path::PathBuf;
use std::process::Command;

use tether_interop::aa_gateway_proc::AaGateway;

const EXE: &str = env!("CARGO_BIN_EXE_aa-gateway-serve");

const POLICY: &str = r#"
version: "1"
tools:
  read_file:
    allow: true
  rm_rf:
    allow: false
"#;

fn tether_bin() -> PathBuf {
    let path = std::env::var_os("TETHER_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/debug/tether")
        });
    assert!(
        path.exists(),
        "no tether binary at {}: run `cargo build -p tether-cli` in the workspace (or set TETHER_BIN)",
        path.display()
    );
    path
}

/// Run `tether --json agent ...` against `gw`; its JSON lines.
fn agent(gw: &AaGateway, extra: &[&str]) -> Vec<serde_json::Value> {
    let url = gw.url();
    let mut args = vec![
        "--json",
        "agent",
        "--gateway",
        &url,
        "--org",
        "acme",
        "--team",
        "team-a",
        "--count",
        "2",
        "--interval-ms",
        "10",
        "--tools",
        "read_file,rm_rf",
    ];
    args.extend_from_slice(extra);
    let out = Command::new(tether_bin())
        .args(&args)
        .output()
        .expect("run tether");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "tether agent failed: {}\n{stdout}\n{}\n--- gateway log:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        gw.log()
    );
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

fn verdicts(lines: &[serde_json::Value]) -> Vec<(String, String, String)> {
    lines
        .iter()
        .filter(|l| l["type"] == "verdict")
        .map(|l| {
            (
                l["tool"].as_str().unwrap_or_default().to_owned(),
                l["decision"].as_str().unwrap_or_default().to_owned(),
                l["source"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

#[test]
fn tether_agent_registers_at_aa_gateway_and_reports_true_sources() {
    let gw = AaGateway::start(EXE, POLICY, None);
    let dir = tempfile::tempdir().expect("temp dir");
    let key = dir.path().join("agent.key");
    let key = key.to_str().expect("utf-8 path");

    let lines = agent(&gw, &["--key", key]);
    let agent_id = lines[0]["agent"].as_str().expect("start line").to_owned();
    assert!(
        agent_id.starts_with("acme/team-a/did:key:z6Mk"),
        "{lines:?}"
    );
    assert_eq!(
        verdicts(&lines),
        [
            ("read_file".into(), "allow".into(), "gateway".into()),
            ("rm_rf".into(), "deny".into(), "gateway".into()),
        ],
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l["type"] == "status" && l["registration"]["phase"] == "registered"),
        "{lines:?}"
    );

    // The same key again: the first run deregistered at its end, so the
    // gateway registers it again, as the same agent.
    let again = agent(&gw, &["--key", key]);
    assert_eq!(again[0]["agent"], agent_id.as_str());
    assert_eq!(verdicts(&again).len(), 2, "{again:?}");

    // An ephemeral agent: a fresh id.
    let ephemeral = agent(&gw, &["--ephemeral-key"]);
    assert_ne!(ephemeral[0]["agent"], agent_id.as_str());
    assert_eq!(verdicts(&ephemeral)[0].2, "gateway", "{ephemeral:?}");
}
