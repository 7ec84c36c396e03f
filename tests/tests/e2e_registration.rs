//! A client configured with `TetherConfig::with_registration` registers its
//! did:key identity at tether's gateway (`AgentLifecycleService`), checks
//! with the token it was issued, registers again after a gateway restart,
//! applies the lifecycle's suspend, resume, kill and policy-update commands
//! as a kill switch, reports a refused registration with its code, and
//! deregisters at shutdown. Real tonic on 127.0.0.1.

use std::time::Duration;

use tether_gateway::ops::AgentKey;
use tether_gateway::Reregistration;
use tether_tests::{bounded, fast_backoff, gateway, serve, serve_on, until};
use tether_tokio::client::{
    AgentIdentity, AgentSigningKey, ClientStatus, Decision, RegistrationPhase,
    RegistrationSettings, Tether, TetherConfig, TetherError, ToolCall, VerdictSource,
};

fn registering(url: &str, key: AgentSigningKey) -> TetherConfig {
    let mut c = TetherConfig::new(url, AgentIdentity::new("acme", "team-a", ""), "runtime-1")
        .with_registration(RegistrationSettings::new(key).with_tools(["read_file"]));
    c.backoff = fast_backoff();
    c.connect_timeout = Duration::from_secs(2);
    c
}

fn key_of(did: &str) -> AgentKey {
    AgentKey {
        org_id: "acme".into(),
        team_id: "team-a".into(),
        agent_id: did.into(),
    }
}

fn registered(s: &ClientStatus) -> bool {
    s.registration
        .as_ref()
        .is_some_and(|r| r.phase == RegistrationPhase::Registered)
}

async fn registered_and_ready(tether: &Tether) {
    let mut st = tether.watch_status();
    bounded(
        "registered, both streams up",
        st.wait_for(|s| registered(s) && s.invalidation.connected && s.op_control.connected),
    )
    .await
    .expect("status channel open");
}

/// The gateway requires a credential; the client has none but its key.
#[tokio::test]
async fn a_registered_agent_checks_with_the_token_it_was_issued_and_deregisters() {
    let gw = serve(gateway()).await;
    let key = AgentSigningKey::generate().unwrap();
    let did = key.did();
    let tether = Tether::connect(registering(&gw.endpoint(), key)).unwrap();
    registered_and_ready(&tether).await;

    let report = tether.status().registration.unwrap();
    assert_eq!(report.agent_id, did);
    assert_eq!(report.registrations, 1);
    let v = tether
        .check("t-1:s-1", &ToolCall::new("read_file"))
        .await
        .unwrap();
    assert_eq!(
        (v.decision, v.source.clone()),
        (Decision::Allow, VerdictSource::Gateway),
        "{v:?}"
    );
    let admin = gw.admin();
    assert!(admin
        .agents()
        .iter()
        .any(|a| a.agent.agent_id == did && a.registered));

    tether.shutdown(Duration::from_secs(2)).await;
    assert_eq!(
        tether.status().registration.map(|r| r.phase),
        Some(RegistrationPhase::Stopped)
    );
    assert!(
        !admin
            .agents()
            .iter()
            .any(|a| a.agent.agent_id == did && a.registered),
        "still registered after shutdown: {:?}",
        admin.agents()
    );
    gw.shutdown().await.unwrap();
}

/// Issue 15, item 9's lifecycle for the registration: dropping every
/// handle without `shutdown` still deregisters the agent (its lifecycle
/// task is told to shut down, not aborted), within the shutdown bound.
#[tokio::test]
async fn dropping_the_last_handle_deregisters_the_agent() {
    let gw = serve(gateway()).await;
    let key = AgentSigningKey::generate().unwrap();
    let did = key.did();
    let tether = Tether::connect(registering(&gw.endpoint(), key)).unwrap();
    registered_and_ready(&tether).await;
    let admin = gw.admin();
    let registered_here = |admin: &tether_gateway::AdminHandle| {
        admin
            .agents()
            .iter()
            .any(|a| a.agent.agent_id == did && a.registered)
    };
    assert!(registered_here(&admin));
    let clone = tether.clone();
    drop(tether);
    assert!(registered_here(&admin), "a clone still holds the client");
    drop(clone);
    until("the dropped agent deregistered", || {
        !registered_here(&admin)
    })
    .await;
    gw.shutdown().await.unwrap();
}

