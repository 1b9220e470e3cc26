//! Logging: JSON lines (default) or human-readable output, filtered by
//! `LOG_LEVEL` (a level or a `tracing` filter directive).

use gatehouse_core::config::{Config, LogFormat};
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. Returns nothing to hold today; kept as a
/// guard so exporters added later flush on drop.
pub fn init(config: &Config) -> Result<Guard, String> {
    let filter = EnvFilter::try_new(&config.log_level)
        .map_err(|_| format!("LOG_LEVEL: `{}` is not a level or filter", config.log_level))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stdout);
    let result = match config.log_format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .try_init(),
        LogFormat::Pretty => builder.try_init(),
    };
    if let Err(err) = result {
        eprintln!("logging is already initialised: {err}");
    }
    Ok(Guard)
}

#[derive(Debug)]
pub struct Guard;
