//! Use cases: each one checks its inputs and permissions first, then drives
//! the ports.

pub mod auth;

pub use auth::{AuthDeps, AuthService, LoginId, Principal, Registration, TokenPair};
