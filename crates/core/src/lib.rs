//! Gatehouse's domain: configuration, ports (the traits adapters implement),
//! and the rules that do not depend on HTTP, SQL or Redis.

pub mod audit;
pub mod auth;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod error;
pub mod file;
pub mod mail;
pub mod network;
pub mod ports;
pub mod ratelimit;
pub mod rbac;
pub mod service;
pub mod user;

pub use error::CoreError;
