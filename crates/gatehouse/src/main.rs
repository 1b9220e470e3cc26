//! The `gatehouse` binary: parses the command line, loads the configuration
//! and wires the crates together. No logic of its own lives here.

mod backup;
mod bootstrap;
mod calibrate;
mod cli;
mod devkeys;
mod env;
mod healthcheck;
mod https;
mod loopback_tls;
mod mail;
mod rotate;
mod serve;
mod settings;
mod telemetry;
mod upkeep;
mod wiring;

use std::process::ExitCode;

use clap::Parser;

/// A per-thread-cache allocator: requests allocate many small, short-lived
/// values, which the system allocator serves measurably slower.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(code) => code,
    }
}
