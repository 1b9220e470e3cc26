//! The `gatehouse` binary: parses the command line, loads the configuration
//! and wires the crates together. No logic of its own lives here.

mod admin;
mod cli;
mod devkeys;
mod env;
mod rotate;
mod serve;
mod telemetry;
mod wiring;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(code) => code,
    }
}
