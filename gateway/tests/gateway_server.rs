//! The reference gateway as a server: health, reflection, the admin
//! service and its token, status, and graceful shutdown.

mod gateway_support;

use std::time::Duration;

use gateway_support::*;
use tether_gateway::auth::TokenTable;
use tether_gateway::rules::RuleTable;
use tether_gateway::Gateway;
use tether_proto::admin::admin_service_client::AdminServiceClient;
use tether_proto::admin::{
    KillAgentRequest, ListAgentsRequest, NotifyPolicyUpdateRequest, PublishApprovalResolvedRequest,
    PublishInvalidationRequest, ResumeAgentRequest, StatusRequest, SuspendAgentRequest,
};
use tether_proto::approval::approval_service_client::ApprovalServiceClient;
use tether_proto::approval::{ListPendingRequest, WatchApprovalsRequest};
use tether_proto::gateway::Decision as Verdict;
use tether_proto::policy::policy_service_client::PolicyServiceClient;
use tether_proto::policy::OpControlSubscribeRequest;
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
use tonic_reflection::pb::v1::ServerReflectionRequest;

fn authed<T>(msg: T) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    r.metadata_mut()
        .insert("x-tether-admin-token", "s3cret".parse().unwrap());
    r
}

const SERVICES: [&str; 5] = [
    "assembly.gateway.v1.InvalidationService",
    "assembly.policy.v1.PolicyService",
    "assembly.agent.v1.AgentLifecycleService",
    "assembly.approval.v1.ApprovalService",
    "tether.admin.v1.AdminService",
];

