//! Scenario 6: a wrong or missing credential gives a clear error and backs
//! off (it does not hammer the gateway); a provider that obtains a fresh
//! token after UNAUTHENTICATED gets the streams back.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tether_tests::{bounded, client_config, gateway, serve, TOKEN};
use tether_tokio::client::{CredentialProvider, Tether, TetherError, ToolCall};

/// Starts with a wrong token; after `good_after` refreshes hands out the
/// right one. Counts refreshes (one per UNAUTHENTICATED answer).
struct Rotating {
    token: Mutex<String>,
    refreshes: AtomicUsize,
    good_after: usize,
}

#[async_trait]
impl CredentialProvider for Rotating {
    async fn token(&self) -> Option<String> {
        Some(self.token.lock().unwrap().clone())
    }
    async fn refresh(&self, _rejected: &str) {
        let n = self.refreshes.fetch_add(1, Ordering::SeqCst) + 1;
        if n >= self.good_after {
            *self.token.lock().unwrap() = TOKEN.to_owned();
        }
    }
}

#[tokio::test]
async fn wrong_credential_is_a_clear_error_and_backs_off() {
    let gw = serve(gateway()).await;
    let provider = Arc::new(Rotating {
        token: Mutex::new("wrong".into()),
        refreshes: AtomicUsize::new(0),
        good_after: usize::MAX,
    });
    let config = client_config(&gw.endpoint()).with_credentials(provider.clone());
    let backoff = config.backoff.clone();
    let started = Instant::now();
    let tether = Tether::connect(config).unwrap();

    // The check fails with a clear UNAUTHENTICATED error.
    let err = tether
        .check("t:1", &ToolCall::new("read_file"))
        .await
        .unwrap_err();
    match &err {
        TetherError::Gateway(s) => assert_eq!(s.code(), tonic::Code::Unauthenticated),
        other => panic!("expected UNAUTHENTICATED, got {other:?}"),
    }
    assert!(err.to_string().contains("credential"), "{err}");

    // Watch for two seconds of wall time (bounded), then count attempts.
    let window = Duration::from_secs(2);
    tokio::time::sleep(window.saturating_sub(started.elapsed())).await;
    let elapsed = started.elapsed();
    let st = tether.status();
    assert!(!st.invalidation.connected && !st.op_control.connected);
    assert!(st
        .invalidation
        .last_error
        .as_deref()
        .is_some_and(|e| e.contains("Unauthenticated")));
    // Upper bound on attempts per stream from the backoff schedule: delays
    // are at least base x (1 - jitter) and grow by the multiplier.
    let mut bound = 1usize;
    let mut t = 0.0f64;
    let mut d = backoff.base.as_secs_f64();
    while t < elapsed.as_secs_f64() {
        t += d * (1.0 - backoff.jitter);
        d = (d * backoff.multiplier).min(backoff.max.as_secs_f64());
        bound += 1;
    }
    // Two streams plus the check (which refreshes once and retries once).
    let refreshes = provider.refreshes.load(Ordering::SeqCst);
    assert!(
        refreshes <= 2 * bound + 2,
        "{refreshes} UNAUTHENTICATED answers in {elapsed:?}; backoff allows {bound} per stream"
    );
    assert!(refreshes >= 2, "the streams did try: {refreshes}");
    tether.shutdown(Duration::from_secs(1)).await;
    gw.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_fresh_token_after_unauthenticated_brings_the_streams_back() {
    let gw = serve(gateway()).await;
    let provider = Arc::new(Rotating {
        token: Mutex::new("expired".into()),
        refreshes: AtomicUsize::new(0),
        good_after: 1,
    });
    let config = client_config(&gw.endpoint()).with_credentials(provider.clone());
    let tether = Tether::connect(config).unwrap();
    let mut st = tether.watch_status();
    bounded(
        "streams up with the refreshed token",
        st.wait_for(|s| s.invalidation.connected && s.op_control.connected),
    )
    .await
    .unwrap();
    assert!(provider.refreshes.load(Ordering::SeqCst) >= 1);
    let v = tether
        .check("t:1", &ToolCall::new("read_file"))
        .await
        .unwrap();
    assert!(v.allowed());

    // The gateway forgets every token (a restart would): the next call is
    // refused, the client refreshes once and retries with the new token.
    gw.admin().forget_tokens();
    gw.admin().add_token("rotated", tether_tests::agent_key());
    *provider.token.lock().unwrap() = "stale".into();
    let before = provider.refreshes.load(Ordering::SeqCst);
    // The provider hands out TOKEN on refresh, which the gateway forgot.
    let err = tether
        .check("t:2", &ToolCall::new("search"))
        .await
        .unwrap_err();
    assert!(matches!(err, TetherError::Gateway(ref s) if s.code() == tonic::Code::Unauthenticated));
    assert_eq!(
        provider.refreshes.load(Ordering::SeqCst),
        before + 1,
        "refreshed once, retried once"
    );
    tether.shutdown(Duration::from_secs(1)).await;
    gw.shutdown().await.unwrap();
}
