//! A real SMTP server for tests: `smtp_sink.py` (aiosmtpd) on a port of its
//! own, every accepted message read back as JSON.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/smtp_sink.py");

/// Whether the sink can run here; says so when it cannot (the SMTP tests
/// are then skipped).
pub fn available() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import aiosmtpd"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("skipped: python3 with aiosmtpd is not available (pip install aiosmtpd)");
    }
    ok
}

/// A port nothing listens on now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One received message.
#[derive(Debug, Clone)]
pub struct Received {
    pub to: Vec<String>,
    /// Headers and body, quoted-printable decoded.
    pub text: String,
    pub tls: bool,
}

impl Received {
    /// The token of the link the message carries.
    pub fn token(&self) -> Option<String> {
        let start = self.text.find("token=")? + "token=".len();
        let token: String = self.text[start..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .collect();
        (token.len() == 43).then_some(token)
    }

    pub fn subject(&self) -> Option<&str> {
        self.text
            .lines()
            .find_map(|l| l.strip_prefix("Subject: "))
            .map(str::trim)
    }
}

/// Undoes quoted-printable: soft line breaks and `=XX` escapes.
fn unquote(data: &str) -> String {
    let joined = data.replace("=\r\n", "").replace("=\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'=', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub struct Sink {
    child: Child,
    pub port: u16,
    received: Arc<Mutex<Vec<Received>>>,
}

impl Sink {
    /// Starts the sink on `port`, offering (and requiring) STARTTLS with
    /// `tls` (certificate and key files); waits until it listens.
    pub fn start(port: u16, tls: Option<(&Path, &Path)>) -> Self {
        let mut cmd = Command::new("python3");
        cmd.arg(SCRIPT).arg(port.to_string());
        if let Some((cert, key)) = tls {
            cmd.arg(cert).arg(key);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let sink = received.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let Ok(v) = serde_json::from_str::<Value>(&line) else {
                    continue;
                };
                if v.get("ready").is_some() {
                    let _ = ready_tx.send(());
                    continue;
                }
                sink.lock().unwrap().push(Received {
                    to: serde_json::from_value(v["to"].clone()).unwrap_or_default(),
                    text: unquote(v["data"].as_str().unwrap_or_default()),
                    tls: v["tls"].as_bool().unwrap_or(false),
                });
            }
        });
        ready_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the SMTP sink started");
        Self {
            child,
            port,
            received,
        }
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// The messages to `to`, waiting up to `within` for at least `n`.
    pub async fn wait_for(&self, to: &str, n: usize, within: Duration) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let mine: Vec<Received> = self
                .received()
                .into_iter()
                .filter(|m| m.to.iter().any(|t| t == to))
                .collect();
            if mine.len() >= n || tokio::time::Instant::now() >= deadline {
                return mine;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops the sink (the port closes: mail cannot be delivered).
    pub fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
