//! Notices that the gateway behind a stream's connection is draining: it
//! sent an HTTP/2 GOAWAY frame (a graceful shutdown) on that connection.
//!
//! A draining gateway refuses new streams on the connection but may keep the
//! open ones for as long as it likes, while its replacement serves new
//! connections on the same address: a stream left there hears nothing the
//! replacement publishes. tonic and hyper do not report a received GOAWAY to
//! the caller of an open stream, so each stream channel connects through
//! [`GoawayConnector`], whose sockets watch the bytes the server sends: after
//! the TCP connect they are HTTP/2 frames from the server's first byte (its
//! SETTINGS frame; the 24-byte preface travels the other way only), each a
//! 9-byte header (24-bit length, type, flags, stream id) and a payload that
//! is skipped unread. A frame of type `0x7` (GOAWAY) marks the connection
//! draining in its [`DrainWatch`]; the stream task then tells the core
//! machine, which decides what happens (`SUB_DRAIN_FOLLOWED`,
//! `BACKOFF_DRAIN_NOT_A_FAILURE`), and reopens on a channel built afresh, so
//! the reopened stream is on a new connection (a draining connection takes
//! no new stream).
//!
//! Limits: only plaintext (`http://`, h2c) connections can be scanned; under
//! TLS the frames are encrypted below this layer. There the checks' channel
//! connects through a [`GoawayConnector`] that only counts its connections:
//! hyper opens a new one for the next check after the old one was told to
//! go away (or broke), and a stream still on a connection made before that
//! is moved the same way (a weaker signal: it needs a check, and a broken
//! checks connection moves the streams too, which costs a resume and
//! nothing else). A channel the user supplies
//! ([`TetherConfig::with_channel`](super::TetherConfig::with_channel)) is not
//! watched either.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tonic::codegen::http::Uri;

/// HTTP/2 frame type of GOAWAY (RFC 9113, 6.8).
const GOAWAY: u8 = 0x7;
/// Length of an HTTP/2 frame header.
const HEADER: usize = 9;

/// Whether the latest connection of one channel was told to go away.
/// Cheap to clone; shared by the channel's connector and its stream task.
#[derive(Clone, Debug)]
pub(crate) struct DrainWatch {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Connections made so far; the latest one's number.
    latest: watch::Sender<u64>,
    /// `true` once the latest connection received a GOAWAY.
    draining: watch::Sender<bool>,
}

impl DrainWatch {
    pub(crate) fn new() -> Self {
        DrainWatch {
            inner: Arc::new(Inner {
                latest: watch::Sender::new(0),
                draining: watch::Sender::new(false),
            }),
        }
    }

    /// A new connection was made: it becomes the latest, not draining.
    fn connected(&self) -> u64 {
        let mut id = 0;
        self.inner.latest.send_modify(|n| {
            *n += 1;
            id = *n;
        });
        self.inner.draining.send_replace(false);
        id
    }

    /// Connection `id` received a GOAWAY; only the latest one counts (an
    /// older one carries no stream any more).
    fn goaway(&self, id: u64) {
        if *self.inner.latest.borrow() == id {
            self.inner.draining.send_replace(true);
        }
    }

    /// Whether the latest connection is draining now.
    #[cfg(test)]
    pub(crate) fn is_draining(&self) -> bool {
        *self.inner.draining.borrow()
    }

    /// Connections made so far.
    pub(crate) fn connections(&self) -> u64 {
        *self.inner.latest.borrow()
    }

    /// Resolves once more than `seen` connections were made, and at least
    /// two (the first connection replaces none).
    pub(crate) async fn renewed_after(&self, seen: u64) {
        let mut rx = self.inner.latest.subscribe();
        let _ = rx.wait_for(|n| *n > seen && *n >= 2).await;
    }

    /// Resolves once the latest connection is draining (at once if it is).
    pub(crate) async fn draining(&self) {
        let mut rx = self.inner.draining.subscribe();
        // The sender lives in `self`, so this only returns once it is true.
        let _ = rx.wait_for(|d| *d).await;
    }
}

/// Connects plain TCP for a tonic channel and watches each connection for a
/// GOAWAY (see the module docs). tonic adds its connect timeout around it.
#[derive(Clone, Debug)]
pub(crate) struct GoawayConnector {
    watch: DrainWatch,
    nodelay: bool,
    /// Scan the bytes (plaintext), or only count the connections (TLS).
    scan: bool,
}

impl GoawayConnector {
    /// Connections scanned for a GOAWAY (plaintext only).
    pub(crate) fn new(watch: DrainWatch, nodelay: bool) -> Self {
        GoawayConnector {
            watch,
            nodelay,
            scan: true,
        }
    }

