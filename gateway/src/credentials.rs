//! Credentials on the wire: reading a caller's token from tonic request
//! metadata, checking it against the [`TokenTable`], converting agent ids,
//! and guarding operator services with the admin token.
//!
//! Guarantees:
//! - `x-aa-credential-token` is preferred over `authorization: Bearer`
//!   (see [`credential_from`]); a token in a request body is used only when
//!   the metadata carries none;
//! - when credentials are required, a missing or unknown token is refused
//!   with `UNAUTHENTICATED`, never let through;
//! - a caller that did authenticate may act only as its own agent: a request
//!   naming another org/team/agent triple is refused with
//!   `PERMISSION_DENIED`;
//! - the admin token is compared in constant time.

use tether_proto::common::AgentId;
use tonic::metadata::MetadataMap;
use tonic::Status;

use super::auth::{credential_from, AuthError, TokenTable};
use super::ops::AgentKey;

/// The metadata key carrying the admin token.
pub const ADMIN_TOKEN_HEADER: &str = "x-tether-admin-token";

/// Who is calling, as far as the gateway can tell.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Caller {
    /// A known token: the agent it is bound to.
    Agent(AgentKey),
    /// No (or an unknown) token on a gateway that does not require one.
    Anonymous,
}

impl Caller {
    /// The team (tenant) the caller belongs to: its token's team, or `""`
    /// for an anonymous caller.
    pub(crate) fn team(&self) -> &str {
        match self {
            Caller::Agent(a) => &a.team_id,
            Caller::Anonymous => "",
        }
    }

    /// The agent the caller acts as. `requested` is the agent id in the
    /// request: an authenticated caller must name itself (or nothing); an
    /// anonymous one is taken at its word. `None` when neither says.
    pub(crate) fn acting_as(
        &self,
        requested: Option<&AgentId>,
    ) -> Result<Option<AgentKey>, Status> {
        let requested = requested.map(agent_key);
        match (self, requested) {
            (Caller::Agent(own), Some(req)) if req != *own => {
                Err(Status::permission_denied(format!(
                    "the credential belongs to agent {}, not to {}",
                    describe(own),
                    describe(&req)
                )))
            }
            (Caller::Agent(own), _) => Ok(Some(own.clone())),
            (Caller::Anonymous, req) => Ok(req),
        }
    }
}

/// Authenticate a request from its metadata, falling back to `body_token`
/// (a token carried in the message itself) when the metadata has none.
pub(crate) fn authenticate(
    tokens: &TokenTable,
    metadata: &MetadataMap,
    body_token: Option<&str>,
) -> Result<Caller, Status> {
    let token = credential_from(|key| {
        metadata
            .get(key)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    })
    .or_else(|| body_token.filter(|t| !t.is_empty()).map(str::to_owned));
    match tokens.authenticate(token.as_deref()) {
        Ok(Some(agent)) => Ok(Caller::Agent(agent)),
        Ok(None) => Ok(Caller::Anonymous),
        Err(e @ (AuthError::Missing | AuthError::Unknown)) => {
            Err(Status::unauthenticated(e.to_string()))
        }
    }
}

/// The gateway's key for a wire agent id.
pub fn agent_key(id: &AgentId) -> AgentKey {
    AgentKey {
        org_id: id.org_id.clone(),
        team_id: id.team_id.clone(),
        agent_id: id.agent_id.clone(),
    }
}

/// The wire agent id of a key.
pub fn agent_id(key: &AgentKey) -> AgentId {
    AgentId {
        org_id: key.org_id.clone(),
        team_id: key.team_id.clone(),
        agent_id: key.agent_id.clone(),
    }
}

/// `org/team/agent`, for messages.
pub(crate) fn describe(key: &AgentKey) -> String {
    format!("{}/{}/{}", key.org_id, key.team_id, key.agent_id)
}

