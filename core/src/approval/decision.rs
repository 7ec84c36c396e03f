//! The reviewer's decision as it arrives on the wire, the verdicts among
//! them, and what a waiter learns.

/// The reviewer `Decision` of an `ApprovalResolved` event, as on the wire
/// (`assembly.gateway.v1.Decision`): only [`ReviewerDecision::Approved`] and
/// [`ReviewerDecision::Denied`] are verdicts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "testkit", derive(arbitrary::Arbitrary))]
pub enum ReviewerDecision {
    /// `DECISION_UNSPECIFIED` (0): not a verdict.
    Unspecified,
    /// `APPROVED` (1).
    Approved,
    /// `DENIED` (2): a reviewer's reject.
    Denied,
    /// `PENDING` (3): not a verdict; nobody has decided yet.
    Pending,
    /// A value outside the enum (a newer gateway): not a verdict.
    Unknown(i32),
}

impl ReviewerDecision {
    /// The decision for a wire value.
    pub fn from_wire(value: i32) -> Self {
        match value {
            0 => ReviewerDecision::Unspecified,
            1 => ReviewerDecision::Approved,
            2 => ReviewerDecision::Denied,
            3 => ReviewerDecision::Pending,
            other => ReviewerDecision::Unknown(other),
        }
    }

    /// The wire value.
    pub fn to_wire(self) -> i32 {
        match self {
            ReviewerDecision::Unspecified => 0,
            ReviewerDecision::Approved => 1,
            ReviewerDecision::Denied => 2,
            ReviewerDecision::Pending => 3,
            ReviewerDecision::Unknown(v) => v,
        }
    }

    /// The verdict this decision carries, if it is one. `Unknown` is never
    /// a verdict, even when built by hand with an in-range value.
    pub fn verdict(self) -> Option<ReviewerVerdict> {
        match self {
            ReviewerDecision::Approved => Some(ReviewerVerdict::Approved),
            ReviewerDecision::Denied => Some(ReviewerVerdict::Denied),
            _ => None,
        }
    }
}

/// A reviewer's answer: the verdict an approval or denial carries, and the
/// one kept for late waiters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReviewerVerdict {
    /// The held action may proceed.
    Approved,
    /// The held action must not proceed.
    Denied,
}

/// What an approval waiter learns, exactly once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApprovalOutcome {
    /// A reviewer approved.
    Approved,
    /// A reviewer denied.
    Denied,
    /// The waiter's deadline passed with no verdict: the request is still
    /// pending (no human answered). Never a denial: what to do with a held
    /// action nobody answered is the caller's policy.
    TimedOut,
}

impl From<ReviewerVerdict> for ApprovalOutcome {
    fn from(v: ReviewerVerdict) -> Self {
        match v {
            ReviewerVerdict::Approved => ApprovalOutcome::Approved,
            ReviewerVerdict::Denied => ApprovalOutcome::Denied,
        }
    }
}
