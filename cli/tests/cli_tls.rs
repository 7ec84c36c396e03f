//! `tether gateway --tls-cert --tls-key` serves TLS: `ctl` and `agent`
//! reach it over `https://` trusting the test CA, and a client that does not
//! trust it fails with one line.
//!
//! The certificates below are test fixtures only (a throwaway CA and a
//! `localhost`/`127.0.0.1` leaf valid for 100 years); never use them
//! elsewhere.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::Duration;

const CA_PEM: &str = "-----BEGIN CERTIFICATE-----\n\
MIIDHTCCAgWgAwIBAgIULjlYvR/KzBW0CXnuAk/0ZoOOk+kwDQYJKoZIhvcNAQEL\n\
BQAwHTEbMBkGA1UEAwwSdGV0aGVyLWNsaS10ZXN0LWNhMCAXDTI2MTEyMzEwNDY0\n\
OFoYDzIxMjYxMDMwMTA0NjQ4WjAdMRswGQYDVQQDDBJ0ZXRoZXItY2xpLXRlc3Qt\n\
Y2EwggEiMA0GCSqGSIb3DQEBAQUAA4IBDwAwggEKAoIBAQC1u5EI55Zg99QYSgUI\n\
nNuvIl451+s9tlJB4yErMd/MYQzrbP+Kp3cUeQgdi9Db2RCjB8uX4M0NX3lVMumS\n\
CXlLBWa9Z7j4jPQtMnTIOj28kT+6uFjKzmao/LkawKS3rTC+0+zRJLNE1oyEufLZ\n\
wnHma8r7AjQaW3rEBS5MMQVoUEK30MFdngbEgWeaG47bGeVVw0L0G/BcmCrRema7\n\
5uIqX1v0vYJAcpaeZwy5j4dQYT/EXrdiF7grDPDg/xQy7ey75t5uiPS12TGd0IiI\n\
ynyENltWxSsFJqVf5A5wme48eJL4l0YhXXN075zWLsCr/dLqqonaGZ2yk/GrlEDv\n\
jEJJAgMBAAGjUzBRMB0GA1UdDgQWBBSjO0cdOlKA1q45dmjQ3xRT1iNASjAfBgNV\n\
HSMEGDAWgBSjO0cdOlKA1q45dmjQ3xRT1iNASjAPBgNVHRMBAf8EBTADAQH/MA0G\n\
CSqGSIb3DQEBCwUAA4IBAQBsVt5CpAi+ajndbpL+nU8/g2I4+3ffTHwjo3zs68lb\n\
7nsXmDgkZ8PsIj4YO6aBOmZTrDOhSNBIo/dy2Ma6TbT3sAXmBrGZF2WLW4fe0L0y\n\
yBpHR2JalOmW6MTDI/e7kvuSCRBkAL0t3QQr+UCJVT1nJSgEpHqouKw2oZdsDQgR\n\
UPBEguGhDLnmQjAAJFImMaFHna3GlChJ2183O3NEH4v7iHk8cakTiF6mJHy24G6H\n\
A9Pf9ZEHTuOlwIYiKAlgdZNdurb760JsIHv3sY8NZiLNcBoMula5gHCIt6vSe6Kk\n\
VU3rfgcMbs6FXQlpkqOeX/lNy91aIqAXFZcXayj7sXMx\n\
-----END CERTIFICATE-----\n\
";
const CERT_PEM: &str = "-----BEGIN CERTIFICATE-----\n\
MIIDKjCCAhKgAwIBAgIUQUieyKfrS289Wp4i7ZHPVRgAy84wDQYJKoZIhvcNAQEL\n\
BQAwHTEbMBkGA1UEAwwSdGV0aGVyLWNsaS10ZXN0LWNhMCAXDTI2MTEyMzEwNDY0\n\
OFoYDzIxMjYxMDMwMTA0NjQ4WjAUMRIwEAYDVQQDDAlsb2NhbGhvc3QwggEiMA0G\n\
CSqGSIb3DQEBAQUAA4IBDwAwggEKAoIBAQDairXpKqTpKdsN41R3h8ytMJMyZuUg\n\
IhFqUQ1FeVmcK3eun86idVdUaI8pw93a3r+Gz+/MCXQ99tJPAbHi5RYvhx7R++Xr\n\
LQACt1x0C1G4N8iBZDtINUYytnRyKXNw0dml2tNDQ2X99m1GacFLSfUQukCeauZF\n\
9tInuJfqSqYccffCwEu3LUb3LyZfsngaKNU/DCa74LlTLLDDvvBN7nlQOITV48u6\n\
R96j44gncIYRzi+G63MTQGbUHbDNmVmoOG4RyVLlo9KloMT7B3P+W6Vz35/toyX9\n\
BRwyusY6jbuRTjHfbbu+Y9YPenj31ZCfPo+tlx6KqY7BFTbpmwdRp1MTAgMBAAGj\n\
aTBnMAkGA1UdEwQCMAAwGgYDVR0RBBMwEYIJbG9jYWxob3N0hwR/AAABMB0GA1Ud\n\
DgQWBBRCULoQTYqzlKh7r3lphnA5JGRS1zAfBgNVHSMEGDAWgBSjO0cdOlKA1q45\n\
dmjQ3xRT1iNASjANBgkqhkiG9w0BAQsFAAOCAQEAKCYqnD0tMo4jzwdq024R6U5F\n\
/0vkMMgtTpEw+31AGjGY947ns+VaAv1BzD2bwtN7H7f1yOedyZ8cfalBnJKiZBgb\n\
MxBnsU31Oq1BK8/o2X5bwXyYcWtFTsyzLjYjgaGNCgO6O8q3QhfjVoZRmtaVPA0i\n\
NPb4BgrBNB+plP6I2VzQ9qcu3WwOKbABwhN6/aOZcj7PqZnQK4UlIMstF2nTsu3R\n\
9SXn8xG/FaKtd9J7pSeYXEX+qL/cRrYePFxZrbXdOvF/Vl3g2kNxvU7WWN2RBHcX\n\
VQ6HuUbYKCtuFVBG1H8bhqmoXHTJYVS0gzKfhUKRLaFRVR9ZVRriMc8pohXvBw==\n\
-----END CERTIFICATE-----\n\
";
const KEY_PEM: &str = "-----BEGIN PRIVATE KEY-----\n\
MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQDairXpKqTpKdsN\n\
41R3h8ytMJMyZuUgIhFqUQ1FeVmcK3eun86idVdUaI8pw93a3r+Gz+/MCXQ99tJP\n\
AbHi5RYvhx7R++XrLQACt1x0C1G4N8iBZDtINUYytnRyKXNw0dml2tNDQ2X99m1G\n\
acFLSfUQukCeauZF9tInuJfqSqYccffCwEu3LUb3LyZfsngaKNU/DCa74LlTLLDD\n\
vvBN7nlQOITV48u6R96j44gncIYRzi+G63MTQGbUHbDNmVmoOG4RyVLlo9KloMT7\n\
B3P+W6Vz35/toyX9BRwyusY6jbuRTjHfbbu+Y9YPenj31ZCfPo+tlx6KqY7BFTbp\n\
mwdRp1MTAgMBAAECggEAG2zVf/RHtlxNTsSHgL88Upj07+9KXlTy0IppWvLr6ZWU\n\
MwgqUJLfKbWRZGazEa4VukpKnSqr5BbJtPvRIgMpBz/dVfFW8hi3QUqswddQeF4a\n\
aGUhV2IayW8Xf+LEcj+zdi/W2+sPrTuJN7vlHkNNYL2u3EfYAVGvH9L3etccBMJB\n\
O20hpA3s3fsI2lJgQtC9RLGjm0JpfWZmsutBKVeH8ierMtlTRFkqaTJ8gGhOLSUT\n\
PoT8MMlC8KeSRRMDbR0kV/abdPSB135tnnY8gqmbfq7fIkwWowzu2ZQdaLf6lmU3\n\
9DdrXPiFlefH+ep3nkg3O+zLQsXgAurnoRWbZIPa6QKBgQDwUUN+iSUNLASZx+I4\n\
4gsBzM3/pe+V0e7BVFaEPcdPp2GQBDpP7gdo+aAjPvpuFKg5ICz4h8kEDN+gs3br\n\
r4cuXEGSbImlsDHm5C+Go6eQlR7VXIOHxGwY4qep4YurHp9PivVpXRqV7I3LRZkQ\n\
6MjsOKn4nrImRKH3T5l6NVOrJwKBgQDozaoW4hMcwUKti6qwgXO5US2itINvBnA5\n\
Klk9bSui1j7TtFBHq4i5Pb8yOdq694memArVDIQK2MLvyErbyLfYDWyrJNJJ4tzO\n\
GoquSzrGLpqCtbYz7Y2c9hEBPbqGSKBDo/+lAqxvd67FMj+a95fSH1DCc++aGVAW\n\
wLM7GOJ8NQKBgQCHLh8aUYkPBMC9xEtDlht88ri54pyHmSSFiax1DM9NxijCOy6W\n\
AZ4XdbuXt/hk7afHIotJbhAsABXXLrxpTT5sXKbh973h/t/DMn5tbSd30/oZKMYw\n\
G9R2lyCbFe1b34jb1J3BnAa1aPBF9KtqcJd9EU7DNHmfvyGgnR0HOnILJwKBgBXp\n\
BVESBep25eefdXkXNeUDFuBxTM1uNbGroqp9U9YHg/I4zjVwl3WXsh7wAv4FvhYH\n\
CT3z55l9vRsEJsd4pJTY7plM5d2+VDmxlcvBmM5+JFyY7YUFnoZfQkpznNJ2k17K\n\
WI0XK1NyWCiHCiVzl/5WpCso7iv6peb+S+AL/4ThAoGBAM9Vy/FkgBl8yLRFEkyU\n\
Pb7RES7jUzXm9KzifpOnpfiw/XLEnl4SY4L44WMJ67LjTnU46hfEVeRHIF6W9P/y\n\
4ce4MBibvmnDcluyy4GnJDeIrS7+ZkEIiEI2/KIO5lfaVdM/LHoF1SaSgeH5da+0\n\
YnO0JU8Q/kBOGKpegQvVR/Nq\n\
-----END PRIVATE KEY-----\n\
";

