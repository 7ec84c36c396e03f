//! `assembly.agent.v1.AgentLifecycleService` over gRPC: the wire glue over
//! the [challenge book](super::challenges), [proofs](super::proof) and the
//! [registry](super::registry).
//!
//! Guarantees:
//! - the service needs no credential to ask for a challenge or register;
//! - `RequestChallenge` refuses, with `INVALID_ARGUMENT` and a message
//!   saying what is wrong, a missing agent id, a key that is not 64
//!   lowercase hex characters of an Ed25519 key, and an agent id that is
//!   not the key's did:key;
//! - `Register` consumes the nonce whatever happens; an unknown, used,
//!   expired or foreign nonce and a proof that is not the key's signature
//!   of the nonce are `UNAUTHENTICATED`; a registered agent is
//!   `ALREADY_EXISTS` only under [`Reregistration::Refuse`](super::Reregistration);
//!   past the agent bound it is `RESOURCE_EXHAUSTED`;
//! - `Heartbeat`, `Deregister` and `ControlStream` need a token (metadata
//!   first, then the message's `credential_token`) that the gateway binds
//!   to the agent the request names (or, when it names none, to some
//!   agent); anything else is `UNAUTHENTICATED`, on an open gateway too.

use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use tether_proto::agent::agent_lifecycle_service_server::AgentLifecycleService;
use tether_proto::agent::{
    ChallengeRequest, ChallengeResponse, ControlStreamRequest, DeregisterRequest,
    DeregisterResponse, HeartbeatRequest, HeartbeatResponse, RegisterRequest, RegisterResponse,
};
use tether_proto::common::AgentId;
use tonic::metadata::MetadataMap;
use tonic::{Request, Response, Status};

use super::challenges::{ChallengeError, NONCE_LEN};
use super::control_stream::{self, ControlStream};
use super::proof::{
    check_did, check_possession, fresh_token, parse_public_key, random_bytes, ProofError,
};
use super::registry::RegistryError;
use super::ASSIGNED_POLICY;
use crate::auth::credential_from;
use crate::credentials::{agent_key, describe};
use crate::ops::AgentKey;
use crate::state::Shared;

/// The `AgentLifecycleService` of one gateway.
pub(crate) struct LifecycleSvc {
    shared: Arc<Shared>,
}

impl LifecycleSvc {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        LifecycleSvc { shared }
    }
}

fn proof_status(e: ProofError) -> Status {
    match e {
        ProofError::BadSignature => Status::unauthenticated(e.to_string()),
        ProofError::Random(_) => Status::unavailable(e.to_string()),
        _ => Status::invalid_argument(e.to_string()),
    }
}

fn registry_status(e: RegistryError) -> Status {
    match e {
        RegistryError::AlreadyRegistered(_) => Status::already_exists(e.to_string()),
        RegistryError::Full(_) => Status::resource_exhausted(e.to_string()),
    }
}

/// The agent and the key of a challenge or registration, checked.
fn claimed(agent_id: Option<&AgentId>, public_key: &str) -> Result<(AgentKey, [u8; 32]), Status> {
    let agent = agent_id
        .filter(|a| !a.agent_id.is_empty())
        .map(agent_key)
        .ok_or_else(|| Status::invalid_argument("agent_id (with the key's did:key) is required"))?;
    let key = parse_public_key(public_key).map_err(proof_status)?;
    check_did(&agent.agent_id, &key).map_err(proof_status)?;
    Ok((agent, key))
}

/// The agent that owns the request's token, which must be the agent the
/// request names (if it names one); and the token.
fn owner(
    shared: &Shared,
    metadata: &MetadataMap,
    body_token: &str,
    agent_id: Option<&AgentId>,
) -> Result<(AgentKey, String), Status> {
    let token = credential_from(|key| {
        metadata
            .get(key)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    })
    .or_else(|| (!body_token.is_empty()).then(|| body_token.to_owned()))
    .ok_or_else(|| {
        Status::unauthenticated(
            "missing credential (send credential_token, x-aa-credential-token or authorization: Bearer)",
        )
    })?;
    let Ok(Some(owner)) = shared.tokens.authenticate(Some(&token)) else {
        return Err(Status::unauthenticated("unknown credential"));
    };
    if let Some(named) = agent_id.filter(|a| !a.agent_id.is_empty()) {
        let named = agent_key(named);
        if named != owner {
            return Err(Status::unauthenticated(format!(
                "the credential does not belong to agent {}",
                describe(&named)
            )));
        }
    }
    Ok((owner, token))
}

