//! The invalidation stream of the reference gateway, over real gRPC.

mod gateway_support;

use gateway_support::*;
use tether_gateway::auth::TokenTable;
use tether_gateway::rules::RuleTable;
use tether_gateway::Gateway;
use tether_proto::admin::admin_service_client::AdminServiceClient;
use tether_proto::admin::ListSubscribersRequest;
use tether_proto::approval::approval_service_client::ApprovalServiceClient;
use tether_proto::approval::{ApprovalDecisionType, DecideRequest};
use tether_proto::common::Decision;
use tether_proto::gateway::subscribe_request::Kind;
use tether_proto::gateway::{Decision as Verdict, SubscribeAck, SubscribeRequest};
use tether_proto::policy::policy_service_client::PolicyServiceClient;
use tonic::Code;

#[tokio::test]
async fn replays_after_last_seq_seen_then_streams_live() {
    let gw = start(Gateway::builder()).await;
    let admin = gw.admin();
    let ch = channel(&gw).await;

    let mut sub = subscribe(&ch, "asm-1", 0, Cred::None).await.unwrap();
    for v in 1..=3 {
        assert_eq!(admin.publish_invalidation("agent-a", v, None), 1);
    }
    for seq in 1..=3 {
        let ev = sub.expect().await;
        assert_eq!((ev.seq, ev.payload), (seq, invalidated("agent-a", seq)));
    }
    sub.ack(1).await;
    sub.ack(2).await;
    drop(sub);
    eventually(|| !admin.list_subscribers(None)[0].connected).await;

    // Published while the subscriber is away: kept in its ring.
    admin.publish_invalidation("", 4, None);
    admin.publish_invalidation("", 5, None);
    let mut sub = subscribe(&ch, "asm-1", 2, Cred::None).await.unwrap();
    let replayed: Vec<u64> = [sub.expect().await, sub.expect().await, sub.expect().await]
        .iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!(replayed, vec![3, 4, 5], "replay of everything after 2");
    admin.publish_invalidation("", 6, None);
    let live = sub.expect().await;
    assert_eq!((live.seq, live.payload), (6, invalidated("", 6)));
    gw.shutdown().await.unwrap();
}

/// The lifetime epoch in the `Subscribe` response headers: a decimal u64,
/// the same for every stream of one gateway, different for another gateway
/// (as for the same gateway restarted).
#[tokio::test]
async fn subscribe_announces_the_gateway_lifetime_epoch() {
    async fn epoch_of(ch: &tonic::transport::Channel, assembly_id: &str) -> u64 {
        let sub = subscribe(ch, assembly_id, 0, Cred::None).await.unwrap();
        let value = sub
            .metadata
            .get(tether_proto::GATEWAY_EPOCH_HEADER)
            .expect("x-tether-gateway-epoch header");
        assert_eq!(tether_proto::GATEWAY_EPOCH_HEADER, "x-tether-gateway-epoch");
        value.to_str().unwrap().parse().expect("a decimal u64")
    }
    let first = start(Gateway::builder()).await;
    let ch = channel(&first).await;
    let a = epoch_of(&ch, "asm-epoch-1").await;
    assert_eq!(
        epoch_of(&ch, "asm-epoch-2").await,
        a,
        "one lifetime, one epoch"
    );
    first.shutdown().await.unwrap();

    let second = start(Gateway::builder()).await;
    let b = epoch_of(&channel(&second).await, "asm-epoch-1").await;
    assert_ne!(a, b, "a new gateway lifetime, a new epoch");
    second.shutdown().await.unwrap();
}

