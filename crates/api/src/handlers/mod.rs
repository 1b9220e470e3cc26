//! Handlers, one module per resource; each function is a verb.

pub mod admin;
pub mod auth;
pub mod docs;
pub mod export;
pub mod health;
pub mod jwks;
pub mod users;
