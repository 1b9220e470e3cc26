//! Storage adapters: sqlx pools for SQLite (the default) and PostgreSQL, their
//! embedded migrations, and the domain ports implemented on top of them.

mod database;

pub use database::{Database, PoolSettings, StoreError};
