//! Registering an agent at Agent Assembly's real gateway, as WIRE.md
//! describes it: a fresh Ed25519 key, its did:key as the agent id,
//! `RequestChallenge`, then `Register` with the signature over the nonce.
//! Uses aa-proto's generated client.

use std::io::Read;

use aa_proto::assembly::agent::v1::agent_lifecycle_service_client::AgentLifecycleServiceClient;
use aa_proto::assembly::agent::v1::{ChallengeRequest, RegisterRequest};
use aa_proto::assembly::common::v1::AgentId;
use ed25519_dalek::{Signer, SigningKey};

/// A registered agent: its id and credential token.
#[derive(Clone, Debug)]
pub struct Registered {
    /// org, team and the did:key agent id.
    pub agent: AgentId,
    /// The credential token the gateway issued.
    pub token: String,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A fresh Ed25519 signing key (seeded from the OS).
pub fn fresh_key() -> SigningKey {
    let mut seed = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut seed))
        .expect("read /dev/urandom");
    SigningKey::from_bytes(&seed)
}

/// `did:key:z` + base58btc(0xED 0x01 ++ public key).
pub fn did_key(key: &SigningKey) -> String {
    let mut bytes = vec![0xED, 0x01];
    bytes.extend_from_slice(key.verifying_key().as_bytes());
    format!("did:key:z{}", bs58::encode(bytes).into_string())
}

/// Register `key` as an agent of `org`/`team` at the gateway at `url`.
pub async fn register(
    url: &str,
    org: &str,
    team: &str,
    key: &SigningKey,
) -> Result<Registered, tonic::Status> {
    let mut client = AgentLifecycleServiceClient::connect(url.to_owned())
        .await
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let agent = AgentId {
        org_id: org.to_owned(),
        team_id: team.to_owned(),
        agent_id: did_key(key),
    };
    let public_key = hex(key.verifying_key().as_bytes());
    let challenge = client
        .request_challenge(ChallengeRequest {
            agent_id: Some(agent.clone()),
            public_key: public_key.clone(),
        })
        .await?
        .into_inner();
    let proof = key.sign(&challenge.nonce).to_bytes().to_vec();
    let answer = client
        .register(RegisterRequest {
            agent_id: Some(agent.clone()),
            name: "tether-interop".into(),
            framework: "tether".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            tool_names: vec!["read_file".into(), "rm_rf".into(), "deploy".into()],
            public_key,
            possession_proof: proof,
            registration_nonce: challenge.nonce,
            ..Default::default()
        })
        .await?
        .into_inner();
    Ok(Registered {
        agent,
        token: answer.credential_token,
    })
}
