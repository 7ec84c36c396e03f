//! Property tests and focused scenarios for the registration machine.

use core::time::Duration;

use proptest::prelude::*;
use tether_core::backoff::BackoffConfig;
use tether_core::registration::{
    AgentCommand, AgentCommandKind, AttemptId, CallCode, CallFailure, ControlCommand, Generation,
    Granted, HeartbeatAnswer, Registration, RegistrationAction, RegistrationConfig,
    RegistrationState, RegistrationTimer, DEFAULT_HEARTBEAT, DEFAULT_REFUSED_RETRY,
    DEFAULT_SHUTDOWN_BOUND,
};
use tether_core::testkit::registration::{run, Code, Op, Pick};
use tether_core::{Machine, Timestamp};

fn pick() -> impl Strategy<Value = Pick> {
    prop_oneof![
        8 => Just(Pick::Current),
        1 => Just(Pick::Previous),
        1 => (0u8..5).prop_map(Pick::Any),
    ]
}

fn code() -> impl Strategy<Value = Code> {
    prop_oneof![
        3 => Just(Code(14)),
        2 => Just(Code(6)),
        2 => Just(Code(16)),
        4 => any::<u8>().prop_map(Code),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => Just(Op::Start),
        4 => (pick(), prop_oneof![3 => any::<u8>().prop_map(Ok), 1 => code().prop_map(Err)])
            .prop_map(|(p, r)| Op::Challenge(p, r)),
        4 => (pick(), prop_oneof![3 => any::<i8>().prop_map(Ok), 1 => code().prop_map(Err)])
            .prop_map(|(p, r)| Op::Registered(p, r)),
        4 => (pick(), prop_oneof![4 => any::<(bool, bool)>().prop_map(Ok), 1 => code().prop_map(Err)])
            .prop_map(|(p, r)| Op::Heartbeat(p, r)),
        1 => pick().prop_map(Op::TokenRefused),
        2 => pick().prop_map(Op::ControlOpened),
        3 => (pick(), any::<u8>()).prop_map(|(p, c)| Op::Command(p, c)),
        2 => (pick(), prop::option::of(code())).prop_map(|(p, f)| Op::ControlClosed(p, f)),
        1 => (pick(), prop::option::of(code())).prop_map(|(p, f)| Op::Deregistered(p, f)),
        3 => prop_oneof![0u32..10, 0u32..2_000, 0u32..100_000].prop_map(Op::Advance),
        1 => Just(Op::Timeout),
        5 => Just(Op::Wake),
        12 => any::<(bool, bool)>().prop_map(|(p, s)| Op::Serve(p, s)),
    ]
}

/// Ops with a rare shutdown (so that most runs get far before it).
fn ops(n: usize) -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(prop_oneof![250 => op(), 1 => Just(Op::Shutdown)], 0..n)
}

