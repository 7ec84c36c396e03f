//! A throwaway `nats-server -js` on a free 127.0.0.1 port, for aa-gateway's
//! op-control signals (it publishes them through NATS JetStream).

use std::net::TcpListener as StdListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running nats-server; killed and its store removed on drop.
pub struct Nats {
    child: Child,
    port: u16,
    _store: tempfile::TempDir,
}

impl Nats {
    /// Start `nats-server -js` on a free 127.0.0.1 port and wait (at most
    /// 10 s) until it accepts connections. `None` when the `nats-server`
    /// program is not installed.
    pub fn start() -> Option<Nats> {
        let port = free_port();
        let store = tempfile::tempdir().expect("temp dir for the JetStream store");
        let spawned = Command::new("nats-server")
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
            .arg(store.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let child = match spawned {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => panic!("cannot start nats-server: {e}"),
        };
        let nats = Nats {
            child,
            port,
            _store: store,
        };
        let until = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < until,
                "nats-server did not listen on {port} within 10 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(nats)
    }

    /// `nats://127.0.0.1:{port}`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A 127.0.0.1 port nobody listens on right now.
pub fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind an ephemeral 127.0.0.1 port")
}
