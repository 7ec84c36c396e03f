//! Benchmarks for tether: the core machines and the Tokio driver, each
//! beside the straightforward Tokio design a typical codebase would write for
//! the same job (see [`baseline`]), and the end-to-end bench binary
//! (`src/bin/e2e.rs`).
//!
//! Nothing here is used at run time; the crate is not published.

pub mod baseline;
pub mod mem;
pub mod poll;
pub mod queued_e2e;
pub mod sched;

/// Sizes the per-machine criterion suites measure at.
pub const SIZES: [usize; 3] = [1_000, 100_000, 1_000_000];

/// A short human label for a size (`1k`, `100k`, `1M`).
pub fn size_label(n: usize) -> String {
    match n {
        n if n >= 1_000_000 && n % 1_000_000 == 0 => format!("{}M", n / 1_000_000),
        n if n >= 1_000 && n % 1_000 == 0 => format!("{}k", n / 1_000),
        n => n.to_string(),
    }
}

/// The criterion settings every suite uses: short, for a shared 2-core
/// machine (command-line flags still override them).
#[macro_export]
macro_rules! short_criterion {
    () => {
        criterion::Criterion::default()
            .warm_up_time(std::time::Duration::from_secs(1))
            .measurement_time(std::time::Duration::from_secs(2))
            .sample_size(10)
    };
}
