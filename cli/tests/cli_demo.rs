//! `tether demo` run as a process: it exits 0 and its summary says every
//! guarantee held.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Kills the child when the test ends, however it ends.
struct Guard(std::process::Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]

fn demo_exits_zero_and_every_guarantee_held() {
    let mut child = Guard(
        Command::new(env!("CARGO_BIN_EXE_tether"))
            .arg("demo")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn tether demo"),
    );
    let mut out = child.0.stdout.take().expect("stdout");
    let mut err = child.0.stderr.take().expect("stderr");
    let out_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.0.try_wait().expect("wait") {
            break status;
        }
        assert!(Instant::now() < deadline, "tether demo took over 120 s");
        std::thread::sleep(Duration::from_millis(100));
    };
    let stdout = out_reader.join().expect("stdout reader");
    let stderr = err_reader.join().expect("stderr reader");
    assert!(
        status.success(),
        "demo exited {status}\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stdout.contains("summary"), "no summary:\n{stdout}");
    assert!(
        stdout.contains("guarantees held"),
        "no held count:\n{stdout}"
    );
    assert!(
        !stdout.lines().any(|l| l.contains("FAILED")),
        "a guarantee failed:\n{stdout}"
    );
    assert!(
        stdout.lines().any(|l| l.contains("HELD")),
        "no guarantee marked HELD:\n{stdout}"
    );
    // The timeline is the demo's own: no library log line (the demo cuts
    // the link and restarts the gateway, which the client logs as
    // warnings) and no terminal colour codes when piped.
    for (name, text) in [("stdout", &stdout), ("stderr", &stderr)] {
        assert!(
            !text
                .lines()
                .any(|l| l.contains(" WARN ") || l.contains(" INFO ")),
            "library log lines in the demo's {name}:\n{text}"
        );
        assert!(
            !text.contains('\u{1b}'),
            "colour codes in piped {name}:\n{text}"
        );
    }
}
