//! The client's reconnect counter (`tether_reconnects_total`) counts every
//! reconnect of each stream. A recorder of this test's own, installed for
//! the test's thread: a current-thread runtime runs the client's tasks on
//! it. Real tonic on 127.0.0.1.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use metrics::{
    Counter, CounterFn, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit,
};
use tether_tests::{bounded, client_config, connected, gateway, serve, until};

/// Counters by name and labels (`name{k=v,...}`); gauges and histograms
/// are dropped.
#[derive(Default, Clone)]
struct Counts(Arc<Mutex<HashMap<String, Arc<Count>>>>);

#[derive(Default)]
struct Count(AtomicU64);

impl CounterFn for Count {
    fn increment(&self, value: u64) {
        self.0.fetch_add(value, Ordering::Relaxed);
    }
    fn absolute(&self, value: u64) {
        self.0.store(value, Ordering::Relaxed);
    }
}

impl Counts {
    fn get(&self, name: &str) -> u64 {
        self.0
            .lock()
            .unwrap()
            .get(name)
            .map_or(0, |c| c.0.load(Ordering::Relaxed))
    }
}

impl Recorder for Counts {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        let labels: Vec<String> = key
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        let name = format!("{}{{{}}}", key.name(), labels.join(","));
        let count = self.0.lock().unwrap().entry(name).or_default().clone();
        Counter::from_arc(count)
    }
    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::noop()
    }
    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::noop()
    }
}

#[test]
fn every_reconnect_of_the_invalidation_stream_is_counted() {
    let counts = Counts::default();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    metrics::with_local_recorder(&counts, || {
        rt.block_on(async {
            let gw = serve(gateway()).await;
            let admin = gw.admin();
            let tether = connected(client_config(&gw.endpoint())).await;
            let name = "tether_reconnects_total{stream=invalidation}";
            assert_eq!(counts.get(name), 0);
            for n in 1..=3u64 {
                assert!(admin.close_subscription("runtime-1"));
                let mut st = tether.watch_status();
                bounded(
                    "the invalidation stream is back",
                    st.wait_for(|s| s.invalidation.connected && s.invalidation.reconnects == n),
                )
                .await
                .unwrap();
                until("the reconnect is counted", || counts.get(name) == n).await;
            }
            tether.shutdown(std::time::Duration::from_secs(1)).await;
            gw.shutdown().await.unwrap();
        })
    });
}