fn any_config() -> impl Strategy<Value = RegistrationConfig> {
    (
        any::<bool>(),
        any::<u64>(),
        prop_oneof![Just(0.0f64), Just(0.2), Just(1.0), Just(f64::NAN)],
        0u64..2_000,
        0u64..100_000,
        0u64..100_000,
        0u64..10_000,
        0u64..120_000,
    )
        .prop_map(|(fresh, seed, jitter, base, max, refused, bound, hb)| {
            RegistrationConfig::default()
                .with_fresh_key_per_registration(fresh)
                .with_seed(seed)
                .with_retry(
                    BackoffConfig::default()
                        .with_base(Duration::from_millis(base))
                        .with_max(Duration::from_millis(max))
                        .with_jitter(jitter),
                )
                .with_refused_retry(Duration::from_millis(refused))
                .with_shutdown_bound(Duration::from_millis(bound))
                .with_heartbeat_default(Duration::from_millis(hb))
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Every REG_* invariant (REG_ONE_CALL_AT_A_TIME, REG_STALE_IGNORED,
    /// REG_REFUSAL_TYPED, REG_RETRY_BOUNDED, REG_TOKEN_LOSS_REREGISTERS,
    /// REG_GENERATIONS, REG_HEARTBEAT_CADENCE, REG_SUSPEND_LEVEL,
    /// REG_COMMANDS_EXACT, REG_SHUTDOWN_BOUNDED, REG_BOUNDED),
    /// REG_MATCHES_MODEL and the contract invariants after every step, at
    /// the defaults and with fresh keys.
    #[test]
    fn invariants_hold_at_defaults(fresh in any::<bool>(), seed in any::<u64>(), ops in ops(300)) {
        let c = RegistrationConfig::default().with_fresh_key_per_registration(fresh).with_seed(seed);
        if let Err(v) = run(c, &ops) {
            prop_assert!(false, "{v}");
        }
    }

    /// The same under arbitrary, even out-of-range, configs.
    #[test]
    fn invariants_hold_for_any_config(c in any_config(), ops in ops(300)) {
        if let Err(v) = run(c, &ops) {
            prop_assert!(false, "{v}");
        }
    }

    /// Same seed and inputs, same outputs.
    #[test]
    fn same_inputs_same_outputs(c in any_config(), ops in ops(200)) {
        let a = run(c.clone(), &ops).map(|h| h.transcript);
        let b = run(c, &ops).map(|h| h.transcript);
        prop_assert_eq!(a, b);
    }
}

// ---- focused scenarios ------------------------------------------------------

fn t(ms: u64) -> Timestamp {
    Timestamp::from_millis(ms)
}

fn drain(m: &mut Registration) -> Vec<RegistrationAction> {
    let mut v = Vec::new();
    while let Some(a) = m.poll_action() {
        v.push(a);
    }
    v
}

fn fail(code: CallCode) -> CallFailure {
    CallFailure::new(code)
}

fn granted(interval: i64) -> Granted {
    Granted {
        token: "tok".into(),
        heartbeat_interval_sec: interval,
    }
}

/// The attempt of the single `RequestChallenge` among `actions`.
fn challenge_of(actions: &[RegistrationAction]) -> AttemptId {
    actions
        .iter()
        .find_map(|a| match a {
            RegistrationAction::RequestChallenge { attempt } => Some(*attempt),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no RequestChallenge in {actions:?}"))
}

/// Start and register at `now`; returns the generation.
fn register(m: &mut Registration, now: Timestamp, first: &[RegistrationAction]) -> Generation {
    let attempt = challenge_of(first);
    m.on_challenge(now, attempt, Ok(vec![7; 32]));
    assert_eq!(
        drain(m),
        vec![RegistrationAction::Register {
            attempt,
            nonce: vec![7; 32]
        }]
    );
    m.on_registered(now, attempt, Ok(granted(30)));
    let out = drain(m);
    let RegistrationAction::TokenIssued { generation, .. } = out[0].clone() else {
        panic!("{out:?}")
    };
    assert_eq!(out[1], RegistrationAction::OpenControl { generation });
    generation
}

fn started(c: RegistrationConfig) -> (Registration, Generation) {
    let mut m = Registration::new(c, t(0));
    m.on_start(t(0));
    let first = drain(&mut m);
    let g = register(&mut m, t(0), &first);
    (m, g)
}

#[test]
fn defaults_are_as_documented() {
    let c = RegistrationConfig::default();
    assert_eq!(c.refused_retry, DEFAULT_REFUSED_RETRY);
    assert_eq!(DEFAULT_REFUSED_RETRY, Duration::from_secs(60));
    assert_eq!(c.heartbeat_default, DEFAULT_HEARTBEAT);
    assert_eq!(DEFAULT_HEARTBEAT, Duration::from_secs(30));
    assert_eq!(c.shutdown_bound, DEFAULT_SHUTDOWN_BOUND);
    assert_eq!(DEFAULT_SHUTDOWN_BOUND, Duration::from_secs(5));
    assert_eq!(c.retry.base, Duration::from_millis(500));
    assert_eq!(c.retry.max, Duration::from_secs(30));
    assert!(!c.fresh_key_per_registration);
}

#[test]
fn restarted_gateway_already_exists_is_refused_and_typed() {
    let (mut m, g1) = started(RegistrationConfig::default());
    // The gateway restarts: the heartbeat's token is unknown.
    m.handle_timeout(t(30_000));
    assert_eq!(
        drain(&mut m),
        vec![RegistrationAction::SendHeartbeat { generation: g1 }]
    );
    m.on_heartbeat_answer(t(30_010), g1, Err(fail(CallCode::Unauthenticated)));
    assert_eq!(
        drain(&mut m),
        vec![RegistrationAction::TokenLost { generation: g1 }]
    );
    assert_eq!(m.token_generation(), None);
    // A second report for the same generation counts nothing more.
    m.on_token_refused(t(30_020), g1);
    assert_eq!(m.stats().tokens_lost, 1);
    assert_eq!(m.stats().stale_answers, 1);
    let retry = m.poll_timeout().unwrap();
    assert_eq!(retry.reason, RegistrationTimer::Retry);
    assert!(retry.at <= t(30_010) + Duration::from_millis(36_000));
    m.handle_timeout(retry.at);
    let attempt = challenge_of(&drain(&mut m));
    m.on_challenge(retry.at, attempt, Ok(vec![1]));
    drain(&mut m);
    m.on_registered(retry.at, attempt, Err(fail(CallCode::AlreadyExists)));
    assert!(drain(&mut m).is_empty());
    let refused_at = retry.at;
    assert_eq!(
        m.status().state,
        RegistrationState::Refused {
            failure: fail(CallCode::AlreadyExists),
            next_try: refused_at + Duration::from_secs(60),
        }
    );
    assert_eq!(m.status().since, refused_at);
    // Nothing before next_try.
    m.handle_timeout(refused_at + Duration::from_secs(59));
    assert!(drain(&mut m).is_empty());
    m.handle_timeout(refused_at + Duration::from_secs(60));
    let out = drain(&mut m);
    let attempt = challenge_of(&out);
    assert_eq!(out.len(), 1, "no key rotation without fresh keys: {out:?}");
    // Still typed while retrying, even after a transient failure.
    m.on_challenge(
        refused_at + Duration::from_secs(60),
        attempt,
        Err(fail(CallCode::Unavailable)),
    );
    let RegistrationState::Registering {
        last_failure,
        attempt_no,
    } = m.status().state
    else {
        panic!("{:?}", m.status())
    };
    assert_eq!(last_failure, Some(fail(CallCode::AlreadyExists)));
    assert_eq!(attempt_no, 2);
    assert_eq!(m.stats().refusals, 1);
    assert_eq!(m.stats().transient_failures, 1);
}

#[test]
fn fresh_key_rotates_before_each_new_attempt_and_uses_the_backoff() {
    let c = RegistrationConfig::default().with_fresh_key_per_registration(true);
    let (mut m, g1) = started(c);
    m.on_control_closed(t(100), g1, Some(fail(CallCode::Unauthenticated)));
    assert_eq!(
        drain(&mut m),
        vec![RegistrationAction::TokenLost { generation: g1 }]
    );
    let retry = m.poll_timeout().unwrap().at;
    m.handle_timeout(retry);
    let out = drain(&mut m);
    assert_eq!(out[0], RegistrationAction::RotateKey);
    let attempt = challenge_of(&out);
    m.on_challenge(retry, attempt, Err(fail(CallCode::AlreadyExists)));
    // Not Refused: back off (well under the 60 s refused retry) and rotate.
    let RegistrationState::Registering { last_failure, .. } = m.status().state else {
        panic!("{:?}", m.status())
    };
    assert_eq!(last_failure, Some(fail(CallCode::AlreadyExists)));
    let next = m.poll_timeout().unwrap().at;
    assert!(next - retry <= Duration::from_secs(36));
    m.handle_timeout(next);
    let out = drain(&mut m);
    assert_eq!(out[0], RegistrationAction::RotateKey);
    let attempt = challenge_of(&out);
    // A transient failure does not rotate again.
    m.on_challenge(next, attempt, Err(fail(CallCode::Unavailable)));
    let again = m.poll_timeout().unwrap().at;
    m.handle_timeout(again);
    let out = drain(&mut m);
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(m.stats().key_rotations, 2);
    let g2 = register(&mut m, again, &out);
    assert_eq!(g2.get(), 2);
    assert_eq!(
        m.status().state,
        RegistrationState::Registered { generation: g2 }
    );
}

#[test]
fn heartbeat_suspend_is_a_level_with_edges() {
    let (mut m, g) = started(RegistrationConfig::default());
    let answer = |m: &mut Registration, suspend: bool, policy: bool| {
        let now = m.poll_timeout().unwrap().at;
        m.handle_timeout(now);
        assert_eq!(
            drain(m),
            vec![RegistrationAction::SendHeartbeat { generation: g }]
        );
        m.on_heartbeat_answer(
            now,
            g,
            Ok(HeartbeatAnswer {
                policy_updated: policy,
                should_suspend: suspend,
            }),
        );
        drain(m)
            .into_iter()
            .map(|a| match a {
                RegistrationAction::Agent(AgentCommand { kind, .. }) => kind,
                other => panic!("{other:?}"),
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(answer(&mut m, false, false), vec![]);
    assert_eq!(answer(&mut m, true, false), vec![AgentCommandKind::Suspend]);
    assert!(m.status().suspended);
    assert_eq!(answer(&mut m, true, false), vec![]);
    assert_eq!(
        answer(&mut m, false, true),
        vec![AgentCommandKind::Resume, AgentCommandKind::PolicyUpdated]
    );
    assert!(!m.status().suspended);
    // A suspend command sets the level: a heartbeat saying true is no edge.
    let now = m.poll_timeout().unwrap().at - Duration::from_secs(1);
    m.on_control_command(now, g, ControlCommand::Suspend);
    assert!(m.status().suspended);
    drain(&mut m);
    assert_eq!(answer(&mut m, true, false), vec![]);
    // Sequences run without gaps.
    assert_eq!(m.stats().agent_commands, 4);
}

#[test]
fn heartbeat_cadence_waits_for_a_slow_answer_then_sends_at_once() {
    let (mut m, g) = started(RegistrationConfig::default());
    assert_eq!(m.poll_timeout().unwrap().at, t(30_000));
    m.handle_timeout(t(30_000));
    drain(&mut m);
    // In flight: no heartbeat deadline, so no second heartbeat.
    assert_eq!(m.poll_timeout(), None);
    m.on_heartbeat_answer(t(65_000), g, Err(fail(CallCode::DeadlineExceeded)));
    assert_eq!(
        drain(&mut m),
        vec![RegistrationAction::SendHeartbeat { generation: g }]
    );
    m.on_heartbeat_answer(t(65_100), g, Ok(HeartbeatAnswer::default()));
    assert_eq!(m.poll_timeout().unwrap().at, t(95_000));
}

#[test]
fn stale_answers_change_nothing_but_the_count() {
    let mut m = Registration::new(RegistrationConfig::default(), t(0));
    // Before start.
    m.on_challenge(t(0), AttemptId::new(1), Ok(vec![1]));
    m.on_heartbeat_answer(t(0), Generation::new(1), Ok(HeartbeatAnswer::default()));
    m.on_control_command(t(0), Generation::new(1), ControlCommand::Kill);
    m.on_deregistered(t(0), Generation::new(1), Ok(()));
    assert!(drain(&mut m).is_empty());
    assert_eq!(m.stats().stale_answers, 4);
    assert_eq!(m.status().state, RegistrationState::Idle);
    m.on_start(t(0));
    let first = drain(&mut m);
    let attempt = challenge_of(&first);
    // Register answer before the challenge's: stale.
    m.on_registered(t(0), attempt, Ok(granted(1)));
    assert!(drain(&mut m).is_empty());
    let g = register(&mut m, t(0), &first);
    // A command for an old generation: stale.
    m.on_control_command(t(1), Generation::new(g.get() + 1), ControlCommand::Kill);
    assert!(drain(&mut m).is_empty());
    // A heartbeat answer with none in flight: stale.
    m.on_heartbeat_answer(
        t(1),
        g,
        Ok(HeartbeatAnswer {
            policy_updated: true,
            should_suspend: true,
        }),
    );
    assert!(drain(&mut m).is_empty());
    assert!(!m.status().suspended);
    assert_eq!(m.stats().stale_answers, 7);
}

#[test]
fn shutdown_is_bounded_and_final() {
    let (mut m, g) = started(RegistrationConfig::default());
    m.on_shutdown(t(1_000));
    assert_eq!(
        drain(&mut m),
        vec![RegistrationAction::Deregister { generation: g }]
    );
    m.on_shutdown(t(1_001));
    assert!(drain(&mut m).is_empty());
    let d = m.poll_timeout().unwrap();
    assert_eq!(
        (d.at, d.reason),
        (t(6_000), RegistrationTimer::ShutdownBound)
    );
    // Commands, heartbeats and closes are ignored while stopping.
    m.on_control_closed(t(2_000), g, None);
    m.on_token_refused(t(2_000), g);
    assert!(drain(&mut m).is_empty());
    m.handle_timeout(t(6_000));
    assert_eq!(drain(&mut m), vec![RegistrationAction::Stopped]);
    assert_eq!(m.poll_timeout(), None);
    // The late answer changes nothing.
    m.on_deregistered(t(7_000), g, Ok(()));
    assert!(drain(&mut m).is_empty());
    assert_eq!(m.status().state, RegistrationState::Stopped);

    // Answered before the bound: stopped at once.
    let (mut m, g) = started(RegistrationConfig::default());
    m.on_shutdown(t(10));
    drain(&mut m);
    m.on_deregistered(t(20), g, Err(fail(CallCode::Unavailable)));
    assert_eq!(drain(&mut m), vec![RegistrationAction::Stopped]);
    assert_eq!(m.poll_timeout(), None);

    // Not registered: stopped at once, the attempt in flight abandoned.
    let mut m = Registration::new(RegistrationConfig::default(), t(0));
    m.on_start(t(0));
    let attempt = challenge_of(&drain(&mut m));
    m.on_shutdown(t(5));
    assert_eq!(drain(&mut m), vec![RegistrationAction::Stopped]);
    m.on_challenge(t(6), attempt, Ok(vec![1]));
    assert!(drain(&mut m).is_empty());
    assert_eq!(m.poll_timeout(), None);
}

#[test]
fn control_stream_reopens_after_its_backoff_and_commands_are_exact() {
    let (mut m, g) = started(RegistrationConfig::default());
    m.on_control_opened(t(10), g);
    assert!(m.status().control_stream_open);
    for c in [
        ControlCommand::Suspend,
        ControlCommand::Unknown,
        ControlCommand::Kill,
        ControlCommand::PolicyUpdate,
        ControlCommand::Resume,
    ] {
        m.on_control_command(t(20), g, c);
    }
    let kinds: Vec<_> = drain(&mut m)
        .into_iter()
        .map(|a| match a {
            RegistrationAction::Agent(c) => (c.sequence, c.kind),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        kinds,
        vec![
            (1, AgentCommandKind::Suspend),
            (2, AgentCommandKind::Kill),
            (3, AgentCommandKind::PolicyUpdated),
            (4, AgentCommandKind::Resume),
        ]
    );
    assert_eq!(m.stats().unknown_commands, 1);
    m.on_control_closed(t(30), g, None);
    assert!(!m.status().control_stream_open);
    let reopen = m.control_reopen_at().unwrap();
    let d = m.poll_timeout().unwrap();
    assert_eq!((d.at, d.reason), (reopen, RegistrationTimer::ReopenControl));
    m.handle_timeout(reopen);
    assert_eq!(
        drain(&mut m),
        vec![RegistrationAction::OpenControl { generation: g }]
    );
    // A transient failure while opening also reopens later.
    m.on_control_closed(reopen, g, Some(fail(CallCode::Unavailable)));
    assert!(m.control_reopen_at().unwrap() > reopen);
    assert_eq!(m.token_generation(), Some(g));
}

#[test]
fn heartbeat_interval_is_clamped_and_defaulted() {
    for (sec, want) in [(0, 30), (-5, 30), (1, 1), (10, 10), (1_000_000, 3_600)] {
        let mut m = Registration::new(RegistrationConfig::default(), t(0));
        m.on_start(t(0));
        let attempt = challenge_of(&drain(&mut m));
        m.on_challenge(t(0), attempt, Ok(vec![]));
        drain(&mut m);
        m.on_registered(t(0), attempt, Ok(granted(sec)));
        drain(&mut m);
        assert_eq!(
            m.poll_timeout().unwrap().at,
            Timestamp::from_secs(want),
            "{sec}"
        );
    }
}
