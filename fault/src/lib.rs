//! Fault injection for demos and tests: [`LoopbackProxy`], a TCP proxy on
//! 127.0.0.1 that can cut every connection and refuse new ones, then
//! restore service: a network partition between a client and a gateway,
//! without touching either. It can also freeze every connection (a dead
//! link: connections stay open, no byte goes through either way, nothing
//! is closed), then thaw them.
//!
//! Guarantees: it only listens on and forwards to loopback addresses (a
//! non-loopback upstream is refused); dropping it closes everything.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A cuttable loopback proxy in front of one upstream address.
#[derive(Debug)]
pub struct LoopbackProxy {
    addr: SocketAddr,
    /// `true` while the link is cut.
    cut: Arc<watch::Sender<bool>>,
    /// Bumped on every cut, so live connections drop.
    generation: Arc<watch::Sender<u64>>,
    /// `true` while no byte is forwarded (connections stay open).
    frozen: Arc<watch::Sender<bool>>,
    task: JoinHandle<()>,
}

impl LoopbackProxy {
    /// Start forwarding from an ephemeral 127.0.0.1 port to `upstream`.
    pub async fn start(upstream: SocketAddr) -> std::io::Result<LoopbackProxy> {
        if !upstream.ip().is_loopback() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "the fault proxy only forwards to loopback addresses",
            ));
        }
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let cut = Arc::new(watch::channel(false).0);
        let generation = Arc::new(watch::channel(0u64).0);
        let frozen = Arc::new(watch::channel(false).0);
        let (cut2, gen2, frozen2) = (cut.clone(), generation.clone(), frozen.clone());
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
                let (fa, fb) = (frozen2.subscribe(), frozen2.subscribe());
                tokio::spawn(async move {
                    let Ok(outbound) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    // Forward small frames at once, as the endpoints do.
                    let _ = inbound.set_nodelay(true);
                    let _ = outbound.set_nodelay(true);
                    let (ar, aw) = inbound.into_split();
                    let (br, bw) = outbound.into_split();
                    tokio::select! {
                        _ = pump(ar, bw, fa) => {}
                        _ = pump(br, aw, fb) => {}
                        _ = gen_rx.changed() => {}
                    }
                });
            }
        });
        Ok(LoopbackProxy {
            addr,
            cut,
            generation,
            frozen,
            task,
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
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

    /// Stop forwarding bytes on every connection, live and new, without
    /// closing any: the peer looks alive to the kernel and dead to HTTP/2.
    pub fn freeze(&self) {
        self.frozen.send_replace(true);
    }

    /// Forward again what a freeze held, and everything after it.
    pub fn thaw(&self) {
        self.frozen.send_replace(false);
    }
}

impl Drop for LoopbackProxy {
    fn drop(&mut self) {
        self.task.abort();
        self.generation.send_modify(|g| *g += 1);
    }
}

/// Forward bytes one way as soon as they arrive (no buffering beyond one
/// read), until either side closes; while `frozen`, hold them.
async fn pump(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, mut frozen: watch::Receiver<bool>) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                while *frozen.borrow_and_update() {
                    if frozen.changed().await.is_err() {
                        return;
                    }
                }
                if to.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        }
    }
}
