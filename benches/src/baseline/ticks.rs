//! Ticks as a typical codebase writes them: one tokio task per job, each
//! sleeping its interval in a loop.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

/// Spawn one task per job; each runs `interval` apart and bumps `ticks`.
/// Abort the handles to stop them.
pub fn spawn_jobs(jobs: usize, interval: Duration, ticks: Arc<AtomicU64>) -> Vec<JoinHandle<()>> {
    (0..jobs)
        .map(|_| {
            let ticks = ticks.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(interval).await;
                    ticks.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect()
}
