//! Credentials: the token table and how a token is read from request
//! metadata.
//!
//! Guarantees: `x-aa-credential-token` is preferred over
//! `authorization: Bearer`, as in the Agent Assembly gateway; a missing or
//! unknown token never authenticates; a table with no tokens means
//! credentials are not required (a development gateway).

use std::collections::HashMap;
use std::sync::RwLock;

use super::ops::AgentKey;

/// The metadata key of the preferred credential header.
pub const CREDENTIAL_HEADER: &str = "x-aa-credential-token";

/// Tokens the gateway accepts, each bound to one agent.
#[derive(Debug, Default)]
pub struct TokenTable {
    tokens: RwLock<HashMap<String, AgentKey>>,
    required: bool,
}

/// Why a request was not authenticated.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No credential in the metadata.
    #[error("missing credential (send x-aa-credential-token or authorization: Bearer)")]
    Missing,
    /// The credential is not in the table.
    #[error("unknown credential")]
    Unknown,
}

impl TokenTable {
    /// A table that does not require credentials.
    pub fn open() -> Self {
        TokenTable::default()
    }

    /// A table that requires one of `tokens`.
    pub fn required(tokens: impl IntoIterator<Item = (String, AgentKey)>) -> Self {
        TokenTable {
            tokens: RwLock::new(tokens.into_iter().collect()),
            required: true,
        }
    }

    /// Whether a credential is required.
    pub fn is_required(&self) -> bool {
        self.required
    }

    /// Add or replace a token.
    pub fn insert(&self, token: String, agent: AgentKey) {
        self.tokens
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(token, agent);
    }

    /// Revoke one token; returns the agent it was bound to.
    pub fn remove(&self, token: &str) -> Option<AgentKey> {
        self.tokens
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(token)
    }

    /// Forget every token (what a restarted gateway does).
    pub fn clear(&self) {
        self.tokens
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// The agent a token belongs to. `Ok(None)` when credentials are not
    /// required and none was sent.
    pub fn authenticate(&self, token: Option<&str>) -> Result<Option<AgentKey>, AuthError> {
        let tokens = self.tokens.read().unwrap_or_else(|e| e.into_inner());
        match token {
            Some(t) => match tokens.get(t) {
                Some(agent) => Ok(Some(agent.clone())),
                None if self.required => Err(AuthError::Unknown),
                None => Ok(None),
            },
            None if self.required => Err(AuthError::Missing),
            None => Ok(None),
        }
    }

    /// Parse a token file: one `token org team agent` per line, `#` comments.
    pub fn parse(text: &str) -> Result<Vec<(String, AgentKey)>, String> {
        let mut out = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            match line.split_whitespace().collect::<Vec<_>>().as_slice() {
                [token, org, team, agent] => out.push((
                    (*token).to_owned(),
                    AgentKey {
                        org_id: (*org).to_owned(),
                        team_id: (*team).to_owned(),
                        agent_id: (*agent).to_owned(),
                    },
                )),
                _ => {
                    return Err(format!(
                        "token line {}: expected `token org team agent`",
                        i + 1
                    ))
                }
            }
        }
        Ok(out)
    }
}

/// The credential in request metadata: `x-aa-credential-token` first, then
/// `authorization: Bearer <token>`.
pub fn credential_from(header: impl Fn(&str) -> Option<String>) -> Option<String> {
    if let Some(t) = header(CREDENTIAL_HEADER).filter(|t| !t.is_empty()) {
        return Some(t);
    }
    let auth = header("authorization")?;
    let token = auth
        .strip_prefix("Bearer ")
        .or_else(|| auth.strip_prefix("bearer "))?
        .trim();
    (!token.is_empty()).then(|| token.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent() -> AgentKey {
        AgentKey {
            org_id: "o".into(),
            team_id: "t".into(),
            agent_id: "a".into(),
        }
    }

    #[test]
    fn prefers_the_credential_header_over_bearer() {
        let both = |k: &str| match k {
            CREDENTIAL_HEADER => Some("tok1".to_owned()),
            "authorization" => Some("Bearer tok2".to_owned()),
            _ => None,
        };
        assert_eq!(credential_from(both).as_deref(), Some("tok1"));
        let bearer = |k: &str| (k == "authorization").then(|| "Bearer tok2".to_owned());
        assert_eq!(credential_from(bearer).as_deref(), Some("tok2"));
        let basic = |k: &str| (k == "authorization").then(|| "Basic xyz".to_owned());
        assert_eq!(credential_from(basic), None);
    }

    #[test]
    fn required_table_refuses_missing_and_unknown() {
        let t = TokenTable::required([("good".to_owned(), agent())]);
        assert_eq!(t.authenticate(Some("good")), Ok(Some(agent())));
        assert_eq!(t.authenticate(Some("bad")), Err(AuthError::Unknown));
        assert_eq!(t.authenticate(None), Err(AuthError::Missing));
        t.clear();
        assert_eq!(t.authenticate(Some("good")), Err(AuthError::Unknown));
        assert_eq!(TokenTable::open().authenticate(None), Ok(None));
    }

    #[test]
    fn token_file_parses_and_reports_bad_lines() {
        let v = TokenTable::parse("# tokens\ns3cret o t a\n").unwrap();
        assert_eq!(v, vec![("s3cret".to_owned(), agent())]);
        assert!(TokenTable::parse("s3cret o t")
            .unwrap_err()
            .contains("line 1"));
    }
}
