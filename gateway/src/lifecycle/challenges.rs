//! [`ChallengeBook`]: the registration nonces `RequestChallenge` handed out
//! and `Register` has not consumed yet.
//!
//! Guarantees:
//! - a nonce is taken at most once: [`ChallengeBook::take`] removes it
//!   whether or not the registration it comes with succeeds;
//! - a nonce is bound to the agent (org, team, agent id) and public key it
//!   was issued for, and is refused for any other;
//! - a nonce past its expiry is refused;
//! - at most `max` nonces are outstanding: issuing one more drops the
//!   oldest, and expired ones are dropped as new ones are issued, so the
//!   book's memory is bounded whatever clients do.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::ops::AgentKey;

/// Nonce length, in bytes.
pub const NONCE_LEN: usize = 32;

/// Outstanding nonces at once, by default: 4,096.
pub const DEFAULT_MAX_CHALLENGES: usize = 4096;

/// How long a nonce stays valid, by default: 60 s.
pub const DEFAULT_CHALLENGE_TTL: Duration = Duration::from_secs(60);

/// A registration nonce.
pub type Nonce = [u8; NONCE_LEN];

/// What one outstanding nonce is bound to.
#[derive(Clone, Debug)]
struct Challenge {
    seq: u64,
    agent: AgentKey,
    public_key: [u8; 32],
    expires: Instant,
}

/// Why a nonce was not accepted.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChallengeError {
    /// Never issued, already used, or dropped to make room.
    #[error("unknown or already used registration nonce; request a new challenge")]
    Unknown,
    /// Issued, but its time ran out.
    #[error("the registration nonce expired; request a new challenge")]
    Expired,
    /// Issued for another agent or key.
    #[error("the registration nonce was issued for another agent or key")]
    Mismatch,
}

#[derive(Debug, Default)]
struct Book {
    next_seq: u64,
    by_nonce: HashMap<Nonce, Challenge>,
    /// Issue order, for dropping the oldest.
    by_seq: BTreeMap<u64, Nonce>,
}

/// The outstanding registration nonces of one gateway.
#[derive(Debug)]
pub struct ChallengeBook {
    book: Mutex<Book>,
    max: usize,
    ttl: Duration,
}

impl ChallengeBook {
    /// An empty book holding at most `max` nonces (at least 1), each valid
    /// for `ttl`.
    pub fn new(max: usize, ttl: Duration) -> Self {
        ChallengeBook {
            book: Mutex::new(Book::default()),
            max: max.max(1),
            ttl,
        }
    }

    /// How long a nonce stays valid.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Book> {
        self.book.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Record `nonce` (fresh from the OS, chosen by the caller) for `agent`
    /// and `public_key`, valid until `now + ttl`; returns that instant.
    pub fn issue(
        &self,
        nonce: Nonce,
        agent: AgentKey,
        public_key: [u8; 32],
        now: Instant,
    ) -> Instant {
        let expires = now + self.ttl;
        let mut b = self.lock();
        // Expired ones first (issue order is expiry order: one ttl)...
        while let Some((&seq, nonce)) = b.by_seq.first_key_value() {
            let expired = b.by_nonce.get(nonce).is_none_or(|c| c.expires <= now);
            if !expired {
                break;
            }
            let nonce = *nonce;
            b.by_seq.remove(&seq);
            b.by_nonce.remove(&nonce);
        }
        // ...then the oldest, while full.
        while b.by_nonce.len() >= self.max {
            let Some((_, oldest)) = b.by_seq.pop_first() else {
                break;
            };
            b.by_nonce.remove(&oldest);
        }
        b.next_seq += 1;
        let seq = b.next_seq;
        if let Some(old) = b.by_nonce.insert(
            nonce,
            Challenge {
                seq,
                agent,
                public_key,
                expires,
            },
        ) {
            // A repeated nonce (never from the OS): the new binding wins.
            b.by_seq.remove(&old.seq);
        }
        b.by_seq.insert(seq, nonce);
        expires
    }

    /// Consume `nonce` for `agent` and `public_key`. It is gone afterwards,
    /// whatever the answer.
    pub fn take(
        &self,
        nonce: &[u8],
        agent: &AgentKey,
        public_key: &[u8; 32],
        now: Instant,
    ) -> Result<(), ChallengeError> {
        let nonce: Nonce = nonce.try_into().map_err(|_| ChallengeError::Unknown)?;
        let challenge = {
            let mut b = self.lock();
            let c = b.by_nonce.remove(&nonce).ok_or(ChallengeError::Unknown)?;
            b.by_seq.remove(&c.seq);
            c
        };
        if challenge.expires <= now {
            return Err(ChallengeError::Expired);
        }
        if challenge.agent != *agent || challenge.public_key != *public_key {
            return Err(ChallengeError::Mismatch);
        }
        Ok(())
    }

    /// Nonces outstanding (expired ones not yet dropped included).
    pub fn len(&self) -> usize {
        self.lock().by_nonce.len()
    }

    /// Whether none is outstanding.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(a: &str) -> AgentKey {
        AgentKey {
            org_id: "o".into(),
            team_id: "t".into(),
            agent_id: a.into(),
        }
    }

    #[test]
    fn a_nonce_is_single_use_and_bound() {
        let book = ChallengeBook::new(8, Duration::from_secs(60));
        let now = Instant::now();
        book.issue([1; 32], agent("a"), [7; 32], now);
        assert_eq!(
            book.take(&[1; 32], &agent("b"), &[7; 32], now),
            Err(ChallengeError::Mismatch)
        );
        // Consumed by the failed attempt.
        assert_eq!(
            book.take(&[1; 32], &agent("a"), &[7; 32], now),
            Err(ChallengeError::Unknown)
        );
        book.issue([2; 32], agent("a"), [7; 32], now);
        assert_eq!(
            book.take(&[2; 32], &agent("a"), &[8; 32], now),
            Err(ChallengeError::Mismatch)
        );
        book.issue([3; 32], agent("a"), [7; 32], now);
        assert_eq!(book.take(&[3; 32], &agent("a"), &[7; 32], now), Ok(()));
        assert_eq!(
            book.take(&[3; 32], &agent("a"), &[7; 32], now),
            Err(ChallengeError::Unknown)
        );
        assert_eq!(
            book.take(&[3; 5], &agent("a"), &[7; 32], now),
            Err(ChallengeError::Unknown)
        );
        assert!(book.is_empty());
    }

    #[test]
    fn nonces_expire_and_the_book_is_bounded() {
        let ttl = Duration::from_secs(60);
        let book = ChallengeBook::new(2, ttl);
        let now = Instant::now();
        book.issue([1; 32], agent("a"), [7; 32], now);
        assert_eq!(
            book.take(&[1; 32], &agent("a"), &[7; 32], now + ttl),
            Err(ChallengeError::Expired)
        );
        for n in 2..=4u8 {
            book.issue([n; 32], agent("a"), [7; 32], now);
        }
        assert_eq!(book.len(), 2);
        assert_eq!(
            book.take(&[2; 32], &agent("a"), &[7; 32], now),
            Err(ChallengeError::Unknown)
        );
        assert_eq!(book.take(&[4; 32], &agent("a"), &[7; 32], now), Ok(()));
        // Expired ones are dropped as new ones come.
        book.issue([5; 32], agent("a"), [7; 32], now + ttl * 2);
        assert_eq!(book.len(), 1);
    }
}
