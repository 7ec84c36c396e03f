//! Issue 15, item 2: a draining gateway does not keep the streams.
//!
//! Gateway A serves on 127.0.0.1:P; a client built as `TetherConfig::new`
//! builds it (default settings, only the token added) has both streams on
//! A. A starts a rolling deploy's graceful drain (`RunningGateway::drain`:
//! HTTP/2 GOAWAY on every connection, listener closed, open streams kept and
//! served). Gateway B binds the same port P. The rule: checks and streams
//! are never served by different gateway processes for more than about a
//! second, so the client notices the GOAWAY and moves both streams to B:
//! - a terminate published on B (before the client arrives) reaches the
//!   client within 3 s of the drain;
//! - the invalidation stream is subscribed at B within 3 s, and an
//!   invalidation published on B is applied;
//! - checks are answered by B (its rules differ from A's);
//! - the invalidation stream resumed without loss: A's events once, in
//!   order, then B's new lifetime (one `GatewayRestart` invalidation: B
//!   announces another epoch) from its seq 1, no unreplayable gap;
//! - A is left with no stream of the client open;
//! - the status counts one drain swap per stream, and the kill switch never
//!   stopped being reachable (the op stream's swap is make-before-break).
//!
//! Under TLS the GOAWAY frame cannot be seen; there the client moves its
//! streams once its checks moved to a new connection: the second test runs
//! the same drain with TLS gateways and a check after it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rcgen::{CertificateParams, KeyPair};
use tether_gateway::rules::RuleTable;
use tether_tests::recorder::{Recorder, Seen};
use tether_tests::{agent, agent_key, bounded, connected, gateway, serve, TOKEN};
use tether_tokio::client::{
    InvalidateAllReason, OpState, Tether, TetherConfig, TlsSettings, ToolCall,
};
use tokio::net::TcpListener;

/// The longest the client may keep a stream on the draining gateway.
const MOVE_BOUND: Duration = Duration::from_secs(3);

/// Poll `cond` every 5 ms for at most `bound`; how long it took.
async fn within(what: &str, bound: Duration, mut cond: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < bound, "not within {bound:?}: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    start.elapsed()
}

/// Whether a check of a tool neither gateway has a rule for is allowed:
/// A denies it (`default deny`), B allows it (`default allow`). A fresh
/// tool name each time, so no cached decision answers.
async fn unknown_tool_allowed(t: &Tether, n: u32) -> Option<bool> {
    let call = ToolCall::new(format!("probe_{n}"));
    t.check("trace-1:span-1", &call)
        .await
        .ok()
        .map(|v| v.allowed())
}

