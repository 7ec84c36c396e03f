//! The demo steps that exercise the gateway link: the cache, invalidation,
//! approvals, the kill switch and a gateway restart.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tether_gateway::desk::Review;
use tether_tokio::client::{
    Decision, InvalidateAllReason, InvalidationSink, KillSwitchDown, OpState, PolicyChange,
    ToolCall, VerdictSource,
};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use super::timeline::{human, Timeline};
use super::{eventually, gateway_builder, Stage};

const WAIT: Duration = Duration::from_secs(10);

/// A sink that reports when each invalidation reached the agent.
struct Arrivals(mpsc::UnboundedSender<(Instant, Option<InvalidateAllReason>)>);

#[async_trait]
impl InvalidationSink for Arrivals {
    async fn on_policy_change(&self, _change: &PolicyChange) {
        let _ = self.0.send((Instant::now(), None));
    }
    async fn invalidate_all(&self, reason: InvalidateAllReason) {
        let _ = self.0.send((Instant::now(), Some(reason)));
    }
}

pub(crate) async fn cache_then_invalidate(tl: &mut Timeline, s: &Stage) {
    tl.section("1. a tool call allowed, then served from the cache");
    let call = ToolCall::new("read_file").with_args(r#"{"path":"README.md"}"#);
    let first = s.tether.check("trace-1:span-1", &call).await;
    let second = s.tether.check("trace-1:span-2", &call).await;
    let held = match (&first, &second) {
        (Ok(a), Ok(b)) => {
            tl.event(
                &format!("check read_file -> {:?} by {:?}", a.decision, a.source),
                Some(a.latency),
            );
            tl.event(
                &format!("check read_file -> {:?} by {:?}", b.decision, b.source),
                Some(b.latency),
            );
            a.allowed() && a.source == VerdictSource::Gateway && b.source == VerdictSource::Cache
        }
        _ => false,
    };
    let measured = match (&first, &second) {
        (Ok(a), Ok(b)) => format!(
            "gateway {} then cache {}",
            human(a.latency),
            human(b.latency)
        ),
        (Err(e), _) | (_, Err(e)) => format!("check failed: {e}"),
    };
    tl.verdict("allowed decision cached", held, measured);

    tl.section("2. a policy change invalidates that decision");
    let (tx, mut rx) = mpsc::unbounded_channel();
    s.tether.add_sink(Arc::new(Arrivals(tx)));
    let admin = s.gateway.as_ref().expect("gateway up").admin();
    let published = Instant::now();
    admin.publish_invalidation(&super::agent_id(), 2, None);
    tl.event("operator published PolicyInvalidated(the agent, v2)", None);
    let arrived = tokio::time::timeout(WAIT, rx.recv()).await;
    let latency = match arrived {
        Ok(Some((at, None))) => Some(at - published),
        _ => None,
    };
    let after = s.tether.check("trace-1:span-3", &call).await;
    let refetched = matches!(&after, Ok(v) if v.source == VerdictSource::Gateway);
    if let Ok(v) = &after {
        tl.event(
            &format!(
                "check read_file -> {:?} by {:?} (cache entry gone)",
                v.decision, v.source
            ),
            Some(v.latency),
        );
    }
    let held = latency.is_some_and(|l| l < Duration::from_secs(1)) && refetched;
    tl.verdict(
        "invalidation drops the cached decision",
        held,
        latency.map_or("never arrived".into(), |l| {
            format!("push to apply {}", human(l))
        }),
    );
}

pub(crate) async fn approvals(tl: &mut Timeline, s: &Stage) {
    let admin = s.gateway.as_ref().expect("gateway up").admin();
    tl.section("3. a tool call held for approval, approved by a reviewer");
    let t = s.tether.clone();
    let waiting =
        tokio::spawn(async move { t.check("trace-3:span-1", &ToolCall::new("deploy")).await });
    let pending = eventually(WAIT, || !admin.pending().is_empty()).await;
    let mut held = false;
    let mut measured = "no approval appeared at the gateway".to_owned();
    if pending {
        let id = admin.pending()[0].request_id.clone();
        tl.event(
            &format!("gateway answered PENDING; approval {id} waits for a reviewer"),
            None,
        );
        let decided = Instant::now();
        let ok = admin.decide(&id, Review::Approved).is_ok();
        tl.event(&format!("reviewer approved {id}"), None);
        if let Ok(Ok(Ok(v))) = tokio::time::timeout(WAIT, waiting).await {
            let release = decided.elapsed();
            tl.event(
                &format!("check deploy -> {:?} by {:?}", v.decision, v.source),
                Some(v.latency),
            );
            held = ok && v.allowed() && matches!(v.source, VerdictSource::Reviewer { .. });
            measured = format!("decide to release {}", human(release));
        }
    }
    tl.verdict("approval releases the held call", held, measured);

    tl.section("4. an approval nobody answers falls back at its deadline");
    let v = s
        .tether
        .check("trace-4:span-1", &ToolCall::new("deploy"))
        .await;
    let (held, measured) = match &v {
        Ok(v) => {
            let id = match &v.source {
                VerdictSource::ApprovalDeadline { approval_id } => Some(approval_id.clone()),
                _ => None,
            };
            let still_pending = id
                .as_ref()
                .is_some_and(|id| admin.pending().iter().any(|p| &p.request_id == id));
            tl.event(
                &format!(
                    "check deploy -> {:?} by {:?}: {}",
                    v.decision, v.source, v.reason
                ),
                Some(v.latency),
            );
            tl.event(
                &format!(
                    "approval still PENDING at the gateway: {still_pending} (nobody denied it)"
                ),
                None,
            );
            (
                id.is_some()
                    && still_pending
                    && v.decision == Decision::Deny
                    && v.latency >= Duration::from_millis(1500),
                format!(
                    "fallback after {}, approval still pending",
                    human(v.latency)
                ),
            )
        }
        Err(e) => (false, format!("check failed: {e}")),
    };
    tl.verdict("deadline means pending, not denied", held, measured);
}

pub(crate) async fn kill_switch(tl: &mut Timeline, s: &Stage) {
    let admin = s.gateway.as_ref().expect("gateway up").admin();
    let op = "trace-5:span-1";
    let call = ToolCall::new("search");
    tl.section("5. an op paused, resumed, terminated; still terminated after a partition");
    let _ = admin.pause(op, super::agent_key());
    let paused = eventually(WAIT, || s.tether.ops().state(op) == OpState::Paused).await;
    tl.event("operator paused the op", None);
    let t = s.tether.clone();
    let waiting = tokio::spawn(async move { t.check(op, &ToolCall::new("search")).await });
    let blocked = eventually(WAIT, || s.tether.ops().waiting() == 1).await;
    tl.event(
        &format!("the next check waits on the pause: {blocked}"),
        None,
    );
    let resumed_at = Instant::now();
    let _ = admin.resume(op, super::agent_key());
    let released = tokio::time::timeout(WAIT, waiting).await;
    let resumed_ok = matches!(&released, Ok(Ok(Ok(v))) if v.allowed());
    tl.event(
        "operator resumed: the waiting check ran",
        Some(resumed_at.elapsed()),
    );
    tl.verdict(
        "pause holds a check until resume",
        paused && blocked && resumed_ok,
        format!("resume to release {}", human(resumed_at.elapsed())),
    );

    let _ = admin.terminate(op, super::agent_key());
    let terminated = eventually(WAIT, || s.tether.ops().state(op) == OpState::Terminated).await;
    let v = s.tether.check(op, &call).await;
    let at_once = matches!(&v, Ok(v) if v.source == VerdictSource::Terminated);
    let latency = v.as_ref().map(|v| v.latency).unwrap_or_default();
    tl.event(
        "operator terminated the op: the next check fails at once",
        Some(latency),
    );
    tl.verdict(
        "terminate fails at once",
        terminated && at_once,
        format!("check {}", human(latency)),
    );

    s.proxy.cut();
    let mut st = s.tether.watch_status();
    let cut = tokio::time::timeout(WAIT, st.wait_for(|x| !x.op_control.connected))
        .await
        .is_ok();
    tl.event("network cut between agent and gateway", None);
    let cut_at = Instant::now();
    let down = s.tether.status().kill_switch;
    let says_down =
        !down.reachable && matches!(down.unreachable, Some(KillSwitchDown::StreamLost { .. }));
    tl.event(
        &format!(
            "status: a halt cannot reach the agent now: {}",
            down.unreachable
                .as_ref()
                .map_or_else(|| "reachable".to_owned(), |w| w.to_string())
        ),
        None,
    );
    s.proxy.restore();
    let back = tokio::time::timeout(
        WAIT,
        st.wait_for(|x| x.op_control.connected && x.invalidation.connected),
    )
    .await
    .is_ok();
    tl.event(
        "network restored: both streams reconnected (jittered backoff)",
        Some(cut_at.elapsed()),
    );
    let up = s.tether.status().kill_switch;
    tl.event(
        &format!(
            "status: the kill switch reaches the agent again: {}",
            up.reachable
        ),
        None,
    );
    tl.verdict(
        "the status says whether a halt can reach the agent",
        says_down && up.reachable && up.unreachable.is_none(),
        format!(
            "unreachable for {}",
            human(up.since.duration_since(down.since).unwrap_or_default())
        ),
    );
    let still = s.tether.ops().state(op) == OpState::Terminated
        && matches!(s.tether.check(op, &call).await, Ok(v) if v.source == VerdictSource::Terminated);
    tl.verdict(
        "terminate survives a reconnect",
        cut && back && still,
        format!("reconnected in {}", human(cut_at.elapsed())),
    );
}

pub(crate) async fn lifecycle_suspend(tl: &mut Timeline, s: &Stage) {
    let admin = s.gateway.as_ref().expect("gateway up").admin();
    tl.section("6. the gateway suspends the whole agent through its lifecycle control stream");
    let agent = super::agent_key();
    let op = "trace-6:span-1";
    let sent_at = Instant::now();
    let _ = admin.suspend_agent(&agent, "budget exceeded");
    let mut st = s.tether.watch_status();
    let suspended = tokio::time::timeout(
        WAIT,
        st.wait_for(|x| x.registration.as_ref().is_some_and(|r| r.suspended)),
    )
    .await
    .is_ok_and(|r| r.is_ok());
    tl.event(
        "operator suspended the agent: every op of it is paused",
        Some(sent_at.elapsed()),
    );
    let t = s.tether.clone();
    let waiting = tokio::spawn(async move { t.check(op, &ToolCall::new("read_file")).await });
    let blocked = eventually(WAIT, || s.tether.ops().waiting() == 1).await;
    tl.event(
        &format!("a new check waits on the suspension: {blocked}"),
        None,
    );
    let resumed_at = Instant::now();
    let _ = admin.resume_agent(&agent, "budget reset");
    let released = tokio::time::timeout(WAIT, waiting).await;
    let ran = matches!(&released, Ok(Ok(Ok(v))) if v.allowed());
    tl.event(
        "operator resumed the agent: the waiting check ran",
        Some(resumed_at.elapsed()),
    );
    tl.verdict(
        "an agent suspend holds every op until resume",
        suspended && blocked && ran,
        format!("resume to release {}", human(resumed_at.elapsed())),
    );
}

pub(crate) async fn gateway_restart(tl: &mut Timeline, s: &mut Stage) {
    tl.section("7. the gateway restarts mid-stream (and forgets every token)");
    let registrations_before = s
        .tether
        .status()
        .registration
        .map(|r| r.registrations)
        .unwrap_or_default();
    let (tx, mut rx) = mpsc::unbounded_channel();
    s.tether.add_sink(Arc::new(Arrivals(tx)));
    let before = s.tether.status().invalidation;
    if let Some(gw) = s.gateway.take() {
        gw.admin().publish_invalidation("", 3, None);
        let _ = gw.shutdown().await;
    }
    let down_at = Instant::now();
    tl.event("gateway stopped", None);
    let mut st = s.tether.watch_status();
    let _ = tokio::time::timeout(WAIT, st.wait_for(|x| !x.invalidation.connected)).await;
    let listener = TcpListener::bind(("127.0.0.1", s.port)).await;
    let gw = match listener {
        Ok(l) => gateway_builder().serve(l).await.ok(),
        Err(_) => None,
    };
    let Some(gw) = gw else {
        tl.verdict(
            "restart detected, agent resynchronised",
            false,
            "could not restart the gateway on its port".into(),
        );
        return;
    };
    tl.event(
        &format!(
            "a new gateway process is serving on port {} (sequence starts at 1 again)",
            s.port
        ),
        None,
    );
    let admin = gw.admin();
    s.gateway = Some(gw);
    let resubscribed = super::eventually(WAIT, || {
        admin.list_subscribers(None).iter().any(|x| x.connected)
    })
    .await;
    let reconnect = down_at.elapsed();
    tl.event("agent resubscribed with jittered backoff", Some(reconnect));
    admin.publish_invalidation("", 1, None);
    let mut restart_seen = false;
    let deadline = Instant::now() + WAIT;
    while let Ok(Some((_, reason))) = tokio::time::timeout_at(deadline.into(), rx.recv()).await {
        if reason == Some(InvalidateAllReason::GatewayRestart) {
            restart_seen = true;
            break;
        }
    }
    let mut st = s.tether.watch_status();
    let counted = tokio::time::timeout(
        WAIT,
        st.wait_for(|x| x.invalidation.restarts > before.restarts),
    )
    .await
    .is_ok();
    let after = s.tether.status().invalidation;
    tl.event(
        &format!(
            "restart detected (seq 1 after {}): every cached decision invalidated; reconnects so far: {}",
            before.last_seq, after.reconnects
        ),
        None,
    );
    let op_still = s.tether.ops().state("trace-5:span-1") == OpState::Terminated;
    tl.event(
        &format!("the terminated op is still terminated locally: {op_still}"),
        None,
    );
    let registrations = s
        .tether
        .status()
        .registration
        .map(|r| r.registrations)
        .unwrap_or_default();
    tl.event(
        &format!(
            "the new gateway knew no token: the agent registered again (registrations: {registrations_before} -> {registrations})"
        ),
        None,
    );
    let works = matches!(
        s.tether.check("trace-7:span-1", &ToolCall::new("read_file")).await,
        Ok(v) if v.allowed() && v.source == VerdictSource::Gateway
    );
    tl.verdict(
        "restart detected, agent registered again and resynchronised",
        resubscribed
            && restart_seen
            && counted
            && after.restarts == before.restarts + 1
            && registrations > registrations_before
            && op_still
            && works,
        format!("back in {}", human(reconnect)),
    );
}
