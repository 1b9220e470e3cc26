//! Every log line of the test run, captured by one global JSON subscriber
//! (a per-test scoped subscriber races with other threads' callsite cache).

use std::io::Write;
use std::sync::{Mutex, OnceLock};

use serde_json::Value;

static BUFFER: Mutex<Vec<u8>> = Mutex::new(Vec::new());
static INSTALLED: OnceLock<()> = OnceLock::new();

struct Sink;

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        BUFFER.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub fn install() {
    INSTALLED.get_or_init(|| {
        let subscriber = tracing_subscriber::fmt()
            .json()
            .flatten_event(true)
            .with_max_level(tracing::Level::DEBUG)
            .with_writer(|| Sink)
            .finish();
        let _ = tracing::subscriber::set_global_default(subscriber);
    });
}

pub fn text() -> String {
    String::from_utf8_lossy(&BUFFER.lock().unwrap()).into_owned()
}

pub fn lines() -> Vec<Value> {
    text()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}
