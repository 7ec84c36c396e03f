//! Direction 2, the agent lifecycle: tether's client registers itself at
//! Agent Assembly's real gateway (`aa-gateway =0.0.1-rc.7` as a child
//! process) with its own did:key identity, checks with the token it was
//! issued, and after a gateway restart, which keeps the agent but forgets
//! its token and refuses the same key again with `ALREADY_EXISTS`
//! (WIRE.md), says so plainly and ends every check within the outage bound
//! with a verdict that names the cause.

use std::time::Duration;

use tether_core::op_control::OpControlConfig;
use tether_interop::aa_gateway_proc::AaGateway;
use tether_interop::register::{did_key, fresh_key, register};
use tether_interop::{bounded, WAIT};
use tether_tokio::client::{
    AgentIdentity, AgentSigningKey, Decision, RegistrationPhase, RegistrationSettings, Tether,
    TetherConfig, ToolCall, VerdictSource,
};

const EXE: &str = env!("CARGO_BIN_EXE_aa-gateway-serve");

const POLICY: &str = r#"
version: "1"
tools:
  read_file:
    allow: true
  rm_rf:
    allow: false
"#;

fn config(gw: &AaGateway, key: AgentSigningKey, ops: OpControlConfig) -> TetherConfig {
    TetherConfig::new(
        gw.url(),
        AgentIdentity::new("acme", "team-a", ""),
        "runtime",
    )
    .with_registration(RegistrationSettings::new(key).with_tools(["read_file", "rm_rf"]))
    .with_ops(ops)
    .with_connect_timeout(Duration::from_secs(2))
}

async fn registered_and_ready(tether: &Tether, gw: &AaGateway) {
    let mut status = tether.watch_status();
    let registered = bounded("the agent registers", async {
        status
            .wait_for(|s| {
                s.registration
                    .as_ref()
                    .is_some_and(|r| r.phase == RegistrationPhase::Registered)
            })
            .await
            .is_ok()
    })
    .await;
    assert!(registered, "status channel closed");
    if let Err(e) = tether.ready(WAIT).await {
        panic!(
            "tether never got both streams up: {e}\n--- gateway log:\n{}",
            gw.log()
        );
    }
}

/// Registered with its own key, the agent's checks are the gateway's
/// verdicts (allow and deny, source `Gateway`), and at shutdown it
/// deregisters.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tether_registers_itself_and_its_checks_are_the_gateways_verdicts() {
    let gw = AaGateway::start(EXE, POLICY, None);
    // The same key twice: tether's, and one for Agent Assembly's own
    // client, to ask the gateway whether the agent is still registered.
    let aa_key = fresh_key();
    let key = AgentSigningKey::from_seed(aa_key.to_bytes());
    let did = key.did();
    assert_eq!(did, did_key(&aa_key));
    let tether = Tether::connect(config(&gw, key, OpControlConfig::default())).expect("config");
    registered_and_ready(&tether, &gw).await;
    let report = tether.status().registration.expect("registration report");
    assert_eq!(report.agent_id, did);
    assert_eq!(report.registrations, 1);

    let allowed = bounded(
        "check read_file",
        tether.check("t-1:s-1", &ToolCall::new("read_file")),
    )
    .await
    .expect("check answers");
    assert_eq!(allowed.decision, Decision::Allow, "{allowed:?}");
    assert_eq!(allowed.source, VerdictSource::Gateway, "{allowed:?}");
    let denied = bounded(
        "check rm_rf",
        tether.check("t-1:s-2", &ToolCall::new("rm_rf")),
    )
    .await
    .expect("check answers");
    assert_eq!(denied.decision, Decision::Deny, "{denied:?}");
    assert_eq!(denied.source, VerdictSource::Gateway, "{denied:?}");

    // Registered: the gateway refuses the same key.
    let again = bounded(
        "register the key again",
        register(&gw.url(), "acme", "team-a", &aa_key),
    )
    .await;
    assert_eq!(
        again.map(|_| ()).map_err(|e| e.code()),
        Err(tonic::Code::AlreadyExists)
    );

    tether.shutdown(Duration::from_secs(2)).await;
    let phase = tether.status().registration.map(|r| r.phase);
    assert_eq!(phase, Some(RegistrationPhase::Stopped));
    // Deregistered at shutdown: the key registers again.
    let after = bounded(
        "register after shutdown",
        register(&gw.url(), "acme", "team-a", &aa_key),
    )
    .await;
    assert!(
        after.is_ok(),
        "the gateway still holds the agent after shutdown: {after:?}\n{}",
        gw.log()
    );
}