/// A restarted gateway forgets every token: the client notices (its
/// streams are refused), registers again with the same key and is back.
#[tokio::test]
async fn after_a_gateway_restart_the_agent_registers_again_and_recovers() {
    let gw = serve(gateway()).await;
    let port = gw.local_addr().port();
    let tether = Tether::connect(registering(
        &gw.endpoint(),
        AgentSigningKey::generate().unwrap(),
    ))
    .unwrap();
    registered_and_ready(&tether).await;
    gw.shutdown().await.unwrap();

    let gw = serve_on(gateway(), port).await;
    let mut st = tether.watch_status();
    bounded(
        "registered a second time, both streams up",
        st.wait_for(|s| {
            s.registration
                .as_ref()
                .is_some_and(|r| r.registrations >= 2)
                && registered(s)
                && s.invalidation.connected
                && s.op_control.connected
        }),
    )
    .await
    .expect("status channel open");
    let v = tether
        .check("t-2:s-1", &ToolCall::new("read_file"))
        .await
        .unwrap();
    assert!(v.allowed(), "{v:?}");
    tether.shutdown(Duration::from_secs(2)).await;
    gw.shutdown().await.unwrap();
}

/// A check made before the registration is done waits for its token
/// (within the request timeout) instead of failing unauthenticated.
#[tokio::test]
async fn a_check_right_after_connect_waits_for_the_registration() {
    let gw = serve(gateway()).await;
    let tether = Tether::connect(registering(
        &gw.endpoint(),
        AgentSigningKey::generate().unwrap(),
    ))
    .unwrap();
    let v = bounded(
        "the first check",
        tether.check("t-5:s-1", &ToolCall::new("read_file")),
    )
    .await
    .unwrap();
    assert_eq!(
        (v.decision, v.source.clone()),
        (Decision::Allow, VerdictSource::Gateway),
        "{v:?}"
    );
    assert!(registered(&tether.status()));
    tether.shutdown(Duration::from_secs(2)).await;
    gw.shutdown().await.unwrap();
}

/// Suspend pauses every op of the agent (a check waits), resume releases
/// it, a policy update drops the cached decisions, kill terminates every
/// op.
#[tokio::test]
async fn lifecycle_commands_act_as_a_kill_switch() {
    let gw = serve(gateway()).await;
    let admin = gw.admin();
    let key = AgentSigningKey::generate().unwrap();
    let agent = key_of(&key.did());
    let tether = Tether::connect(registering(&gw.endpoint(), key)).unwrap();
    registered_and_ready(&tether).await;
    let mut st = tether.watch_status();
    bounded(
        "the control stream is open",
        st.wait_for(|s| {
            s.registration
                .as_ref()
                .is_some_and(|r| r.control_stream_open)
        }),
    )
    .await
    .unwrap();

    // A cached decision, for the policy update below.
    let v = tether
        .check("t-3:s-0", &ToolCall::new("read_file"))
        .await
        .unwrap();
    assert!(v.allowed());
    assert_eq!(tether.cached_decisions(), 1);

    admin.suspend_agent(&agent, "budget").unwrap();
    bounded(
        "suspended",
        st.wait_for(|s| s.registration.as_ref().is_some_and(|r| r.suspended)),
    )
    .await
    .unwrap();
    let held = {
        let tether = tether.clone();
        tokio::spawn(async move { tether.check("t-3:s-1", &ToolCall::new("read_file")).await })
    };
    until("the check waits on the suspended agent", || {
        tether.ops().waiting() == 1
    })
    .await;
    assert!(!held.is_finished());
    admin.resume_agent(&agent, "ok").unwrap();
    let v = bounded("released by resume", held).await.unwrap().unwrap();
    assert!(v.allowed(), "{v:?}");

    admin.notify_policy_update(&agent, "policy-2").unwrap();
    until("the cached decision is dropped", || {
        tether.cached_decisions() == 0
    })
    .await;

    admin.kill_agent(&agent, "stop").unwrap();
    until("terminated", || {
        tether.ops().state("t-3:s-9") == tether_tokio::client::OpState::Terminated
    })
    .await;
    let v = tether
        .check("t-3:s-9", &ToolCall::new("read_file"))
        .await
        .unwrap();
    assert_eq!(v.source, VerdictSource::Terminated, "{v:?}");
    tether.shutdown(Duration::from_secs(2)).await;
    gw.shutdown().await.unwrap();
}

