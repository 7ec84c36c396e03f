//! Serves Agent Assembly's real gateway (the `aa-gateway` library,
//! `=0.0.1-rc.7`) over TCP, for the interop tests: the same library entry
//! point (`aa_gateway::server::serve_tcp`) its own binary's `legacy-grpc`
//! mode calls, with a durable agent registry, so a restarted gateway keeps
//! its agents as the real one does.
//!
//! Usage: `aa-gateway-serve POLICY_YAML LISTEN_ADDR REGISTRY_DB`.
//! Everything else comes from the environment the test sets: `HOME`,
//! `AA_AUDIT_DIR`, `AA_GATEWAY_DB_PATH`, `AA_OPCONTROL_NATS_URL`. Stops on
//! SIGTERM or SIGINT (or when killed).

use std::path::PathBuf;
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(policy), Some(listen), Some(db)) = (args.next(), args.next(), args.next()) else {
        return Err("usage: aa-gateway-serve POLICY_YAML LISTEN_ADDR REGISTRY_DB".into());
    };
    let storage = aa_gateway::storage::open_sqlite_backend_shared(&PathBuf::from(db)).await?;
    let storage: Arc<dyn aa_gateway::storage::StorageBackend> = storage;
    let registry = Arc::new(aa_gateway::AgentRegistry::new().with_storage(storage.clone()));
    registry.rehydrate_from_storage().await?;
    let approvals = aa_runtime::approval::ApprovalQueue::new();
    let (budget_alerts, _budget_rx) = tokio::sync::broadcast::channel(64);
    let (degradations, _degradation_rx) = tokio::sync::broadcast::channel(16);
    aa_gateway::server::serve_tcp(
        &PathBuf::from(policy),
        &listen,
        registry,
        approvals,
        budget_alerts,
        degradations,
        Some(storage),
    )
    .await
}
