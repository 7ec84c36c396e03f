//! [`JobState`]: the small persistent key-value state of one job.
//!
//! Guarantees: bounded to [`MAX_STATE_ENTRIES`] entries and
//! [`MAX_STATE_BYTES`] bytes of keys and values (a write past either bound
//! is refused with [`StateFull`] and changes nothing); what a tick writes
//! is saved only if the tick succeeds (the scheduler's rule, see
//! [`TickContext`](super::TickContext)).

use std::collections::BTreeMap;

/// Most entries in a job's state: it is meant for cursors, counters and
/// checkpoints, not data sets.
pub const MAX_STATE_ENTRIES: usize = 256;

/// Most bytes (keys plus values) in a job's state: 64 KiB keeps a state
/// write one small transaction.
pub const MAX_STATE_BYTES: usize = 64 * 1024;

/// A write that would exceed [`MAX_STATE_ENTRIES`] or [`MAX_STATE_BYTES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("job state full ({MAX_STATE_ENTRIES} entries / {MAX_STATE_BYTES} bytes at most)")]
pub struct StateFull;

/// A job's persistent key-value state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JobState {
    entries: BTreeMap<String, String>,
    bytes: usize,
}

impl JobState {
    /// An empty state.
    pub fn new() -> Self {
        Self::default()
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries.get(key).map(String::as_str)
    }

    /// Set `key` to `value`; the previous value. Refused (nothing changes)
    /// past the bounds.
    pub fn set(
        &mut self,
        key: impl Into<String>,
        value: impl Into<String>,
    ) -> Result<Option<String>, StateFull> {
        let (key, value) = (key.into(), value.into());
        let old = self
            .entries
            .get(&key)
            .map(|v| key.len() + v.len())
            .unwrap_or(0);
        let bytes = self.bytes - old + key.len() + value.len();
        let len = self.entries.len() + usize::from(!self.entries.contains_key(&key));
        if bytes > MAX_STATE_BYTES || len > MAX_STATE_ENTRIES {
            return Err(StateFull);
        }
        self.bytes = bytes;
        Ok(self.entries.insert(key, value))
    }

    /// Remove `key`; its value.
    pub fn remove(&mut self, key: &str) -> Option<String> {
        let v = self.entries.remove(key)?;
        self.bytes -= key.len() + v.len();
        Some(v)
    }

    /// Every entry, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// How many entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether it has no entry.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Bytes of keys and values held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

impl FromIterator<(String, String)> for JobState {
    /// Entries past the bounds are dropped.
    fn from_iter<I: IntoIterator<Item = (String, String)>>(iter: I) -> Self {
        let mut s = JobState::new();
        for (k, v) in iter {
            let _ = s.set(k, v);
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_and_accounted() {
        let mut s = JobState::new();
        assert_eq!(s.set("a", "1"), Ok(None));
        assert_eq!(s.set("a", "22"), Ok(Some("1".into())));
        assert_eq!(s.bytes(), 3);
        assert_eq!(s.set("big", "x".repeat(MAX_STATE_BYTES)), Err(StateFull));
        assert_eq!(s.len(), 1);
        for i in 1..MAX_STATE_ENTRIES {
            s.set(format!("k{i}"), "v").unwrap();
        }
        assert_eq!(s.set("one-more", "v"), Err(StateFull));
        assert!(s.set("a", "3").is_ok(), "overwriting needs no new entry");
        assert_eq!(s.remove("a"), Some("3".into()));
        assert_eq!(s.get("a"), None);
    }
}
