//! Resident memory of this process, read from `/proc/self/statm`.

/// Resident set size in bytes, or `None` where `/proc/self/statm` cannot be
/// read (not Linux).
pub fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * page_size())
}

/// The page size `statm` counts in. Linux on the machines we run on uses
/// 4 KiB pages; `/proc/self/smaps_rollup` is not needed for a delta.
fn page_size() -> u64 {
    4096
}
