//! A TCP proxy on 127.0.0.1 that can cut every connection and refuse new
//! ones, then restore service: a network partition between a client and a
//! gateway, without touching either.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A cuttable loopback proxy in front of one upstream address.
#[derive(Debug)]
pub struct Proxy {
    addr: SocketAddr,
    /// `true` while the link is cut.
    cut: Arc<watch::Sender<bool>>,
    /// Bumped on every cut, so live connections drop.
    generation: Arc<watch::Sender<u64>>,
    task: JoinHandle<()>,
}

impl Proxy {
    /// Start forwarding from an ephemeral 127.0.0.1 port to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Proxy {
        assert!(upstream.ip().is_loopback(), "tests only proxy to loopback");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy addr");
        let cut = Arc::new(watch::channel(false).0);
        let generation = Arc::new(watch::channel(0u64).0);
        let (cut2, gen2) = (cut.clone(), generation.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((inbound, _)) = listener.accept().await else {
                    return;
                };
                if *cut2.borrow() {
                    drop(inbound); // refused while cut
                    continue;
                }
                let mut gen_rx = gen2.subscribe();
                tokio::spawn(async move {
                    let Ok(outbound) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    let (mut a, mut b) = (inbound, outbound);
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut a, &mut b) => {}
                        _ = gen_rx.changed() => {}
                    }
                });
            }
        });
        Proxy {
            addr,
            cut,
            generation,
            task,
        }
    }

    /// The URL clients should use.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Drop every live connection and refuse new ones.
    pub fn cut(&self) {
        self.cut.send_replace(true);
        self.generation.send_modify(|g| *g += 1);
    }

    /// Accept connections again.
    pub fn restore(&self) {
        self.cut.send_replace(false);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
        self.generation.send_modify(|g| *g += 1);
    }
}
