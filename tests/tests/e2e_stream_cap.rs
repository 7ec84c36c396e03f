//! The kill switch and the invalidation stream never wait behind check
//! traffic: against a gateway that caps concurrent HTTP/2 streams per
//! connection and holds every check until a reviewer decides, a stream the
//! gateway ends is back within the client's first reconnect delay plus one
//! second, and a terminate (or an invalidation) published then reaches the
//! agent within the same bound, while the held checks still fill the cap.
//!
//! The client is built the way a user builds it: `TetherConfig::new` and a
//! token, every other setting at its default.

use std::sync::Arc;
use std::time::Duration;

use tether_gateway::rules::RuleTable;
use tether_gateway::RunningGateway;
use tether_tests::recorder::{Recorder, Seen};
use tether_tests::{agent, agent_key, bounded, connected, gateway, serve, until, TOKEN};
use tether_tokio::client::{Tether, TetherConfig, ToolCall, VerdictSource};
use tokio::task::JoinHandle;

/// The gateway's cap on concurrent streams per connection.
const CAP: u32 = 4;
/// The op every held check belongs to.
const OP: &str = "trace-held:span-1";

/// A gateway that holds every `slow` call for ten minutes and caps streams.
async fn capped_gateway() -> RunningGateway {
    let rules = RuleTable::parse("hold slow 600\ndefault deny\n").unwrap();
    serve(
        gateway()
            .rules(rules)
            .max_concurrent_streams_per_connection(CAP),
    )
    .await
}

fn user_config(url: &str) -> TetherConfig {
    TetherConfig::new(url, agent(), "runtime-1").with_token(TOKEN)
}

/// The longest a first reconnect may take with `config`'s backoff, plus
/// one second.
fn reconnect_bound(config: &TetherConfig) -> Duration {
    config.backoff.base.mul_f64(1.0 + config.backoff.jitter) + Duration::from_secs(1)
}

/// Start `CAP` checks of [`OP`] that the gateway holds, and wait until it
/// holds at least as many as fit beside two streams on one connection (so
/// the cap is full whichever way the client spreads its streams).
async fn fill_cap_with_held_checks(
    gw: &RunningGateway,
    tether: &Tether,
) -> Vec<JoinHandle<Result<tether_tokio::client::Verdict, tether_tokio::client::TetherError>>> {
    let checks: Vec<_> = (0..CAP)
        .map(|i| {
            let t = tether.clone();
            tokio::spawn(async move {
                let call = ToolCall::new("slow").with_args(format!("{{\"n\":{i}}}"));
                t.check(OP, &call).await
            })
        })
        .collect();
    let admin = gw.admin();
    until("the gateway holds the checks", || {
        admin.pending().len() >= CAP as usize - 2
    })
    .await;
    // Give the rest time to reach the gateway or queue behind the cap.
    tokio::time::sleep(Duration::from_millis(300)).await;
    for c in &checks {
        assert!(!c.is_finished(), "a held check finished early");
    }
    checks
}

#[tokio::test]
async fn op_control_stream_reopens_and_a_terminate_lands_while_held_checks_fill_the_cap() {
    let gw = capped_gateway().await;
    let config = user_config(&gw.endpoint());
    let bound = reconnect_bound(&config);
    let tether = connected(config).await;
    let checks = fill_cap_with_held_checks(&gw, &tether).await;

    let before = tether.status().op_control.reconnects;
    assert_eq!(gw.admin().close_op_streams(&agent_key()), 1);
    let mut st = tether.watch_status();
    let back = tokio::time::timeout(
        bound,
        st.wait_for(|s| s.op_control.connected && s.op_control.reconnects > before),
    )
    .await
    // Drop the `Ref` at once: it holds the status lock.
    .map(|r| r.is_ok());
    assert!(
        back == Ok(true),
        "the op-control stream was not back within {bound:?}: {:?}",
        tether.status().op_control
    );

    gw.admin().terminate(OP, agent_key()).unwrap();
    let mut pending = checks;
    let first = tokio::time::timeout(bound, async {
        let (done, _, rest) = futures::future::select_all(pending.drain(..)).await;
        (done, rest)
    })
    .await;
    let (done, rest) = first
        .unwrap_or_else(|_| panic!("no held check of the terminated op ended within {bound:?}"));
    let verdict = done.unwrap().unwrap();
    assert_eq!(verdict.source, VerdictSource::Terminated);
    assert!(!verdict.allowed());
    // Every other check of the op ends the same way.
    for c in rest {
        let v = bounded("the other held checks end", c)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(v.source, VerdictSource::Terminated);
    }
}

#[tokio::test]
async fn invalidation_stream_reopens_and_an_invalidation_lands_while_held_checks_fill_the_cap() {
    let gw = capped_gateway().await;
    let config = user_config(&gw.endpoint());
    let bound = reconnect_bound(&config);
    let assembly_id = config.assembly_id.clone();
    let tether = connected(config).await;
    let recorder = Recorder::default();
    tether.add_sink(Arc::new(recorder.clone()));
    let _checks = fill_cap_with_held_checks(&gw, &tether).await;

    let before = tether.status().invalidation.reconnects;
    assert!(gw.admin().close_subscription(&assembly_id));
    let mut st = tether.watch_status();
    let back = tokio::time::timeout(
        bound,
        st.wait_for(|s| s.invalidation.connected && s.invalidation.reconnects > before),
    )
    .await
    .map(|r| r.is_ok());
    assert!(
        back == Ok(true),
        "the invalidation stream was not back within {bound:?}: {:?}",
        tether.status().invalidation
    );

    let reached = gw
        .admin()
        .publish_invalidation(&agent().agent_id, 7, Some(&agent().team_id));
    assert_eq!(reached, 1);
    let applied = tokio::time::timeout(
        bound,
        recorder.wait_for(|seen| seen.iter().any(|s| matches!(s, Seen::Change(_)))),
    )
    .await;
    assert!(
        applied.is_ok(),
        "the invalidation did not reach the sink within {bound:?}"
    );
    let _ = gw.shutdown().await;
}
