//! Op ids and the scope a signal covers.
//!
//! An op id is `"{trace_id}:{span_id}"`; two forms are reserved: `"*"`
//! (every op of every agent) and `"agent:{agent_id}"` (every op of one
//! agent). Parsing never panics and refuses, with a typed reason, the ids
//! that cannot name anything: empty, longer than the configured bound, or
//! `agent:` with no agent.

/// The reserved id that covers every op of every agent.
pub const ALL_OPS: &str = "*";

/// The prefix of the reserved id that covers every op of one agent.
pub const AGENT_PREFIX: &str = "agent:";

/// What an op id on the control stream covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope<'a> {
    /// `"*"`: every op of every agent.
    All,
    /// `"agent:{id}"`: every op of the agent `id`.
    Agent(&'a str),
    /// A plain op id.
    Op(&'a str),
}

/// Why an op id or agent id was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InvalidId {
    /// The id is empty.
    Empty,
    /// The id is longer than the bound (`agent:` plus the agent id, for an
    /// agent).
    TooLong {
        /// Its length in bytes.
        len: usize,
        /// The bound.
        max: usize,
    },
    /// `agent:` with nothing after it.
    EmptyAgent,
    /// A reserved id (`*` or `agent:…`) where a plain op id is required.
    Reserved,
}

/// Parse a control-stream op id into the scope it covers.
pub fn parse_scope(op_id: &str, max_len: usize) -> Result<Scope<'_>, InvalidId> {
    if op_id.is_empty() {
        return Err(InvalidId::Empty);
    }
    if op_id.len() > max_len {
        return Err(InvalidId::TooLong {
            len: op_id.len(),
            max: max_len,
        });
    }
    if op_id == ALL_OPS {
        return Ok(Scope::All);
    }
    match op_id.strip_prefix(AGENT_PREFIX) {
        Some("") => Err(InvalidId::EmptyAgent),
        Some(agent) => Ok(Scope::Agent(agent)),
        None => Ok(Scope::Op(op_id)),
    }
}

/// Check that `op_id` names one plain op (what a check or an op-finished
/// input must carry).
pub fn parse_plain(op_id: &str, max_len: usize) -> Result<&str, InvalidId> {
    match parse_scope(op_id, max_len)? {
        Scope::Op(op) => Ok(op),
        Scope::All | Scope::Agent(_) => Err(InvalidId::Reserved),
    }
}

/// Check that `agent` can be addressed on the stream: not empty, and
/// `agent:{agent}` within the length bound.
pub fn check_agent(agent: &str, max_len: usize) -> Result<&str, InvalidId> {
    if agent.is_empty() {
        return Err(InvalidId::Empty);
    }
    let len = AGENT_PREFIX.len().saturating_add(agent.len());
    if len > max_len {
        return Err(InvalidId::TooLong { len, max: max_len });
    }
    Ok(agent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_reserved_and_plain_ids() {
        assert_eq!(parse_scope("*", 10), Ok(Scope::All));
        assert_eq!(parse_scope("agent:a", 10), Ok(Scope::Agent("a")));
        assert_eq!(parse_scope("t:s", 10), Ok(Scope::Op("t:s")));
        assert_eq!(parse_scope("", 10), Err(InvalidId::Empty));
        assert_eq!(parse_scope("agent:", 10), Err(InvalidId::EmptyAgent));
        assert_eq!(
            parse_scope("0123456789a", 10),
            Err(InvalidId::TooLong { len: 11, max: 10 })
        );
        assert_eq!(parse_plain("*", 10), Err(InvalidId::Reserved));
        assert_eq!(parse_plain("agent:b", 10), Err(InvalidId::Reserved));
        assert_eq!(check_agent("abcd", 10), Ok("abcd"));
        assert_eq!(
            check_agent("abcde", 10),
            Err(InvalidId::TooLong { len: 11, max: 10 })
        );
        assert_eq!(check_agent("", 10), Err(InvalidId::Empty));
    }
}
