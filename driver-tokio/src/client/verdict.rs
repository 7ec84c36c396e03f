//! What `check` answers, and which part of the pipeline answered it.

use std::time::Duration;

/// Allow or deny.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// The tool call may proceed.
    Allow,
    /// The tool call must not proceed.
    Deny,
}

/// Which step of the pipeline produced a verdict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VerdictSource {
    /// The op was terminated (directly, for its agent, or fleet-wide).
    Terminated,
    /// The op-control stream has been down past its grace and the outage
    /// policy decided.
    OutagePolicy,
    /// A cached gateway decision.
    Cache,
    /// The gateway's CheckAction answer.
    Gateway,
    /// A reviewer's verdict on an approval.
    Reviewer {
        /// The approval id.
        approval_id: String,
    },
    /// No reviewer answered before the deadline: the configured fallback
    /// (the approval is still pending, it was not denied).
    ApprovalDeadline {
        /// The approval id.
        approval_id: String,
    },
}

/// The answer to `check`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// Allow or deny.
    pub decision: Decision,
    /// Who decided.
    pub source: VerdictSource,
    /// A human-readable reason (the gateway's, or tether's own).
    pub reason: String,
    /// How long the check took.
    pub latency: Duration,
}

impl Verdict {
    /// Whether the call may proceed.
    pub fn allowed(&self) -> bool {
        self.decision == Decision::Allow
    }

    /// A short label for metrics and logs.
    pub fn label(&self) -> &'static str {
        match (&self.source, self.decision) {
            (VerdictSource::Terminated, _) => "terminated",
            (VerdictSource::OutagePolicy, Decision::Allow) => "outage_allow",
            (VerdictSource::OutagePolicy, Decision::Deny) => "outage_deny",
            (VerdictSource::Cache, Decision::Allow) => "cache_allow",
            (VerdictSource::Cache, Decision::Deny) => "cache_deny",
            (VerdictSource::Gateway, Decision::Allow) => "gateway_allow",
            (VerdictSource::Gateway, Decision::Deny) => "gateway_deny",
            (VerdictSource::Reviewer { .. }, Decision::Allow) => "approved",
            (VerdictSource::Reviewer { .. }, Decision::Deny) => "denied",
            (VerdictSource::ApprovalDeadline { .. }, Decision::Allow) => "deadline_allow",
            (VerdictSource::ApprovalDeadline { .. }, Decision::Deny) => "deadline_deny",
        }
    }
}