#[tokio::test]
async fn acks_trim_the_ring_as_admin_list_subscribers_shows() {
    let gw = start(Gateway::builder().ring_capacity(8)).await;
    let ch = channel(&gw).await;
    let mut admin = AdminServiceClient::new(ch.clone());
    let mut sub = subscribe(&ch, "asm-ack", 0, Cred::None).await.unwrap();
    for v in 1..=3 {
        gw.admin().publish_invalidation("", v, None);
    }
    for _ in 0..3 {
        sub.expect().await;
    }
    let list = || async {
        admin
            .clone()
            .list_subscribers(ListSubscribersRequest::default())
            .await
            .unwrap()
            .into_inner()
            .subscribers
    };
    let before = list().await;
    assert_eq!(before.len(), 1);
    let s = &before[0];
    assert_eq!(
        (
            s.assembly_id.as_str(),
            s.last_seq_sent,
            s.last_acked_seq,
            s.lag,
            s.ring_size,
            s.ring_capacity,
            s.connected
        ),
        ("asm-ack", 3, 0, 3, 3, 8, true)
    );
    sub.ack(1).await;
    sub.ack(2).await;
    let admin_handle = gw.admin();
    eventually(|| admin_handle.list_subscribers(None)[0].acked_seq == 2).await;
    let after = list().await;
    let s = &after[0];
    assert_eq!((s.last_acked_seq, s.lag, s.ring_size), (2, 1, 1));
    // Team filter: nobody in another team.
    let other = admin
        .list_subscribers(ListSubscribersRequest {
            team_id: "elsewhere".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(other.subscribers.is_empty());
    gw.shutdown().await.unwrap();
}

#[tokio::test]
async fn bad_first_messages_are_invalid_argument() {
    let gw = start(Gateway::builder()).await;
    let ch = channel(&gw).await;
    let err = subscribe(&ch, "", 0, Cred::None).await.err().unwrap();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert!(err.message().contains("assembly_id"), "{err:?}");
    let ack_first = SubscribeRequest {
        assembly_id: "asm".into(),
        kind: Some(Kind::Ack(SubscribeAck { seq: 1 })),
    };
    let err = subscribe_with(&ch, ack_first, Cred::None)
        .await
        .err()
        .unwrap();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    let too_long = "x".repeat(5000);
    let err = subscribe(&ch, &too_long, 0, Cred::None)
        .await
        .err()
        .unwrap();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert!(gw.admin().list_subscribers(None).is_empty());
    gw.shutdown().await.unwrap();
}

#[tokio::test]
async fn credentials_are_required_and_both_header_forms_work() {
    let a = key("o", "t1", "a");
    let gw =
        start(Gateway::builder().tokens(TokenTable::required([("tok-a".to_owned(), a.clone())])))
            .await;
    let ch = channel(&gw).await;
    for cred in [Cred::None, Cred::Header("nope"), Cred::Bearer("nope")] {
        let err = subscribe(&ch, "asm", 0, cred).await.err().unwrap();
        assert_eq!(err.code(), Code::Unauthenticated, "{cred:?}: {err:?}");
    }
    let mut by_header = subscribe(&ch, "asm-h", 0, Cred::Header("tok-a"))
        .await
        .unwrap();
    let mut by_bearer = subscribe(&ch, "asm-b", 0, Cred::Bearer("tok-a"))
        .await
        .unwrap();
    let subs = gw.admin().list_subscribers(Some("t1"));
    assert_eq!(
        subs.len(),
        2,
        "both subscribed in the token's team: {subs:?}"
    );
    assert_eq!(gw.admin().publish_invalidation("", 1, Some("t1")), 2);
    assert_eq!(by_header.expect().await.seq, 1);
    assert_eq!(by_bearer.expect().await.seq, 1);

    // A gateway that forgot its tokens refuses them, until told again.
    gw.admin().forget_tokens();
    let err = subscribe(&ch, "asm-h", 1, Cred::Header("tok-a"))
        .await
        .err()
        .unwrap();
    assert_eq!(err.code(), Code::Unauthenticated);
    gw.admin().add_token("tok-a2", a);
    subscribe(&ch, "asm-h", 1, Cred::Bearer("tok-a2"))
        .await
        .unwrap();
    gw.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_approval_verdict_reaches_only_the_approvals_team() {
    let a = key("o", "team-a", "a");
    let b = key("o", "team-b", "b");
    let gw = start(
        Gateway::builder()
            .rules(RuleTable::parse("approve deploy 30\n").unwrap())
            .tokens(TokenTable::required([
                ("tok-a".to_owned(), a.clone()),
                ("tok-b".to_owned(), b.clone()),
            ])),
    )
    .await;
    let ch = channel(&gw).await;
    let mut sub_a = subscribe(&ch, "asm-a", 0, Cred::Header("tok-a"))
        .await
        .unwrap();
    let mut sub_b = subscribe(&ch, "asm-b", 0, Cred::Header("tok-b"))
        .await
        .unwrap();

    let checked = PolicyServiceClient::new(ch.clone())
        .check_action(request(
            tool_call(Some(&a), "deploy"),
            Cred::Header("tok-a"),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(checked.decision, Decision::Pending as i32);
    let id = checked.approval_id;
    let decided = ApprovalServiceClient::new(ch.clone())
        .decide(DecideRequest {
            request_id: id.clone(),
            decision: ApprovalDecisionType::Approved as i32,
            decided_by: "reviewer".into(),
            reason: "fine".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(decided.success, "{decided:?}");
    let ev = sub_a.expect().await;
    assert_eq!((ev.seq, ev.payload), (1, resolved(&id, Verdict::Approved)));

    // Team b saw nothing: its first event is the next broadcast, at seq 1.
    assert_eq!(gw.admin().publish_invalidation("", 9, None), 2);
    let ev = sub_b.expect().await;
    assert_eq!((ev.seq, ev.payload), (1, invalidated("", 9)));
    assert_eq!(sub_a.expect().await.seq, 2);

    // Team b can neither replay nor take over team a's subscriber.
    let err = subscribe(&ch, "asm-a", 0, Cred::Header("tok-b"))
        .await
        .err()
        .unwrap();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    admin_publish_reaches(&gw, &mut sub_a, 3).await;
    gw.shutdown().await.unwrap();
}

/// Team a's stream is still the one receiving: its next event is `seq`.
async fn admin_publish_reaches(gw: &tether_gateway::RunningGateway, sub: &mut Sub, seq: u64) {
    gw.admin().publish_invalidation("", seq, Some("team-a"));
    assert_eq!(sub.expect().await.seq, seq);
}

// Current-thread runtime: the publishes below run back to back, before the
// server task can drain anything, so the subscriber is deterministically
// behind.
#[tokio::test(flavor = "current_thread")]
async fn a_lagging_subscriber_has_its_stream_ended_and_can_resubscribe() {
    let gw = start(Gateway::builder().ring_capacity(2).live_capacity(2)).await;
    let admin = gw.admin();
    let ch = channel(&gw).await;
    let mut sub = subscribe(&ch, "asm-slow", 0, Cred::None).await.unwrap();
    for v in 1..=10 {
        admin.publish_invalidation("", v, None);
    }
    // The stream's queue holds ring + live = 4 events; the 5th closed it.
    for seq in 1..=4 {
        assert_eq!(sub.expect().await.seq, seq);
    }
    let end = sub.next().await.unwrap_err();
    assert_eq!(end.code(), Code::Unavailable, "{end:?}");
    let info = &admin.list_subscribers(None)[0];
    assert_eq!(
        (info.lag_closes, info.connected, info.last_seq),
        (1, false, 10)
    );

    // Resubscribing from 4: the ring only has the last two (a gap the client
    // detects), then live events continue.
    let mut sub = subscribe(&ch, "asm-slow", 4, Cred::None).await.unwrap();
    assert_eq!(sub.expect().await.seq, 9);
    assert_eq!(sub.expect().await.seq, 10);
    admin.publish_invalidation("", 11, None);
    assert_eq!(sub.expect().await.seq, 11);
    gw.shutdown().await.unwrap();
}