#[tokio::test]
async fn health_reports_serving_for_the_server_and_every_service() {
    let gw = start(Gateway::builder()).await;
    let mut health = HealthClient::new(channel(&gw).await);
    for service in std::iter::once("").chain(SERVICES) {
        let r = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(r.status, ServingStatus::Serving as i32, "{service:?}");
    }
    let unknown = health
        .check(HealthCheckRequest {
            service: "no.such.Service".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
    gw.shutdown().await.unwrap();
}

#[tokio::test]
async fn reflection_lists_every_service() {
    let gw = start(Gateway::builder()).await;
    let mut reflection = ServerReflectionClient::new(channel(&gw).await);
    let ask = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut answers = reflection
        .server_reflection_info(tokio_stream::iter([ask]))
        .await
        .unwrap()
        .into_inner();
    let answer = within(answers.message()).await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = answer.message_response else {
        panic!("unexpected answer {answer:?}");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for service in SERVICES.iter().chain(&["grpc.health.v1.Health"]) {
        assert!(
            names.iter().any(|n| n == service),
            "{service} missing from {names:?}"
        );
    }
    gw.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_admin_service_requires_its_token_and_reports_status() {
    let gw = start(Gateway::builder().admin_token("s3cret")).await;
    let ch = channel(&gw).await;
    let mut admin = AdminServiceClient::new(ch.clone());
    let err = admin.status(StatusRequest {}).await.unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    let mut wrong = tonic::Request::new(StatusRequest {});
    wrong
        .metadata_mut()
        .insert("x-tether-admin-token", "s3cre7".parse().unwrap());
    assert_eq!(
        admin.status(wrong).await.unwrap_err().code(),
        Code::Unauthenticated
    );
    // The reviewer's service stays open unless configured otherwise.
    ApprovalServiceClient::new(ch.clone())
        .list_pending(ListPendingRequest {})
        .await
        .unwrap();

    // An open gateway still honours known tokens: this subscriber is in
    // team "t".
    gw.admin().add_token("tok", key("o", "t", "a"));
    let mut sub = subscribe(&ch, "asm", 0, Cred::Header("tok")).await.unwrap();
    let published = admin
        .publish_invalidation(authed(PublishInvalidationRequest {
            agent_id: "a".into(),
            policy_version: 7,
            team_id: String::new(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(published.subscribers, 1);
    assert_eq!(sub.expect().await.payload, invalidated("a", 7));
    let none = admin
        .publish_invalidation(authed(PublishInvalidationRequest {
            agent_id: String::new(),
            policy_version: 8,
            team_id: "other-team".into(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(none.subscribers, 0);

    // A verdict for an unknown approval needs an explicit team.
    let err = admin
        .publish_approval_resolved(authed(PublishApprovalResolvedRequest {
            request_id: "apr-x".into(),
            decision: Verdict::Approved as i32,
            team_id: String::new(),
        }))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = admin
        .publish_approval_resolved(authed(PublishApprovalResolvedRequest {
            request_id: "apr-x".into(),
            decision: Verdict::Unspecified as i32,
            team_id: String::new(),
        }))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let sent = admin
        .publish_approval_resolved(authed(PublishApprovalResolvedRequest {
            request_id: "apr-x".into(),
            decision: Verdict::Approved as i32,
            team_id: "t".into(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(sent.subscribers, 1);
    assert_eq!(
        sub.expect().await.payload,
        resolved("apr-x", Verdict::Approved)
    );

    let status = admin
        .status(authed(StatusRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status.version, env!("CARGO_PKG_VERSION"));
    assert!(status.started_at_unix_ms > 0);
    assert_eq!(
        (
            status.invalidation_subscribers,
            status.invalidation_streams,
            status.pending_approvals
        ),
        (1, 1, 0)
    );
    assert_eq!(
        (
            status.op_control_sequence,
            status.ops_tracked,
            status.halted_all
        ),
        (0, 0, false)
    );
    gw.shutdown().await.unwrap();
}

#[tokio::test]
async fn approvals_can_require_the_admin_token() {
    let gw = start(
        Gateway::builder()
            .admin_token("s3cret")
            .approvals_need_admin_token(true),
    )
    .await;
    let ch = channel(&gw).await;
    let err = ApprovalServiceClient::new(ch)
        .list_pending(ListPendingRequest {})
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    gw.shutdown().await.unwrap();
}

#[tokio::test]
async fn shutdown_ends_every_open_stream_and_held_call_promptly() {
    let agent = key("o", "t", "a");
    let gw = start(
        Gateway::builder()
            .rules(RuleTable::parse("hold pay 60\n").unwrap())
            .tokens(TokenTable::required([("tok".to_owned(), agent.clone())]))
            .shutdown_grace(Duration::from_secs(5)),
    )
    .await;
    let ch = channel(&gw).await;
    let mut sub = subscribe(&ch, "asm", 0, Cred::Header("tok")).await.unwrap();
    let mut ops = PolicyServiceClient::new(ch.clone())
        .op_control_stream(request(
            OpControlSubscribeRequest {
                agent_id: Some(wire(&agent)),
            },
            Cred::Header("tok"),
        ))
        .await
        .unwrap()
        .into_inner();
    let mut reviewer = ApprovalServiceClient::new(ch.clone());
    let mut watch = reviewer
        .watch_approvals(WatchApprovalsRequest {})
        .await
        .unwrap()
        .into_inner();
    let held = tokio::spawn({
        let ch = ch.clone();
        let agent = agent.clone();
        async move {
            PolicyServiceClient::new(ch)
                .check_action(request(tool_call(Some(&agent), "pay"), Cred::Header("tok")))
                .await
        }
    });
    within(watch.message()).await.unwrap().unwrap();
    let status = gw.admin().status();
    assert_eq!(
        (status.invalidation_streams, status.op_control_streams),
        (1, 1)
    );

    let admin = gw.admin();
    let started = std::time::Instant::now();
    within(gw.shutdown()).await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );

    let end = sub.next().await.unwrap_err();
    assert_eq!(end.code(), Code::Unavailable, "{end:?}");
    assert_eq!(
        within(ops.message()).await.unwrap_err().code(),
        Code::Unavailable
    );
    assert_eq!(
        within(watch.message()).await.unwrap_err().code(),
        Code::Unavailable
    );
    let held = within(held).await.unwrap().unwrap_err();
    assert_eq!(held.code(), Code::Unavailable, "{held:?}");
    let status = admin.status();
    assert_eq!(
        (status.invalidation_streams, status.op_control_streams),
        (0, 0)
    );
}

#[tokio::test]
async fn the_admin_service_commands_agents_and_lists_them() {
    let gw = start(Gateway::builder()).await;
    let mut admin = AdminServiceClient::new(channel(&gw).await);
    let who = wire(&key("o", "t", "a"));

    let err = admin
        .suspend_agent(SuspendAgentRequest {
            agent_id: None,
            reason: "x".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);

    let r = admin
        .suspend_agent(SuspendAgentRequest {
            agent_id: Some(who.clone()),
            reason: "audit".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(r.suspended && !r.delivered, "{r:?}");
    let listed = admin
        .list_agents(ListAgentsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .agents;
    assert_eq!(listed.len(), 1);
    assert!(listed[0].suspended && !listed[0].registered && !listed[0].control_stream);
    assert_eq!(listed[0].agent_id.as_ref(), Some(&who));
    let other_team = admin
        .list_agents(ListAgentsRequest {
            team_id: "nope".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .agents;
    assert!(other_team.is_empty());

    for r in [
        admin
            .kill_agent(KillAgentRequest {
                agent_id: Some(who.clone()),
                reason: "bye".into(),
            })
            .await
            .unwrap()
            .into_inner(),
        admin
            .notify_policy_update(NotifyPolicyUpdateRequest {
                agent_id: Some(who.clone()),
                policy_id: "p2".into(),
            })
            .await
            .unwrap()
            .into_inner(),
    ] {
        assert!(r.suspended && !r.delivered, "{r:?}");
    }
    let r = admin
        .resume_agent(ResumeAgentRequest {
            agent_id: Some(who.clone()),
            note: "ok".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!r.suspended && !r.delivered, "{r:?}");
    let status = admin.status(StatusRequest {}).await.unwrap().into_inner();
    assert_eq!(
        (status.registered_agents, status.agent_control_streams),
        (0, 0)
    );
    assert!(gw.admin().agents().is_empty());
    gw.shutdown().await.unwrap();
}
