//! The hash of an id (a request id, an op id, a scheduled job id) for hash
//! tables: word at a time, then a full avalanche, so a table's low (bucket)
//! and high (tag) bits both depend on every byte.
//!
//! Deterministic by design (no random seed): a simulation replays the same
//! tables. Ids come from the caller and from the gateway the client trusts;
//! a party able to choose colliding ids could only slow lookups, never
//! break them.

/// Odd constants with well-mixed bits (the golden ratio, and a 64-bit
/// finaliser multiplier).
const STEP: u64 = 0x9E37_79B9_7F4A_7C15;
const FINAL: u64 = 0xD6E8_FEB8_6659_FD93;

/// Hash an id.
pub fn hash_id(id: &str) -> u64 {
    hash_bytes(0, id.as_bytes())
}

/// Mix the length, then `bytes` a word at a time, into `seed`; then
/// avalanche. `hash_bytes(0, id)` is [`hash_id`].
fn hash_bytes(seed: u64, bytes: &[u8]) -> u64 {
    let mut h = seed ^ (bytes.len() as u64).wrapping_mul(STEP);
    let mut words = bytes.chunks_exact(8);
    for w in &mut words {
        h = mix(h, w);
    }
    let rest = words.remainder();
    if !rest.is_empty() {
        h = mix(h, rest);
    }
    h ^= h >> 32;
    h = h.wrapping_mul(FINAL);
    h ^ (h >> 29)
}

/// A [`core::hash::Hasher`] over [`hash_id`], for `hashbrown` maps keyed
/// by ids: a `str` key hashes exactly as [`hash_id`] (its trailing `0xff`
/// byte is skipped: the length is already mixed in); each further write
/// chains from the previous hash.
#[derive(Clone, Copy, Debug, Default)]
pub struct IdHasher(u64);

impl core::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // `str`'s Hash writes the bytes then a lone 0xff terminator.
        if bytes == [0xff] {
            return;
        }
        self.0 = hash_bytes(self.0, bytes);
    }
}

/// Builds [`IdHasher`]s.
pub type BuildIdHasher = core::hash::BuildHasherDefault<IdHasher>;

fn mix(h: u64, bytes: &[u8]) -> u64 {
    let mut word = [0u8; 8];
    word[..bytes.len()].copy_from_slice(bytes);
    (h ^ u64::from_le_bytes(word))
        .wrapping_mul(STEP)
        .rotate_left(27)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_byte_and_the_length_change_the_hash() {
        let base = hash_id("req-0000000001");
        assert_ne!(base, hash_id("req-0000000002"));
        assert_ne!(base, hash_id("seq-0000000001"));
        assert_ne!(hash_id("a"), hash_id("a\0"));
        assert_ne!(hash_id(""), hash_id("\0"));
        assert_eq!(base, hash_id("req-0000000001"));
        // Sequential ids spread over the low bits the table indexes with.
        let mut buckets = [0u32; 64];
        for i in 0..6_400 {
            let id = alloc::format!("req-{i}");
            buckets[(hash_id(&id) & 63) as usize] += 1;
        }
        assert!(
            buckets.iter().all(|&n| (50..=150).contains(&n)),
            "{buckets:?}"
        );
    }

    #[test]
    fn a_str_key_hashes_as_hash_id() {
        use core::hash::BuildHasher;
        for id in ["", "a", "req-0000000001", "a longer id of several words"] {
            assert_eq!(BuildIdHasher::default().hash_one(id), hash_id(id), "{id:?}");
        }
    }
}
