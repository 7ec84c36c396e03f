//! What a gateway's `CheckAction` answer means, decided in one place.
//!
//! Guarantees (each pinned by the exhaustive table test below):
//! - `ANSWER_REVIEWER_NEVER_CACHED`: an `ALLOW` or `DENY` that carries an
//!   `approval_id` is one reviewer's verdict for one call: it is reported as
//!   the reviewer's and never cached, so a later identical call needs a new
//!   approval.
//! - `ANSWER_NON_POLICY_DENY_NEVER_CACHED`: a `DENY` that names no policy
//!   rule, or names the Agent Assembly gateway's identity check
//!   ([`IDENTITY_CHECK_RULE`]), is not a policy decision about the call (the
//!   gateway refused a missing, stale or foreign credential, or failed), so
//!   it is never cached: a fixed credential must not meet a cached refusal.
//! - `ANSWER_PENDING_NEEDS_ID`: `PENDING` without an `approval_id` cannot be
//!   waited on and is a protocol error, as is an unspecified decision.
//! - `ANSWER_REDACT_IS_ITS_OWN`: `REDACT` is a verdict of its own (proceed
//!   only after redacting), cached like any policy decision, never turned
//!   into a plain allow.

/// The `policy_rule` the Agent Assembly gateway names when it refuses a
/// call for its credential ("missing credential token", "credential token
/// mismatch", "credential token registered to a different agent"): its
/// identity check, not a rule about the call.
pub const IDENTITY_CHECK_RULE: &str = "a2a_identity_verification";

/// The decision field of a `CheckAction` answer, as the core sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AnswerDecision {
    /// `ALLOW`.
    Allow,
    /// `DENY`.
    Deny,
    /// `PENDING`: a reviewer must decide; the verdict comes later.
    Pending,
    /// `REDACT`: proceed once the named data is redacted.
    Redact,
    /// `DECISION_UNSPECIFIED` or a value this build does not know.
    Unspecified,
}

/// The parts of a `CheckAction` answer that say what it means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GatewayAnswer<'a> {
    /// The decision.
    pub decision: AnswerDecision,
    /// `approval_id` (empty when absent).
    pub approval_id: &'a str,
    /// `policy_rule` (empty when absent).
    pub policy_rule: &'a str,
}

/// The verdict a final answer gives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FinalDecision {
    /// Proceed.
    Allow,
    /// Do not proceed.
    Deny,
    /// Proceed only after redacting.
    Redact,
}

/// What an answer means for the check that asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AnswerMeaning {
    /// A policy decision: the verdict, and whether the cache may keep it.
    Policy {
        /// The verdict.
        decision: FinalDecision,
        /// Whether it may be cached for later identical calls.
        cacheable: bool,
    },
    /// A reviewer's verdict on this one call (the gateway held the call);
    /// never cached.
    Reviewer {
        /// The verdict.
        decision: FinalDecision,
    },
    /// Wait for the reviewer's verdict on this approval id.
    Pending,
    /// The answer breaks the protocol.
    Invalid(InvalidAnswer),
}

/// Why an answer breaks the protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InvalidAnswer {
    /// The decision is unspecified or unknown.
    UnknownDecision,
    /// `PENDING` without an `approval_id` to wait on.
    PendingWithoutApprovalId,
}