    /// Connections only counted (under TLS, which tonic adds on top).
    pub(crate) fn counting(watch: DrainWatch, nodelay: bool) -> Self {
        GoawayConnector {
            watch,
            nodelay,
            scan: false,
        }
    }
}

impl tonic::codegen::Service<Uri> for GoawayConnector {
    type Response = TokioIo<Watched<TcpStream>>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<Self::Response>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let watch = self.watch.clone();
        let nodelay = self.nodelay;
        let scan = self.scan;
        Box::pin(async move {
            let host = uri
                .host()
                .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no host in the URL"))?
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned();
            let port = uri.port_u16().unwrap_or(80);
            let tcp = TcpStream::connect((host.as_str(), port)).await?;
            tcp.set_nodelay(nodelay)?;
            let id = watch.connected();
            Ok(TokioIo::new(Watched {
                io: tcp,
                scan: FrameScan {
                    done: !scan,
                    ..FrameScan::default()
                },
                watch,
                id,
            }))
        })
    }
}

/// A socket whose incoming bytes are scanned for a GOAWAY frame.
#[derive(Debug)]
pub(crate) struct Watched<T> {
    io: T,
    scan: FrameScan,
    watch: DrainWatch,
    id: u64,
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        let polled = Pin::new(&mut this.io).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            if this.scan.feed(&buf.filled()[before..]) {
                this.watch.goaway(this.id);
            }
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

/// Walks the server's HTTP/2 frames header by header, skipping payloads.
#[derive(Debug, Default)]
struct FrameScan {
    header: [u8; HEADER],
    /// Header bytes gathered so far.
    have: usize,
    /// Payload bytes of the current frame still to skip.
    skip: u64,
    /// A GOAWAY was seen: nothing more to look for.
    done: bool,
}

impl FrameScan {
    /// Scan `bytes`, the next bytes from the server. Returns `true` the
    /// first time a GOAWAY frame header is complete.
    fn feed(&mut self, mut bytes: &[u8]) -> bool {
        while !self.done && !bytes.is_empty() {
            if self.skip > 0 {
                let n = usize::try_from(self.skip).map_or(bytes.len(), |s| s.min(bytes.len()));
                self.skip -= n as u64;
                bytes = &bytes[n..];
                continue;
            }
            let n = (HEADER - self.have).min(bytes.len());
            self.header[self.have..self.have + n].copy_from_slice(&bytes[..n]);
            self.have += n;
            bytes = &bytes[n..];
            if self.have == HEADER {
                self.have = 0;
                let h = self.header;
                self.skip = u64::from(h[0]) << 16 | u64::from(h[1]) << 8 | u64::from(h[2]);
                if h[3] == GOAWAY {
                    self.done = true;
                    return true;
                }
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: u8, payload: &[u8]) -> Vec<u8> {
        let len = payload.len();
        let mut f = vec![
            (len >> 16) as u8,
            (len >> 8) as u8,
            len as u8,
            kind,
            0,
            0,
            0,
            0,
            0,
        ];
        f.extend_from_slice(payload);
        f
    }

    #[test]
    fn finds_a_goaway_after_other_frames_whatever_the_read_sizes() {
        let mut bytes = frame(0x4, &[0; 18]); // SETTINGS
        bytes.extend(frame(0x0, &[7; 300])); // DATA, a GOAWAY type byte inside
        bytes.extend(frame(0x0, &[GOAWAY; 20]));
        bytes.extend(frame(GOAWAY, &[0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0]));
        for chunk in [1, 2, 5, 9, 10, 64, 4096] {
            let mut scan = FrameScan::default();
            let hits = bytes.chunks(chunk).filter(|c| scan.feed(c)).count();
            assert_eq!(hits, 1, "chunk {chunk}");
        }
    }

    #[test]
    fn frames_without_a_goaway_are_not_one() {
        let mut bytes = frame(0x4, &[]);
        bytes.extend(frame(0x1, &[GOAWAY; 40])); // HEADERS
        bytes.extend(frame(0x6, &[GOAWAY; 8])); // PING
        let mut scan = FrameScan::default();
        assert!(!bytes.chunks(3).any(|c| scan.feed(c)));
    }

    #[tokio::test]
    async fn only_the_latest_connection_counts() {
        let w = DrainWatch::new();
        let first = w.connected();
        let second = w.connected();
        w.goaway(first);
        assert!(!w.is_draining());
        w.goaway(second);
        assert!(w.is_draining());
        tokio::time::timeout(std::time::Duration::from_secs(1), w.draining())
            .await
            .unwrap();
        w.connected();
        assert!(!w.is_draining());
    }
}
