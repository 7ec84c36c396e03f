//! Proof of identity for registration: the public key's text form, its
//! did:key, the Ed25519 possession proof, and fresh randomness from the OS.
//!
//! Guarantees:
//! - a public key is accepted only as exactly 64 lowercase hex characters
//!   naming a valid Ed25519 point; anything else is a typed
//!   [`ProofError`], never a panic;
//! - an agent id is accepted for a key only when it is that key's did:key
//!   (the one spelling [`tether_core::did_key::did_key`] produces);
//! - a possession proof is accepted only as a 64-byte Ed25519 signature
//!   of the nonce by the key, checked with `verify_strict` (no malleable
//!   or small-order signatures);
//! - nonces and tokens come from the operating system's generator; when
//!   it fails the caller gets an error, never a predictable value.

use ed25519_dalek::{Signature, VerifyingKey};
use tether_core::did_key::{did_key, public_key_of};

/// Why a key, an agent id or a proof was refused.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ProofError {
    /// The public key is not 64 lowercase hex characters.
    #[error("public_key must be 64 lowercase hex characters (the 32-byte Ed25519 key)")]
    KeyFormat,
    /// The 32 bytes are not an Ed25519 public key.
    #[error("public_key is not a valid Ed25519 public key")]
    KeyPoint,
    /// The agent id is not the key's did:key.
    #[error("agent_id {agent_id:?} is not the did:key of public_key (expected {expected})")]
    DidMismatch {
        /// The agent id sent.
        agent_id: String,
        /// The did:key of the key sent.
        expected: String,
    },
    /// The proof is not a signature of the nonce by the key.
    #[error("possession_proof is not the Ed25519 signature of the nonce by public_key")]
    BadSignature,
    /// The OS generator failed.
    #[error("the operating system's random generator failed: {0}")]
    Random(String),
}

/// The 32 key bytes of `text`, which must be 64 lowercase hex characters
/// naming a valid Ed25519 point.
pub(crate) fn parse_public_key(text: &str) -> Result<[u8; 32], ProofError> {
    let bytes = text.as_bytes();
    if bytes.len() != 64 {
        return Err(ProofError::KeyFormat);
    }
    let mut key = [0u8; 32];
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        key[i] = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    VerifyingKey::from_bytes(&key).map_err(|_| ProofError::KeyPoint)?;
    Ok(key)
}

fn nibble(c: u8) -> Result<u8, ProofError> {
    match c {
        b'0'..=b'9' => Ok(c - b'0'),
        b'a'..=b'f' => Ok(c - b'a' + 10),
        _ => Err(ProofError::KeyFormat),
    }
}

/// Check that `agent_id` is the did:key of `key`.
pub(crate) fn check_did(agent_id: &str, key: &[u8; 32]) -> Result<(), ProofError> {
    match public_key_of(agent_id) {
        Ok(named) if named == *key => Ok(()),
        _ => Err(ProofError::DidMismatch {
            agent_id: agent_id.chars().take(160).collect(),
            expected: did_key(key),
        }),
    }
}

/// Check that `proof` is the Ed25519 signature of `nonce` by `key`.
pub(crate) fn check_possession(
    key: &[u8; 32],
    nonce: &[u8],
    proof: &[u8],
) -> Result<(), ProofError> {
    let key = VerifyingKey::from_bytes(key).map_err(|_| ProofError::KeyPoint)?;
    let signature = Signature::from_slice(proof).map_err(|_| ProofError::BadSignature)?;
    key.verify_strict(nonce, &signature)
        .map_err(|_| ProofError::BadSignature)
}

/// `N` fresh bytes from the OS.
pub(crate) fn random_bytes<const N: usize>() -> Result<[u8; N], ProofError> {
    let mut out = [0u8; N];
    getrandom::fill(&mut out).map_err(|e| ProofError::Random(e.to_string()))?;
    Ok(out)
}

/// A fresh credential token: `tat_` and 32 random bytes in hex.
pub(crate) fn fresh_token() -> Result<String, ProofError> {
    let bytes: [u8; 32] = random_bytes()?;
    let mut token = String::with_capacity(4 + 64);
    token.push_str("tat_");
    for b in bytes {
        token.push(char::from(HEX[usize::from(b >> 4)]));
        token.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    Ok(token)
}

const HEX: &[u8; 16] = b"0123456789abcdef";

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};

    fn hex(bytes: &[u8]) -> String {
        bytes
            .iter()
            .flat_map(|b| [HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xf)]])
            .map(char::from)
            .collect()
    }

    #[test]
    fn keys_dids_and_proofs() {
        let signing = SigningKey::from_bytes(&[9; 32]);
        let key = *signing.verifying_key().as_bytes();
        let text = hex(&key);
        assert_eq!(parse_public_key(&text), Ok(key));
        assert_eq!(
            parse_public_key(&text.to_uppercase()),
            Err(ProofError::KeyFormat)
        );
        assert_eq!(parse_public_key(&text[..62]), Err(ProofError::KeyFormat));
        assert_eq!(parse_public_key("é"), Err(ProofError::KeyFormat));
        assert!(check_did(&did_key(&key), &key).is_ok());
        assert!(matches!(
            check_did("did:key:zNope", &key),
            Err(ProofError::DidMismatch { .. })
        ));
        assert!(check_did(&did_key(&[1; 32]), &key).is_err());

        let nonce = [5u8; 32];
        let proof = signing.sign(&nonce).to_bytes();
        assert_eq!(check_possession(&key, &nonce, &proof), Ok(()));
        assert_eq!(
            check_possession(&key, &[6; 32], &proof),
            Err(ProofError::BadSignature)
        );
        assert_eq!(
            check_possession(&key, &nonce, &proof[..63]),
            Err(ProofError::BadSignature)
        );
    }

    #[test]
    fn tokens_are_fresh() {
        let a = fresh_token().unwrap();
        let b = fresh_token().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 68);
        assert!(a.starts_with("tat_"));
    }
}
