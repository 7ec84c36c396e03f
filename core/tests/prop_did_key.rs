//! did:key: every key round-trips, every string that parses has exactly
//! one spelling, and arbitrary text never panics.

use proptest::prelude::*;
use tether_core::did_key::{did_key, public_key_of, DID_KEY_PREFIX};

proptest! {
    #[test]
    fn every_key_round_trips(key in any::<[u8; 32]>()) {
        let did = did_key(&key);
        prop_assert!(did.starts_with(DID_KEY_PREFIX));
        prop_assert_eq!(public_key_of(&did), Ok(key));
    }

    #[test]
    fn arbitrary_text_parses_only_to_its_one_spelling(text in ".{0,80}") {
        for candidate in [text.clone(), format!("{DID_KEY_PREFIX}{text}")] {
            if let Ok(key) = public_key_of(&candidate) {
                prop_assert_eq!(did_key(&key), candidate);
            }
        }
    }

    #[test]
    fn base58_text_parses_only_to_its_one_spelling(
        text in "[1-9A-HJ-NP-Za-km-z]{40,52}",
    ) {
        let candidate = format!("{DID_KEY_PREFIX}{text}");
        if let Ok(key) = public_key_of(&candidate) {
            prop_assert_eq!(did_key(&key), candidate);
        }
    }

    #[test]
    fn one_changed_character_changes_or_refuses(key in any::<[u8; 32]>(), at in 0usize..47, to in 0usize..58) {
        let did = did_key(&key);
        let alphabet = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
        let mut bytes = did.clone().into_bytes();
        let i = DID_KEY_PREFIX.len() + at % (did.len() - DID_KEY_PREFIX.len());
        bytes[i] = alphabet[to];
        let changed = String::from_utf8(bytes).unwrap();
        match public_key_of(&changed) {
            Ok(other) if changed != did => prop_assert_ne!(other, key),
            _ => {}
        }
    }
}
