//! The client's reconnect counter (`tether_reconnects_total`) counts every
//! reconnect of each stream, and `tether_stream_swaps_total` every move of
//! a stream off a draining gateway. A recorder of this test's own, installed for
//! the test's thread: a current-thread runtime runs the client's tasks on
//! it. Real tonic on 127.0.0.1.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use metrics::{
    Counter, CounterFn, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit,
};
use tether_tests::{bounded, client_config, connected, gateway, serve, until};
use tokio::net::TcpListener;

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

#[test]
fn a_move_off_a_draining_gateway_is_counted_per_stream_with_its_reason() {
    let counts = Counts::default();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    metrics::with_local_recorder(&counts, || {
        rt.block_on(async {
            let a = serve(gateway()).await;
            let port = a.local_addr().port();
            let tether = connected(client_config(&a.endpoint())).await;
            let inv = "tether_stream_swaps_total{stream=invalidation,reason=peer_draining}";
            let ops = "tether_stream_swaps_total{stream=op_control,reason=peer_draining}";
            assert_eq!((counts.get(inv), counts.get(ops)), (0, 0));
            // Both streams up longer than the backoff's base (50 ms here).
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            a.drain().await;
            let b = bounded("B binds the port A released", async {
                loop {
                    match TcpListener::bind(("127.0.0.1", port)).await {
                        Ok(l) => break gateway().serve(l).await.unwrap(),
                        Err(_) => tokio::time::sleep(std::time::Duration::from_millis(5)).await,
                    }
                }
            })
            .await;
            let b_admin = b.admin();
            until("both streams moved to B", || {
                let s = b_admin.status();
                s.invalidation_streams == 1 && s.op_control_streams == 1
            })
            .await;
            until("each move is counted once", || {
                counts.get(inv) == 1 && counts.get(ops) == 1
            })
            .await;
            let st = tether.status();
            assert_eq!(
                (st.invalidation.drain_swaps, st.op_control.drain_swaps),
                (1, 1)
            );
            tether.shutdown(std::time::Duration::from_secs(1)).await;
            b.shutdown().await.unwrap();
            a.shutdown().await.unwrap();
        })
    });
}