/// A tonic interceptor that requires `x-tether-admin-token` to equal the
/// configured token; with no token configured every call passes.
#[derive(Clone, Debug)]
pub(crate) struct AdminGuard {
    token: Option<std::sync::Arc<str>>,
}

impl AdminGuard {
    /// A guard for `token` (`None`: no admin token required).
    pub(crate) fn new(token: Option<std::sync::Arc<str>>) -> Self {
        AdminGuard { token }
    }

    /// Check one request's metadata.
    pub(crate) fn check(&self, metadata: &MetadataMap) -> Result<(), Status> {
        let Some(want) = &self.token else {
            return Ok(());
        };
        match metadata.get(ADMIN_TOKEN_HEADER).map(|v| v.as_bytes()) {
            None => Err(Status::unauthenticated(format!(
                "missing admin token (send {ADMIN_TOKEN_HEADER})"
            ))),
            Some(got) if constant_time_eq(got, want.as_bytes()) => Ok(()),
            Some(_) => Err(Status::unauthenticated("wrong admin token")),
        }
    }
}

impl tonic::service::Interceptor for AdminGuard {
    fn call(&mut self, request: tonic::Request<()>) -> Result<tonic::Request<()>, Status> {
        self.check(request.metadata())?;
        Ok(request)
    }
}

/// Equality whose time depends only on the lengths, not on where the bytes
/// differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;

    fn key(agent: &str) -> AgentKey {
        AgentKey {
            org_id: "o".into(),
            team_id: "t".into(),
            agent_id: agent.into(),
        }
    }

    #[test]
    fn metadata_is_preferred_over_the_body_and_required_tables_refuse() {
        let table = TokenTable::required([("good".to_owned(), key("a"))]);
        let mut md = MetadataMap::new();
        assert_eq!(
            authenticate(&table, &md, None).unwrap_err().code(),
            Code::Unauthenticated
        );
        assert_eq!(
            authenticate(&table, &md, Some("good")).unwrap(),
            Caller::Agent(key("a"))
        );
        md.insert("authorization", "Bearer bad".parse().unwrap());
        assert_eq!(
            authenticate(&table, &md, Some("good")).unwrap_err().code(),
            Code::Unauthenticated
        );
        md.insert(ADMIN_TOKEN_HEADER, "x".parse().unwrap());
        md.insert("x-aa-credential-token", "good".parse().unwrap());
        assert_eq!(
            authenticate(&table, &md, None).unwrap(),
            Caller::Agent(key("a"))
        );
        assert_eq!(
            authenticate(&TokenTable::open(), &MetadataMap::new(), None).unwrap(),
            Caller::Anonymous
        );
    }

    #[test]
    fn an_agent_acts_only_as_itself() {
        let me = Caller::Agent(key("a"));
        assert_eq!(me.acting_as(None).unwrap(), Some(key("a")));
        assert_eq!(
            me.acting_as(Some(&agent_id(&key("a")))).unwrap(),
            Some(key("a"))
        );
        let other = me.acting_as(Some(&agent_id(&key("b")))).unwrap_err();
        assert_eq!(other.code(), Code::PermissionDenied);
        assert_eq!(Caller::Anonymous.acting_as(None).unwrap(), None);
        assert_eq!(Caller::Anonymous.team(), "");
        assert_eq!(me.team(), "t");
    }

    #[test]
    fn admin_guard_checks_the_header() {
        let open = AdminGuard::new(None);
        assert!(open.check(&MetadataMap::new()).is_ok());
        let guard = AdminGuard::new(Some("s3cret".into()));
        assert_eq!(
            guard.check(&MetadataMap::new()).unwrap_err().code(),
            Code::Unauthenticated
        );
        let mut md = MetadataMap::new();
        md.insert(ADMIN_TOKEN_HEADER, "s3cre".parse().unwrap());
        assert!(guard.check(&md).is_err());
        md.insert(ADMIN_TOKEN_HEADER, "s3cret".parse().unwrap());
        assert!(guard.check(&md).is_ok());
    }
}
