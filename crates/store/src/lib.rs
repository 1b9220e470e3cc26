//! Storage adapters: sqlx pools for SQLite (the default) and PostgreSQL, their
//! embedded migrations, the domain ports implemented on top of them, and
//! file contents on the local disk, and online copies of a SQLite database.
//!
//! Queries are written once in the dialect both backends accept (`$n`
//! parameters, `RETURNING`, integer timestamps) and compiled for each pool by
//! [`on_pool!`], so the two backends cannot drift apart.

/// Runs the same body against whichever pool `$db` holds.
macro_rules! on_pool {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            $crate::Database::Sqlite($pool) => $body,
            $crate::Database::Postgres($pool) => $body,
        }
    };
}

/// Runs `$body`, which writes through `$conn` (a `&mut` connection of
/// either backend) in sqlx's transactions or single statements and yields
/// `Result<_, sqlx::Error>`, as one of this process's hot writes: on
/// PostgreSQL on a pooled connection, on SQLite on the file's writer, in
/// its turn ([`database::SqliteWriter::take_managed`]).
macro_rules! on_writer {
    ($db:expr, $conn:ident => $body:expr) => {
        match $db {
            $crate::Database::Postgres(pool) => {
                async {
                    let mut pooled = pool.acquire().await?;
                    let $conn = &mut *pooled;
                    $body
                }
                .await
            }
            $crate::Database::Sqlite(pool) => {
                async {
                    let mut writer = $crate::database::SqliteWriter::take_managed(pool).await?;
                    let $conn = writer.conn()?;
                    $body
                }
                .await
            }
        }
    };
}

#[macro_use]
mod mail;
mod audit;
mod backup;
mod blobs;
mod database;
mod files;
mod mfa;
mod passkeys;
mod sessions;
mod users;

pub use backup::{BackupError, BackupReport, backup_sqlite};
pub use blobs::DiskBlobStore;
pub use database::{Database, PoolSettings, StoreError};

use gatehouse_core::CoreError;

/// Maps sqlx errors to domain errors at the adapter edge: unique violations
/// become conflicts, lost connections make the database unavailable.
pub(crate) fn map_err(err: sqlx::Error) -> CoreError {
    match &err {
        sqlx::Error::Database(db) if db.is_unique_violation() => CoreError::Conflict,
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => CoreError::unavailable("database", err),
        _ => CoreError::internal(err),
    }
}
