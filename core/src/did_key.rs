//! did:key identifiers for Ed25519 public keys, as the Agent Assembly
//! gateway expects an agent id: `"did:key:z"` followed by the base58btc
//! encoding of the multicodec prefix `0xED 0x01` and the 32-byte key.
//!
//! Guarantees:
//! - [`did_key`] and [`public_key_of`] are inverse: every 32-byte key
//!   round-trips, and `did_key(&public_key_of(s)?) == s` for every `s` that
//!   parses (there is exactly one spelling of each key);
//! - anything else (another prefix, another multicodec, a character outside
//!   the base58btc alphabet, a leading `1` the bytes do not have, a wrong
//!   length) is refused with a typed [`DidKeyError`], never a panic;
//! - input longer than [`MAX_DID_KEY_LEN`] is refused before any decoding,
//!   so work is bounded by the input's length.
//!
//! Only encoding: no cryptography happens here (the driver signs, the
//! gateway verifies).

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// The prefix of every did:key this module reads or writes: the method and
/// the multibase marker `z` (base58btc).
pub const DID_KEY_PREFIX: &str = "did:key:z";

/// The multicodec prefix of an Ed25519 public key (varint 0xed).
pub const ED25519_MULTICODEC: [u8; 2] = [0xED, 0x01];

/// Longest did:key accepted for decoding. An Ed25519 did:key is 56
/// characters; this leaves room only for the typed refusal of near misses.
pub const MAX_DID_KEY_LEN: usize = 128;

const ALPHABET: &[u8; 58] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

/// Why a string is not the did:key of an Ed25519 public key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DidKeyError {
    /// It does not start with [`DID_KEY_PREFIX`].
    NotDidKey,
    /// It is longer than [`MAX_DID_KEY_LEN`].
    TooLong,
    /// A character outside the base58btc alphabet, at this byte offset of
    /// the encoded part.
    BadCharacter(usize),
    /// The decoded bytes are not `0xED 0x01` followed by 32 bytes.
    NotEd25519,
}

impl fmt::Display for DidKeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DidKeyError::NotDidKey => {
                write!(f, "not a did:key (it must start with {DID_KEY_PREFIX})")
            }
            DidKeyError::TooLong => write!(f, "longer than {MAX_DID_KEY_LEN} characters"),
            DidKeyError::BadCharacter(at) => {
                write!(f, "character {at} of the key is not base58btc")
            }
            DidKeyError::NotEd25519 => write!(f, "not an Ed25519 did:key"),
        }
    }
}

impl core::error::Error for DidKeyError {}

/// The did:key of an Ed25519 public key.
pub fn did_key(public_key: &[u8; 32]) -> String {
    let mut bytes = Vec::with_capacity(34);
    bytes.extend_from_slice(&ED25519_MULTICODEC);
    bytes.extend_from_slice(public_key);
    let mut out = String::from(DID_KEY_PREFIX);
    out.push_str(&base58_encode(&bytes));
    out
}

/// The Ed25519 public key a did:key names.
pub fn public_key_of(did: &str) -> Result<[u8; 32], DidKeyError> {
    if did.len() > MAX_DID_KEY_LEN {
        return Err(DidKeyError::TooLong);
    }
    let encoded = did
        .strip_prefix(DID_KEY_PREFIX)
        .ok_or(DidKeyError::NotDidKey)?;
    let bytes = base58_decode(encoded)?;
    match bytes.split_first_chunk::<2>() {
        Some((prefix, key)) if *prefix == ED25519_MULTICODEC && key.len() == 32 => {
            let mut out = [0u8; 32];
            out.copy_from_slice(key);
            Ok(out)
        }
        _ => Err(DidKeyError::NotEd25519),
    }
}

