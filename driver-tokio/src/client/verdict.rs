//! What `check` answers, and which part of the pipeline answered it.

use std::time::Duration;

/// Allow, deny, or proceed only after redacting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Decision {
    /// The tool call may proceed.
    Allow,
    /// The tool call must not proceed.
    Deny,
    /// The tool call may proceed only after the data named by
    /// [`Verdict::redactions`] is redacted. [`Verdict::allowed`] is `false`
    /// for it, so a runtime that does not redact fails closed.
    Redact,
}

/// One redaction the gateway asks for with a [`Decision::Redact`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Redaction {
    /// Path of the field to redact, for example `args.password`.
    pub field_path: String,
    /// What replaces its value.
    pub replacement: String,
}

impl Redaction {
    /// A redaction of `field_path` by `replacement`.
    pub fn new(field_path: impl Into<String>, replacement: impl Into<String>) -> Self {
        Redaction {
            field_path: field_path.into(),
            replacement: replacement.into(),
        }
    }
}

/// Which step of the pipeline produced a verdict.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
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
    /// A reviewer's verdict on an approval: either on a `PENDING` answer,
    /// or the answer that ended a call the gateway held for review (it
    /// carries the approval id). Never cached.
    Reviewer {
        /// The approval id.
        approval_id: String,
    },
    /// No reviewer answered before the deadline: the configured fallback
    /// (the approval is still pending, it was not denied). Also when the
    /// gateway held `CheckAction` open past the deadline without answering
    /// (as the Agent Assembly gateway does while a reviewer decides).
    ApprovalDeadline {
        /// The approval id; empty when the gateway held the call without
        /// naming one.
        approval_id: String,
    },
}

/// The answer to `check`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Verdict {
    /// Allow, deny or redact.
    pub decision: Decision,
    /// With [`Decision::Redact`]: what to redact, in order. Empty otherwise.
    pub redactions: Vec<Redaction>,
    /// Who decided.
    pub source: VerdictSource,
    /// A human-readable reason (the gateway's, or tether's own).
    pub reason: String,
    /// How long the check took.
    pub latency: Duration,
}

impl Verdict {
    /// Whether the call may proceed as it is (`false` for a redact
    /// verdict: the call may proceed only once redacted).
    pub fn allowed(&self) -> bool {
        self.decision == Decision::Allow
    }

    /// A short label for metrics and logs.
    pub fn label(&self) -> &'static str {
        match (&self.source, self.decision) {
            (VerdictSource::Terminated, _) => "terminated",
            (_, Decision::Redact) => "redact",
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
