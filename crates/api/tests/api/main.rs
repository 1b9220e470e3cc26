//! Integration tests: the real router over a real database (SQLite always,
//! PostgreSQL when `TEST_DATABASE_URL` is set).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code fails loudly"
)]

mod harness;

mod admin;
mod api_keys;
mod audit_chain;
mod auth;
mod bodies;
mod conventions;
mod cors;
mod domain_rbac;
mod files;
mod headers;
mod lifecycle;
mod lockout;
mod mail;
mod mfa;
mod observability;
mod passkeys;
mod ratelimit;
mod rbac;
mod readiness;
mod reauth;
mod tokens;
mod ui;
mod users;
