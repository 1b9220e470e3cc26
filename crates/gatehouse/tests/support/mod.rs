//! Running the `gatehouse` binary in tests: a clean environment, and a
//! `serve` process whose addresses come from its startup log line.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "shared by test crates that each use part of it; test code fails loudly"
)]

pub mod browser;
pub mod deployment;
pub mod pages;
pub mod smtp;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::Receiver;
use std::thread::JoinHandle;
use std::time::Duration;

/// The binary with a clean environment inside `dir` (so no developer
/// `.env` or `./data` is picked up), with `vars` set.
pub fn gatehouse(dir: &Path, vars: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gatehouse"));
    cmd.current_dir(dir).env_clear();
    if let Ok(path) = std::env::var("PATH") {
        cmd.env("PATH", path);
    }
    cmd.envs(vars.iter().copied());
    cmd
}

/// A running `gatehouse serve`; killed when dropped unless stopped.
pub struct Server {
    child: Option<Child>,
    /// The public and the metrics listener, as `host:port`.
    pub addr: String,
    pub metrics_addr: String,
    /// The redirect-to-HTTPS listener, when `HTTP_REDIRECT_ADDR` is set.
    pub redirect_addr: Option<String>,
    /// Every stdout line, handed back by [`Server::stop`].
    lines: Option<JoinHandle<Vec<String>>>,
    /// Every stdout line after the startup line, as it is written.
    live: Receiver<serde_json::Value>,
}

/// Starts `cmd serve` and waits (up to a minute) for its startup line.
pub fn serve(mut cmd: Command) -> Server {
    let mut child = cmd
        .arg("serve")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let (live_tx, live) = std::sync::mpsc::channel();
    let lines = std::thread::spawn(move || {
        let mut lines = Vec::new();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
                if v["message"] == "gatehouse listening" {
                    let _ = addr_tx.send(v.clone());
                }
                let _ = live_tx.send(v);
            }
            lines.push(line);
        }
        lines
    });
    let started = addr_rx
        .recv_timeout(Duration::from_secs(60))
        .expect("server reported its addresses");
    let addr_of = |field: &str| started[field].as_str().map(str::to_owned);
    Server {
        child: Some(child),
        addr: addr_of("addr").unwrap_or_default(),
        metrics_addr: addr_of("metrics_addr").unwrap_or_default(),
        redirect_addr: addr_of("redirect_addr"),
        lines: Some(lines),
        live,
    }
}

impl Server {
    /// Sends SIGHUP (reload the TLS certificate).
    pub fn hangup(&self) {
        let child = self.child.as_ref().unwrap();
        let kill = Command::new("kill")
            .args(["-HUP", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(kill.success());
    }

    /// Waits (up to a minute) for the next log line with this message.
    pub fn wait_for(&self, message: &str) -> serde_json::Value {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let line = self
                .live
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no log line `{message}`"));
            if line["message"] == message {
                return line;
            }
        }
    }

    /// Sends SIGTERM, waits for the exit, and returns its status and every
    /// line the server wrote to stdout.
    pub fn stop(mut self) -> (ExitStatus, Vec<String>) {
        let mut child = self.child.take().unwrap();
        let kill = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(kill.success());
        let status = child.wait().unwrap();
        let lines = self.lines.take().unwrap().join().unwrap();
        (status, lines)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
