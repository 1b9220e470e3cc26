//! Running the `gatehouse` binary in tests: a clean environment, and a
//! `serve` process whose addresses come from its startup log line.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "shared by test crates that each use part of it; test code fails loudly"
)]

pub mod deployment;
pub mod smtp;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
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
    /// Every stdout line, handed back by [`Server::stop`].
    lines: Option<JoinHandle<Vec<String>>>,
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
    let lines = std::thread::spawn(move || {
        let mut lines = Vec::new();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
                && v["message"] == "gatehouse listening"
            {
                let _ = addr_tx.send((
                    v["addr"].as_str().unwrap_or_default().to_owned(),
                    v["metrics_addr"].as_str().unwrap_or_default().to_owned(),
                ));
            }
            lines.push(line);
        }
        lines
    });
    let (addr, metrics_addr) = addr_rx
        .recv_timeout(Duration::from_secs(60))
        .expect("server reported its addresses");
    Server {
        child: Some(child),
        addr,
        metrics_addr,
        lines: Some(lines),
    }
}

impl Server {
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