/// After a restart the gateway refuses the kept key with `ALREADY_EXISTS`:
/// the status says exactly that, and a check ends within the outage bound
/// (grace plus hold limit) with a denial that names the cause, instead of
/// hanging.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_restart_the_refused_registration_is_reported_and_checks_end() {
    let mut gw = AaGateway::start(EXE, POLICY, None);
    let key = AgentSigningKey::generate().expect("randomness");
    let grace = Duration::from_millis(500);
    let hold = Duration::from_millis(1500);
    let ops = OpControlConfig::default()
        .with_outage_grace(grace)
        .with_hold_limit(hold);
    let tether = Tether::connect(config(&gw, key, ops)).expect("config");
    registered_and_ready(&tether, &gw).await;

    gw.restart();
    let mut status = tether.watch_status();
    let refused = bounded("the refused registration is reported", async {
        status
            .wait_for(|s| {
                s.registration.as_ref().is_some_and(|r| {
                    matches!(
                        r.phase,
                        RegistrationPhase::Refused {
                            code: tonic::Code::AlreadyExists,
                            ..
                        }
                    )
                })
            })
            .await
            .is_ok()
    })
    .await;
    assert!(refused, "status channel closed");
    let phase = tether.status().registration.map(|r| r.phase.to_string());
    eprintln!("after restart: {phase:?}");

    let in_force = bounded("the outage policy comes into force", async {
        status
            .wait_for(|s| s.kill_switch.outage_policy_in_force)
            .await
            .is_ok()
    })
    .await;
    assert!(in_force, "status channel closed");

    let started = tokio::time::Instant::now();
    let verdict = bounded(
        "a check after the restart",
        tether.check("t-2:s-1", &ToolCall::new("read_file")),
    )
    .await
    .expect("check answers");
    let took = started.elapsed();
    eprintln!("check after restart: {verdict:?} in {took:?}");
    assert_eq!(verdict.decision, Decision::Deny, "{verdict:?}");
    assert!(took <= grace + hold + Duration::from_secs(2), "{took:?}");
    assert!(
        verdict.reason.contains("already exists") || verdict.reason.contains("refused"),
        "the verdict does not name the cause: {verdict:?}"
    );
    tether.shutdown(Duration::from_secs(2)).await;
}

/// An ephemeral agent (a fresh key per registration) recovers from the
/// same restart on its own: the gateway forgot its token, so it registers
/// under a new key and id, and its checks are the gateway's verdicts again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ephemeral_agent_registers_under_a_fresh_key_after_a_restart() {
    let mut gw = AaGateway::start(EXE, POLICY, None);
    let key = AgentSigningKey::generate().expect("randomness");
    let old = key.did();
    let mut config = config(&gw, key, OpControlConfig::default());
    config.registration = config
        .registration
        .map(RegistrationSettings::with_fresh_key_per_registration);
    let tether = Tether::connect(config).expect("config");
    registered_and_ready(&tether, &gw).await;

    gw.restart();
    let mut status = tether.watch_status();
    let again = bounded("registered again under a fresh key", async {
        status
            .wait_for(|s| {
                s.registration.as_ref().is_some_and(|r| {
                    r.registrations == 2
                        && r.key_rotations == 1
                        && r.phase == RegistrationPhase::Registered
                }) && s.op_control.connected
                    && s.invalidation.connected
            })
            .await
            .is_ok()
    })
    .await;
    assert!(again, "status channel closed");
    let report = tether.status().registration.expect("report");
    assert_ne!(report.agent_id, old);
    let v = bounded(
        "check after the restart",
        tether.check("t-3:s-1", &ToolCall::new("read_file")),
    )
    .await
    .expect("check answers");
    assert_eq!(v.decision, Decision::Allow, "{v:?}");
    assert_eq!(v.source, VerdictSource::Gateway, "{v:?}");
    tether.shutdown(Duration::from_secs(2)).await;
}