#[tokio::test]
async fn a_draining_gateway_hands_checks_and_both_streams_to_its_replacement() {
    let a = serve(gateway()).await;
    let port = a.local_addr().port();
    let config = TetherConfig::new(a.endpoint(), agent(), "runtime-1").with_token(TOKEN);
    let tether = connected(config).await;
    let rec = Recorder::default();
    tether.add_sink(Arc::new(rec.clone()));

    // On A: three invalidations applied, checks answered by A.
    for v in 1..=3 {
        a.admin().publish_invalidation("", v, None);
    }
    bounded(
        "A's events applied",
        rec.wait_for(|l| l.last() == Some(&Seen::Change(3))),
    )
    .await;
    assert_eq!(unknown_tool_allowed(&tether, 0).await, Some(false));
    // Past the backoff's base (1 s) since the streams opened, so the move is
    // at once (a younger stream moves `base` after it opened).
    tokio::time::sleep(Duration::from_millis(1_200)).await;

    let drained = Instant::now();
    a.drain().await;
    let b_rules = RuleTable::parse("allow read_file\nallow search\ndefault allow\n").unwrap();
    let b = bounded("B binds the port A released", async {
        loop {
            match TcpListener::bind(("127.0.0.1", port)).await {
                Ok(l) => break gateway().rules(b_rules.clone()).serve(l).await.unwrap(),
                Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
            }
        }
    })
    .await;
    let b_up = drained.elapsed();
    // Checks go to B.
    let mut n = 1;
    while unknown_tool_allowed(&tether, n).await != Some(true) {
        assert!(drained.elapsed() < MOVE_BOUND, "checks still answered by A");
        n += 1;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let checks = drained.elapsed();
    // Published on B before the client got there: the op stream's snapshot
    // on subscribe carries it.
    b.admin().terminate("trace-9:span-9", agent_key()).unwrap();

    let term_from = Instant::now();
    let term = within(
        "the terminate published on B reaches the client",
        MOVE_BOUND,
        || tether.ops().state("trace-9:span-9") == OpState::Terminated,
    )
    .await;
    let b_admin = b.admin();
    let sub = within(
        "the invalidation stream is subscribed at B",
        MOVE_BOUND,
        || b_admin.status().invalidation_streams == 1,
    )
    .await;
    b.admin().publish_invalidation("", 10, None);
    b.admin().publish_invalidation("", 11, None);
    bounded(
        "B's events applied",
        rec.wait_for(|l| l.last() == Some(&Seen::Change(2))),
    )
    .await;
    let inv = drained.elapsed();

    // Nothing lost or doubled: A's lifetime, one restart, B's from seq 1.
    assert_eq!(
        rec.seen(),
        vec![
            Seen::Change(1),
            Seen::Change(2),
            Seen::Change(3),
            Seen::All(InvalidateAllReason::GatewayRestart),
            Seen::Change(1),
            Seen::Change(2),
        ]
    );
    // The client left A: no stream of it is open there any more.
    let a_admin = a.admin();
    within("A holds no stream of the client", MOVE_BOUND, || {
        let s = a_admin.status();
        s.invalidation_streams == 0 && s.op_control_streams == 0
    })
    .await;
    let st = tether.status();
    assert_eq!(st.invalidation.drain_swaps, 1);
    assert_eq!(st.op_control.drain_swaps, 1);
    assert!(st.invalidation.connected && st.op_control.connected);
    assert!(st.kill_switch.reachable);
    assert!(!st.kill_switch.outage_policy_in_force);
    let term_at = term_from.duration_since(drained) + term;
    eprintln!(
        "from the drain: B serving at {b_up:?}, checks answered by B at {checks:?} \
         ({n} probe(s)), B's terminate applied at {term_at:?}, Subscribe open at B \
         {sub:?} later, B's invalidations applied at {inv:?}"
    );

    tether.shutdown(Duration::from_secs(1)).await;
    b.shutdown().await.unwrap();
    a.shutdown().await.unwrap();
}

/// Bind `port` again once the draining gateway released it, and serve
/// `builder` there.
async fn serve_when_free(
    builder: tether_gateway::GatewayBuilder,
    port: u16,
) -> tether_gateway::RunningGateway {
    bounded("B binds the port A released", async {
        loop {
            match TcpListener::bind(("127.0.0.1", port)).await {
                Ok(l) => break builder.serve(l).await.unwrap(),
                Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
            }
        }
    })
    .await
}

#[tokio::test]
async fn under_tls_the_streams_follow_the_checks_to_the_replacement() {
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let (cert_pem, key_pem) = (cert.pem(), key.serialize_pem());
    let tls = |b: tether_gateway::GatewayBuilder| b.tls(cert_pem.clone(), key_pem.clone());
    let a = serve(tls(gateway())).await;
    let port = a.local_addr().port();
    let config = TetherConfig::new(format!("https://localhost:{port}"), agent(), "runtime-1")
        .with_token(TOKEN)
        .with_tls(TlsSettings::default().with_ca_pem(cert_pem.clone()));
    let tether = connected(config).await;
    assert_eq!(unknown_tool_allowed(&tether, 0).await, Some(false));
    tokio::time::sleep(Duration::from_millis(1_200)).await;

    let drained = Instant::now();
    a.drain().await;
    let b_rules = RuleTable::parse("default allow\n").unwrap();
    let b = serve_when_free(tls(gateway().rules(b_rules)), port).await;
    b.admin().terminate("trace-9:span-9", agent_key()).unwrap();
    // A check after the drain goes to B on a new connection ...
    let mut n = 1;
    while unknown_tool_allowed(&tether, n).await != Some(true) {
        assert!(drained.elapsed() < MOVE_BOUND, "checks still answered by A");
        n += 1;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let checks = drained.elapsed();
    // ... and the streams follow.
    within(
        "the terminate published on B reaches the client",
        MOVE_BOUND,
        || tether.ops().state("trace-9:span-9") == OpState::Terminated,
    )
    .await;
    let b_admin = b.admin();
    within(
        "the invalidation stream is subscribed at B",
        MOVE_BOUND,
        || b_admin.status().invalidation_streams == 1,
    )
    .await;
    let moved = drained.elapsed();
    let st = tether.status();
    assert_eq!(
        (st.invalidation.drain_swaps, st.op_control.drain_swaps),
        (1, 1)
    );
    eprintln!("TLS, from the drain: checks on B at {checks:?}, both streams on B at {moved:?}");
    tether.shutdown(Duration::from_secs(1)).await;
    b.shutdown().await.unwrap();
    a.shutdown().await.unwrap();
}