/// Base58 (Bitcoin alphabet): each leading zero byte is a `1`, the rest is
/// the big-endian number in base 58.
fn base58_encode(bytes: &[u8]) -> String {
    let zeros = bytes.iter().take_while(|b| **b == 0).count();
    // Little-endian base-58 digits of the number.
    let mut digits: Vec<u8> = Vec::with_capacity(bytes.len() * 138 / 100 + 1);
    for &byte in &bytes[zeros..] {
        let mut carry = u32::from(byte);
        for d in digits.iter_mut() {
            carry += u32::from(*d) << 8;
            *d = (carry % 58) as u8;
            carry /= 58;
        }
        while carry > 0 {
            digits.push((carry % 58) as u8);
            carry /= 58;
        }
    }
    let mut out = String::with_capacity(zeros + digits.len());
    out.extend(core::iter::repeat_n('1', zeros));
    out.extend(
        digits
            .iter()
            .rev()
            .map(|d| char::from(ALPHABET[usize::from(*d)])),
    );
    out
}

fn base58_decode(text: &str) -> Result<Vec<u8>, DidKeyError> {
    let zeros = text.bytes().take_while(|c| *c == b'1').count();
    // Little-endian base-256 bytes of the number.
    let mut bytes: Vec<u8> = Vec::with_capacity(text.len());
    for (at, c) in text.bytes().enumerate().skip(zeros) {
        let value = ALPHABET
            .iter()
            .position(|a| *a == c)
            .ok_or(DidKeyError::BadCharacter(at))?;
        let mut carry = value as u32;
        for b in bytes.iter_mut() {
            carry += u32::from(*b) * 58;
            *b = (carry & 0xff) as u8;
            carry >>= 8;
        }
        while carry > 0 {
            bytes.push((carry & 0xff) as u8);
            carry >>= 8;
        }
    }
    let mut out = Vec::with_capacity(zeros + bytes.len());
    out.resize(zeros, 0);
    out.extend(bytes.iter().rev());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_known_key_has_its_published_did() {
        // The all-zero key: 0xED 0x01 then 32 zero bytes.
        let did = did_key(&[0u8; 32]);
        assert!(did.starts_with("did:key:z6Mk"), "{did}");
        assert_eq!(public_key_of(&did), Ok([0u8; 32]));
    }

    #[test]
    fn base58_matches_known_vectors() {
        assert_eq!(base58_encode(b""), "");
        assert_eq!(base58_encode(&[0]), "1");
        assert_eq!(base58_encode(&[0, 0, 1]), "112");
        assert_eq!(base58_encode(b"hello world"), "StV1DL6CwTryKyV");
        assert_eq!(base58_decode("StV1DL6CwTryKyV").unwrap(), b"hello world");
        assert_eq!(base58_decode("112").unwrap(), [0, 0, 1]);
    }

    #[test]
    fn refusals_say_what_is_wrong() {
        use alloc::string::ToString;
        assert!(DidKeyError::NotDidKey.to_string().contains("did:key:z"));
        assert!(DidKeyError::TooLong.to_string().contains("128"));
        assert!(DidKeyError::BadCharacter(3)
            .to_string()
            .contains("character 3"));
        assert!(DidKeyError::NotEd25519.to_string().contains("Ed25519"));
    }

    #[test]
    fn refusals_are_typed() {
        assert_eq!(public_key_of("did:web:x"), Err(DidKeyError::NotDidKey));
        assert_eq!(
            public_key_of("did:key:z0"),
            Err(DidKeyError::BadCharacter(0))
        );
        assert_eq!(
            public_key_of("did:key:zStV1DL6CwTryKyV"),
            Err(DidKeyError::NotEd25519)
        );
        let long = alloc::format!("did:key:z{}", "1".repeat(MAX_DID_KEY_LEN));
        assert_eq!(public_key_of(&long), Err(DidKeyError::TooLong));
        // Exactly at the bound it is read (and refused for what it is).
        let at_bound = alloc::format!(
            "{DID_KEY_PREFIX}{}",
            "1".repeat(MAX_DID_KEY_LEN - DID_KEY_PREFIX.len())
        );
        assert_eq!(public_key_of(&at_bound), Err(DidKeyError::NotEd25519));
        // A leading `1` adds a zero byte: no longer 34 bytes.
        let did = did_key(&[7u8; 32]);
        let padded = alloc::format!("{DID_KEY_PREFIX}1{}", &did[DID_KEY_PREFIX.len()..]);
        assert_eq!(public_key_of(&padded), Err(DidKeyError::NotEd25519));
    }
}
