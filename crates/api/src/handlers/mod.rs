//! Handlers, one module per resource; each function is a verb.

pub mod admin;
pub mod api_keys;
pub mod auth;
pub mod docs;
pub mod export;
pub mod files;
pub mod health;
pub mod jwks;
pub mod mfa;
pub mod passkeys;
pub mod password_reset;
pub mod reauth;
pub mod users;
pub mod verification;
