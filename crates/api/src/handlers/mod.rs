//! Handlers, one module per resource; each function is a verb.

pub mod auth;
pub mod health;
pub mod jwks;
pub mod users;