/// A gateway that refuses to register a key again (as Agent Assembly's
/// does after a restart) makes the second runtime of that key report the
/// refusal with its code, not hang in silence.
#[tokio::test]
async fn a_refused_registration_is_reported_with_its_code() {
    let gw = serve(gateway().reregistration(Reregistration::Refuse)).await;
    let key = AgentSigningKey::generate().unwrap();
    let first = Tether::connect(registering(&gw.endpoint(), key.clone())).unwrap();
    registered_and_ready(&first).await;

    let second = Tether::connect(registering(&gw.endpoint(), key)).unwrap();
    let mut st = second.watch_status();
    bounded(
        "the refusal is reported",
        st.wait_for(|s| {
            s.registration.as_ref().is_some_and(|r| {
                matches!(
                    r.phase,
                    RegistrationPhase::Refused {
                        code: tonic::Code::AlreadyExists,
                        ..
                    }
                )
            })
        }),
    )
    .await
    .unwrap();
    let phase = second.status().registration.unwrap().phase;
    assert!(phase.to_string().contains("already"), "{phase}");
    // A check has no credential to send: it ends at once with the reason,
    // nothing sent.
    let err = bounded(
        "a check of the refused agent",
        second.check("t-4:s-1", &ToolCall::new("read_file")),
    )
    .await
    .expect_err("no credential");
    assert!(
        matches!(
            &err,
            TetherError::NotRegistered {
                phase: RegistrationPhase::Refused {
                    code: tonic::Code::AlreadyExists,
                    ..
                }
            }
        ),
        "{err:?}"
    );
    second.shutdown(Duration::from_secs(1)).await;
    first.shutdown(Duration::from_secs(1)).await;
    gw.shutdown().await.unwrap();
}

fn ephemeral(url: &str, key: AgentSigningKey) -> TetherConfig {
    let mut c = registering(url, key);
    c.registration = c
        .registration
        .map(RegistrationSettings::with_fresh_key_per_registration);
    c
}

/// An ephemeral agent whose key the gateway refuses as already registered
/// takes a fresh key and registers under the new id; its streams and
/// checks use the new id (the gateway refuses a stream for another agent's
/// id), and the lifecycle commands of the new id reach it.
#[tokio::test]
async fn an_ephemeral_agent_refused_as_registered_takes_a_fresh_key() {
    let gw = serve(gateway().reregistration(Reregistration::Refuse)).await;
    let admin = gw.admin();
    let key = AgentSigningKey::generate().unwrap();
    let old = key.did();
    let first = Tether::connect(registering(&gw.endpoint(), key.clone())).unwrap();
    registered_and_ready(&first).await;

    let second = Tether::connect(ephemeral(&gw.endpoint(), key)).unwrap();
    registered_and_ready(&second).await;
    let report = second.status().registration.unwrap();
    assert_ne!(report.agent_id, old);
    assert_eq!(report.key_rotations, 1);
    assert_eq!(report.registrations, 1);
    let v = second
        .check("t-6:s-1", &ToolCall::new("read_file"))
        .await
        .unwrap();
    assert_eq!(
        (v.decision, v.source.clone()),
        (Decision::Allow, VerdictSource::Gateway),
        "{v:?}"
    );

    admin
        .suspend_agent(&key_of(&report.agent_id), "new id")
        .unwrap();
    until("the new id's suspend pauses its ops", || {
        second.ops().state("t-6:s-2") == tether_tokio::client::OpState::Paused
    })
    .await;
    assert_eq!(
        first.ops().state("t-6:s-2"),
        tether_tokio::client::OpState::Running,
        "the old id's runtime is not the one suspended"
    );
    second.shutdown(Duration::from_secs(1)).await;
    first.shutdown(Duration::from_secs(1)).await;
    gw.shutdown().await.unwrap();
}

