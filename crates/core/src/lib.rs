//! Gatehouse's domain: configuration, ports (the traits adapters implement),
//! and the rules that do not depend on HTTP, SQL or Redis.

pub mod clock;
pub mod config;
pub mod error;
pub mod network;
pub mod ports;

pub use error::CoreError;