/// What `answer` means (see the module docs for the rules).
pub fn classify(answer: GatewayAnswer<'_>) -> AnswerMeaning {
    let reviewed = !answer.approval_id.is_empty();
    let decision = match answer.decision {
        AnswerDecision::Allow => FinalDecision::Allow,
        AnswerDecision::Deny => FinalDecision::Deny,
        AnswerDecision::Redact => FinalDecision::Redact,
        AnswerDecision::Pending if reviewed => return AnswerMeaning::Pending,
        AnswerDecision::Pending => {
            return AnswerMeaning::Invalid(InvalidAnswer::PendingWithoutApprovalId)
        }
        AnswerDecision::Unspecified => {
            return AnswerMeaning::Invalid(InvalidAnswer::UnknownDecision)
        }
    };
    if reviewed {
        return AnswerMeaning::Reviewer { decision };
    }
    let non_policy_deny = decision == FinalDecision::Deny
        && (answer.policy_rule.is_empty() || answer.policy_rule == IDENTITY_CHECK_RULE);
    AnswerMeaning::Policy {
        decision,
        cacheable: !non_policy_deny,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every input class against a table written out by hand.
    #[test]
    fn every_answer_class_means_what_the_table_says() {
        use AnswerDecision as D;
        use AnswerMeaning as M;
        use FinalDecision as F;
        let policy = |decision, cacheable| M::Policy {
            decision,
            cacheable,
        };
        let reviewer = |decision| M::Reviewer { decision };
        // (decision, approval_id set, policy_rule set) -> meaning
        let table = [
            (D::Allow, false, false, policy(F::Allow, true)),
            (D::Allow, false, true, policy(F::Allow, true)),
            (D::Allow, true, false, reviewer(F::Allow)),
            (D::Allow, true, true, reviewer(F::Allow)),
            (D::Deny, false, false, policy(F::Deny, false)),
            (D::Deny, false, true, policy(F::Deny, true)),
            (D::Deny, true, false, reviewer(F::Deny)),
            (D::Deny, true, true, reviewer(F::Deny)),
            (D::Redact, false, false, policy(F::Redact, true)),
            (D::Redact, false, true, policy(F::Redact, true)),
            (D::Redact, true, false, reviewer(F::Redact)),
            (D::Redact, true, true, reviewer(F::Redact)),
            (
                D::Pending,
                false,
                false,
                M::Invalid(InvalidAnswer::PendingWithoutApprovalId),
            ),
            (
                D::Pending,
                false,
                true,
                M::Invalid(InvalidAnswer::PendingWithoutApprovalId),
            ),
            (D::Pending, true, false, M::Pending),
            (D::Pending, true, true, M::Pending),
            (
                D::Unspecified,
                false,
                false,
                M::Invalid(InvalidAnswer::UnknownDecision),
            ),
            (
                D::Unspecified,
                false,
                true,
                M::Invalid(InvalidAnswer::UnknownDecision),
            ),
            (
                D::Unspecified,
                true,
                false,
                M::Invalid(InvalidAnswer::UnknownDecision),
            ),
            (
                D::Unspecified,
                true,
                true,
                M::Invalid(InvalidAnswer::UnknownDecision),
            ),
        ];
        for (decision, approval, rule, expected) in table {
            let answer = GatewayAnswer {
                decision,
                approval_id: if approval { "apr-1" } else { "" },
                policy_rule: if rule { "deny rm_*" } else { "" },
            };
            assert_eq!(classify(answer), expected, "{answer:?}");
        }
    }

    /// The gateway's identity check is not a rule about the call: its DENY
    /// is never cached; a reviewer's answer stays the reviewer's; any other
    /// rule name is a policy decision.
    #[test]
    fn a_deny_by_the_identity_check_is_never_cached() {
        let answer = |decision, approval_id, policy_rule| GatewayAnswer {
            decision,
            approval_id,
            policy_rule,
        };
        assert_eq!(
            classify(answer(AnswerDecision::Deny, "", IDENTITY_CHECK_RULE)),
            AnswerMeaning::Policy {
                decision: FinalDecision::Deny,
                cacheable: false
            }
        );
        assert_eq!(
            classify(answer(AnswerDecision::Deny, "apr-1", IDENTITY_CHECK_RULE)),
            AnswerMeaning::Reviewer {
                decision: FinalDecision::Deny
            }
        );
        for near in [
            "a2a_identity_verification ",
            "A2A_IDENTITY_VERIFICATION",
            "a2a_identity",
        ] {
            assert_eq!(
                classify(answer(AnswerDecision::Deny, "", near)),
                AnswerMeaning::Policy {
                    decision: FinalDecision::Deny,
                    cacheable: true
                },
                "{near:?} is a rule of its own"
            );
        }
        assert_eq!(
            classify(answer(AnswerDecision::Allow, "", IDENTITY_CHECK_RULE)),
            AnswerMeaning::Policy {
                decision: FinalDecision::Allow,
                cacheable: true
            }
        );
    }
}
