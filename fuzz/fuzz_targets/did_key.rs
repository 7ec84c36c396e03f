//! Fuzz the did:key codec: arbitrary text never panics, and whatever parses
//! has exactly one spelling; arbitrary keys round-trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tether_core::did_key::{did_key, public_key_of};

fuzz_target!(|input: (&str, [u8; 32])| {
    let (text, key) = input;
    if let Ok(parsed) = public_key_of(text) {
        assert_eq!(did_key(&parsed), text, "a did:key with two spellings");
    }
    assert_eq!(public_key_of(&did_key(&key)), Ok(key));
});