/// Kills the child when the test ends.
struct Guard(std::process::Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn file(text: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().expect("temp file");
    f.write_all(text.as_bytes()).expect("write");
    f
}

fn tether(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tether"));
    c.args(args).env("RUST_LOG", "error").stdin(Stdio::null());
    c
}

/// Run to completion, bounded by a watchdog that kills the process.
fn run(args: &[&str]) -> std::process::Output {
    let child = tether(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        if rx.recv_timeout(Duration::from_secs(30)).is_err() {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
    });
    let out = child.wait_with_output().expect("wait");
    let _ = tx.send(());
    out
}

#[test]
fn gateway_serves_tls() {
    let (cert, key, ca) = (file(CERT_PEM), file(KEY_PEM), file(CA_PEM));
    let path = |f: &tempfile::NamedTempFile| f.path().to_str().expect("utf-8").to_owned();
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let listen = format!("127.0.0.1:{port}");
    let mut gw = Guard(
        tether(&[
            "gateway",
            "--listen",
            &listen,
            "--tls-cert",
            &path(&cert),
            "--tls-key",
            &path(&key),
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn gateway"),
    );
    let (tx, rx) = std::sync::mpsc::channel();
    let out = gw.0.stdout.take().expect("stdout");
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let line = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("listening line");
    assert_eq!(line, format!("gateway listening on {listen} (https)"));

    let url = format!("https://localhost:{port}");
    let ca = path(&ca);
    let out = run(&["ctl", "--gateway", &url, "--ca-cert", &ca, "status"]);
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).starts_with(&format!("gateway {url} ")));

    let out = run(&[
        "agent",
        "--gateway",
        &url,
        "--ca-cert",
        &ca,
        "--count",
        "1",
        "--tools",
        "read_file",
    ]);
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout
            .lines()
            .any(|l| l.contains(" verdict trace-1:span-1 read_file allow ")),
        "{stdout}"
    );

    // Without the CA the certificate is not trusted: one line, exit 1.
    let out = run(&["ctl", "--gateway", &url, "status"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with(&format!(
            "error: cannot reach gateway at localhost:{port}: "
        )),
        "{stderr}"
    );
}