/// A new id is no way out of a kill: an ephemeral agent killed through its
/// lifecycle, whose gateway then restarts (forgetting its token), registers
/// under a fresh key and its ops are still terminated.
#[tokio::test]
async fn a_fresh_key_does_not_lift_a_kill() {
    let gw = serve(gateway()).await;
    let port = gw.local_addr().port();
    let key = AgentSigningKey::generate().unwrap();
    let tether = Tether::connect(ephemeral(&gw.endpoint(), key.clone())).unwrap();
    registered_and_ready(&tether).await;
    let mut st = tether.watch_status();
    bounded(
        "the control stream is open",
        st.wait_for(|s| {
            s.registration
                .as_ref()
                .is_some_and(|r| r.control_stream_open)
        }),
    )
    .await
    .unwrap();
    gw.admin().kill_agent(&key_of(&key.did()), "stop").unwrap();
    until("killed", || {
        tether.ops().state("t-7:s-1") == tether_tokio::client::OpState::Terminated
    })
    .await;
    gw.shutdown().await.unwrap();

    let gw = serve_on(gateway(), port).await;
    bounded(
        "registered under a fresh key",
        st.wait_for(|s| {
            s.registration
                .as_ref()
                .is_some_and(|r| r.key_rotations == 1 && r.phase == RegistrationPhase::Registered)
        }),
    )
    .await
    .unwrap();
    assert_ne!(tether.status().registration.unwrap().agent_id, key.did());
    assert_eq!(
        tether.ops().state("t-7:s-2"),
        tether_tokio::client::OpState::Terminated
    );
    let v = tether
        .check("t-7:s-3", &ToolCall::new("read_file"))
        .await
        .unwrap();
    assert_eq!(v.source, VerdictSource::Terminated, "{v:?}");
    tether.shutdown(Duration::from_secs(1)).await;
    gw.shutdown().await.unwrap();
}

/// Heartbeats go out at the interval the gateway returned and their
/// answers act: a policy change the gateway reports through a heartbeat
/// (`policy_updated`, after an invalidation naming the agent) drops every
/// cached decision, as `AgentPolicyUpdated`.
#[tokio::test]
async fn heartbeats_run_at_the_gateways_interval_and_their_answers_act() {
    let gw = serve(gateway().heartbeat_interval(Duration::from_secs(1))).await;
    let key = AgentSigningKey::generate().unwrap();
    let did = key.did();
    let tether = Tether::connect(registering(&gw.endpoint(), key)).unwrap();
    let recorder = tether_tests::recorder::Recorder::default();
    tether.add_sink(std::sync::Arc::new(recorder.clone()));
    registered_and_ready(&tether).await;

    gw.admin().publish_invalidation(&did, 2, None);
    let seen = bounded(
        "the next heartbeat reports the policy update",
        recorder.wait_for(|log| {
            log.contains(&tether_tests::recorder::Seen::All(
                tether_tokio::client::InvalidateAllReason::AgentPolicyUpdated,
            ))
        }),
    )
    .await;
    // The stream's own event came first; the heartbeat's report after it.
    assert!(
        matches!(seen.first(), Some(tether_tests::recorder::Seen::Change(_))),
        "{seen:?}"
    );
    tether.shutdown(Duration::from_secs(2)).await;
    gw.shutdown().await.unwrap();
}
