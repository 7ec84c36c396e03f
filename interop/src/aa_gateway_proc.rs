//! Agent Assembly's real gateway as a child process (the
//! `aa-gateway-serve` binary of this crate), on a free 127.0.0.1 port, with
//! its home, audit log and databases in a temporary directory.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::nats::free_port;

/// A running aa-gateway; killed on drop. Its directory outlives a
/// [`AaGateway::restart`].
pub struct AaGateway {
    child: Option<Child>,
    port: u16,
    exe: String,
    dir: tempfile::TempDir,
    nats_url: Option<String>,
}

impl AaGateway {
    /// Start the gateway binary `exe` with the policy `policy_yaml`, op
    /// control bridged from NATS when `nats_url` is given, and wait (at
    /// most 60 s) until it listens.
    pub fn start(exe: &str, policy_yaml: &str, nats_url: Option<String>) -> AaGateway {
        let dir = tempfile::tempdir().expect("temp dir for the aa-gateway");
        std::fs::write(dir.path().join("policy.yaml"), policy_yaml).expect("write policy");
        let mut gw = AaGateway {
            child: None,
            port: free_port(),
            exe: exe.to_owned(),
            dir,
            nats_url,
        };
        gw.spawn();
        gw
    }

    fn spawn(&mut self) {
        let d = self.dir.path();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(d.join("gateway.log"))
            .expect("gateway log");
        let mut cmd = Command::new(&self.exe);
        cmd.arg(d.join("policy.yaml"))
            .arg(format!("127.0.0.1:{}", self.port))
            .arg(d.join("registry.db"))
            .env("HOME", d)
            .env("AA_AUDIT_DIR", d.join("audit"))
            .env("AA_GATEWAY_DB_PATH", d.join("gateway.db"))
            .env("RUST_LOG", "warn")
            .env_remove("AA_OPCONTROL_NATS_URL")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log fd"))
            .stderr(log);
        if let Some(url) = &self.nats_url {
            cmd.env("AA_OPCONTROL_NATS_URL", url);
        }
        let mut child = cmd.spawn().expect("spawn aa-gateway-serve");
        let until = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("aa-gateway exited with {status}:\n{}", self.log());
            }
            assert!(
                Instant::now() < until,
                "aa-gateway did not listen within 60 s:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        self.child = Some(child);
    }

    /// `http://127.0.0.1:{port}`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The gateway's own log so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("gateway.log")).unwrap_or_default()
    }

    /// The temporary directory holding its state.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Kill the process (as a crash would).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Kill it and start it again on the same port with the same state.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }
}

impl Drop for AaGateway {
    fn drop(&mut self) {
        self.stop();
    }
}