fn unix_ms(at: SystemTime) -> i64 {
    at.duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[tonic::async_trait]
impl AgentLifecycleService for LifecycleSvc {
    async fn request_challenge(
        &self,
        request: Request<ChallengeRequest>,
    ) -> Result<Response<ChallengeResponse>, Status> {
        let r = request.into_inner();
        let (agent, key) = claimed(r.agent_id.as_ref(), &r.public_key)?;
        let nonce: [u8; NONCE_LEN] = random_bytes().map_err(proof_status)?;
        let lifecycle = &self.shared.lifecycle;
        let ttl = lifecycle.challenges.ttl();
        lifecycle
            .challenges
            .issue(nonce, agent.clone(), key, Instant::now());
        tracing::debug!(agent = %describe(&agent), "registration challenge issued");
        Ok(Response::new(ChallengeResponse {
            nonce: nonce.to_vec(),
            expires_at_unix_ms: unix_ms(SystemTime::now() + ttl),
        }))
    }

    async fn register(
        &self,
        request: Request<RegisterRequest>,
    ) -> Result<Response<RegisterResponse>, Status> {
        let r = request.into_inner();
        let lifecycle = &self.shared.lifecycle;
        let (agent, key) = match claimed(r.agent_id.as_ref(), &r.public_key) {
            Ok(claim) => claim,
            Err(status) => {
                // Consumed whatever happens: a nonce with a bad claim is
                // spent too (taking it for nobody always fails).
                let _ = lifecycle.challenges.take(
                    &r.registration_nonce,
                    &AgentKey::default(),
                    &[0; 32],
                    Instant::now(),
                );
                return Err(status);
            }
        };
        lifecycle
            .challenges
            .take(&r.registration_nonce, &agent, &key, Instant::now())
            .map_err(|e: ChallengeError| {
                tracing::debug!(agent = %describe(&agent), error = %e, "registration refused");
                Status::unauthenticated(e.to_string())
            })?;
        check_possession(&key, &r.registration_nonce, &r.possession_proof).map_err(|e| {
            tracing::debug!(agent = %describe(&agent), "registration refused: bad possession proof");
            proof_status(e)
        })?;
        let token = fresh_token().map_err(proof_status)?;
        let replaced = lifecycle
            .agents
            .register(&agent, token.clone(), &self.shared.tokens)
            .map_err(|e| {
                tracing::info!(agent = %describe(&agent), error = %e, "registration refused");
                registry_status(e)
            })?;
        tracing::info!(
            agent = %describe(&agent),
            name = %r.name.chars().take(128).collect::<String>(),
            replaced,
            "agent registered"
        );
        Ok(Response::new(RegisterResponse {
            credential_token: token,
            assigned_policy: ASSIGNED_POLICY.to_owned(),
            heartbeat_interval_sec: i64::try_from(lifecycle.heartbeat_interval.as_secs())
                .unwrap_or(i64::MAX)
                .max(1),
            parent_agent_id: r.parent_agent_id,
            team_id: Some(agent.team_id.clone()),
            root_agent_id: None,
        }))
    }

    async fn heartbeat(
        &self,
        request: Request<HeartbeatRequest>,
    ) -> Result<Response<HeartbeatResponse>, Status> {
        let (metadata, _, r) = request.into_parts();
        let (agent, _) = owner(
            &self.shared,
            &metadata,
            &r.credential_token,
            r.agent_id.as_ref(),
        )?;
        let (should_suspend, policy_updated) = self.shared.lifecycle.agents.heartbeat(&agent);
        tracing::trace!(
            agent = %describe(&agent),
            active_runs = r.active_runs,
            actions = r.actions_count,
            should_suspend,
            policy_updated,
            "heartbeat"
        );
        Ok(Response::new(HeartbeatResponse {
            policy_updated,
            should_suspend,
        }))
    }

    async fn deregister(
        &self,
        request: Request<DeregisterRequest>,
    ) -> Result<Response<DeregisterResponse>, Status> {
        let (metadata, _, r) = request.into_parts();
        let (agent, token) = owner(
            &self.shared,
            &metadata,
            &r.credential_token,
            r.agent_id.as_ref(),
        )?;
        let was_registered =
            self.shared
                .lifecycle
                .agents
                .deregister(&agent, &token, &self.shared.tokens);
        tracing::info!(
            agent = %describe(&agent),
            was_registered,
            reason = %r.reason.chars().take(256).collect::<String>(),
            "agent deregistered"
        );
        Ok(Response::new(DeregisterResponse {
            success: true,
            agent_id: agent.agent_id,
        }))
    }

    type ControlStreamStream = ControlStream;

    async fn control_stream(
        &self,
        request: Request<ControlStreamRequest>,
    ) -> Result<Response<Self::ControlStreamStream>, Status> {
        let (metadata, _, r) = request.into_parts();
        let (agent, _) = owner(
            &self.shared,
            &metadata,
            &r.credential_token,
            r.agent_id.as_ref(),
        )?;
        if self.shared.shutdown.is_triggered() {
            return Err(Status::unavailable("gateway is shutting down"));
        }
        let side = self
            .shared
            .lifecycle
            .agents
            .open_stream(&agent)
            .map_err(registry_status)?;
        Ok(Response::new(control_stream::stream(
            self.shared.clone(),
            agent,
            side,
        )))
    }
}
