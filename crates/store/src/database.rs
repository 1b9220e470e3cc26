//! Connection pools and migrations for both backends.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use gatehouse_core::CoreError;
use gatehouse_core::ports::HealthProbe;
use sqlx::Connection as _;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

/// Errors from opening or migrating a database. Messages name the step; the
/// sqlx cause is kept as the source for logs, never shown to clients.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("unsupported database URL (expected sqlite: or postgres://)")]
    UnsupportedUrl,
    #[error("invalid database URL")]
    InvalidUrl(#[source] sqlx::Error),
    #[error("cannot create the database directory")]
    CreateDir(#[source] std::io::Error),
    #[error("cannot create the database file")]
    CreateFile(#[source] std::io::Error),
    #[error("cannot connect to the database")]
    Connect(#[source] sqlx::Error),
    #[error("database migration failed")]
    Migrate(#[source] sqlx::migrate::MigrateError),
}

/// Pool sizing and timeouts.
#[derive(Debug, Clone, Copy)]
pub struct PoolSettings {
    pub max_connections: u32,
    pub min_connections: u32,
    pub acquire_timeout: Duration,
    pub idle_timeout: Duration,
    /// SQLite: the write-ahead log is copied into the database only by
    /// [`Database::checkpoint`], called from a background task, instead of
    /// inside the commit that crosses 1,000 pages (which then waits for the
    /// copy and its `fsync`). Whoever sets it must call `checkpoint`.
    pub background_checkpoints: bool,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            max_connections: 10,
            min_connections: 0,
            acquire_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(600),
            background_checkpoints: false,
        }
    }
}

/// A pool on one of the supported backends.
#[derive(Debug, Clone)]
pub enum Database {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// SQLite lets one writer in at a time; another waits in SQLite's busy
/// handler, which sleeps and polls (1, 2, 5… ms), so writers that collide
/// lose milliseconds each. The hot write transactions of this process
/// (sign-in, refresh, logout, the audit trail) queue in order for one
/// connection per database file instead, shared by every pool this process
/// opens on it: writes to two databases never wait for each other, and a
/// write on it skips the pool (whose checkout and return ask the
/// connection's worker thread whether it is alive, a round trip each).
type WriterSlot = std::sync::Arc<tokio::sync::Mutex<Option<sqlx::SqliteConnection>>>;

static SQLITE_WRITERS: std::sync::Mutex<
    std::collections::BTreeMap<std::path::PathBuf, WriterSlot>,
> = std::sync::Mutex::new(std::collections::BTreeMap::new());

fn writer_slot(pool: &SqlitePool) -> WriterSlot {
    let file = pool.connect_options().get_filename().to_path_buf();
    // A poisoned map only means a panic elsewhere while inserting: the map
    // itself is still whole.
    let mut writers = SQLITE_WRITERS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    writers.entry(file).or_default().clone()
}

/// This process's turn to write to a SQLite file, holding the file's writer
/// connection (opened with the pool's options on first use). Held for one
/// transaction; never held while waiting for anything but the database.
///
/// A batch that opens its own transaction in SQL (`BEGIN` … `COMMIT` sent
/// at once) takes the turn with [`SqliteWriter::take`]: a turn that ends
/// without [`SqliteWriter::keep`] (an error, or a request dropped
/// mid-batch) closes the connection, which rolls back whatever it left
/// open; the next turn opens a new one. Work in sqlx's own transactions
/// (rolled back by sqlx when dropped or failed) or single statements takes
/// it with [`SqliteWriter::take_managed`] and keeps the connection whatever
/// happens, so an expected error (a duplicate username) costs no reconnect.
pub(crate) struct SqliteWriter {
    slot: tokio::sync::OwnedMutexGuard<Option<sqlx::SqliteConnection>>,
    kept: bool,
}

impl SqliteWriter {
    pub(crate) async fn take(pool: &SqlitePool) -> Result<Self, sqlx::Error> {
        let mut slot = writer_slot(pool).lock_owned().await;
        if slot.is_none() {
            *slot =
                Some(sqlx::SqliteConnection::connect_with(pool.connect_options().as_ref()).await?);
        }
        Ok(Self { slot, kept: false })
    }

    pub(crate) async fn take_managed(pool: &SqlitePool) -> Result<Self, sqlx::Error> {
        let mut writer = Self::take(pool).await?;
        writer.kept = true;
        Ok(writer)
    }

    pub(crate) fn conn(&mut self) -> Result<&mut sqlx::SqliteConnection, sqlx::Error> {
        self.slot.as_mut().ok_or(sqlx::Error::PoolClosed)
    }

    /// The transaction ended (committed or rolled back): the connection is
    /// clean and stays for the next turn.
    pub(crate) fn keep(mut self) {
        self.kept = true;
    }
}

impl Drop for SqliteWriter {
    fn drop(&mut self) {
        if !self.kept {
            // Dropping the connection ends its worker, which closes the
            // handle: SQLite rolls back an open transaction on close.
            self.slot.take();
        }
    }
}

impl Database {
    /// Opens a pool. A SQLite file (and its directory) is created on first
    /// use, readable by the owner alone; connecting is lazy for PostgreSQL so
    /// a server that starts later is picked up without a restart.
    pub async fn connect(url: &str, settings: PoolSettings) -> Result<Self, StoreError> {
        if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)
                .map_err(StoreError::InvalidUrl)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(5));
            let options = if settings.background_checkpoints {
                options.pragma("wal_autocheckpoint", "0")
            } else {
                options
            };
            if names_a_file_to_create(url) {
                create_private(options.get_filename()).await?;
            }
            // No test before checkout: an embedded database has no far end
            // to hang up, and sqlx still tests every connection on return.
            let pool = SqlitePoolOptions::new()
                .test_before_acquire(false)
                .max_connections(settings.max_connections)
                .min_connections(settings.min_connections)
                .acquire_timeout(settings.acquire_timeout)
                .idle_timeout(settings.idle_timeout)
                .connect_with(options)
                .await
                .map_err(StoreError::Connect)?;
            Ok(Self::Sqlite(pool))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let options = PgConnectOptions::from_str(url).map_err(StoreError::InvalidUrl)?;
            let pool = PgPoolOptions::new()
                .max_connections(settings.max_connections)
                .min_connections(settings.min_connections)
                .acquire_timeout(settings.acquire_timeout)
                .idle_timeout(settings.idle_timeout)
                .connect_lazy_with(options);
            Ok(Self::Postgres(pool))
        } else {
            Err(StoreError::UnsupportedUrl)
        }
    }

    /// Applies the embedded migrations of this backend (idempotent; takes a
    /// lock so concurrent instances do not race).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        match self {
            Self::Sqlite(pool) => SQLITE_MIGRATIONS.run(pool).await,
            Self::Postgres(pool) => POSTGRES_MIGRATIONS.run(pool).await,
        }
        .map_err(StoreError::Migrate)
    }

    /// One round trip to the database.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        match self {
            Self::Sqlite(pool) => sqlx::query("SELECT 1").execute(pool).await.map(drop),
            Self::Postgres(pool) => sqlx::query("SELECT 1").execute(pool).await.map(drop),
        }
    }

    /// SQLite: copies what the write-ahead log holds into the database,
    /// without waiting for any reader or writer (`PASSIVE`), so no request
    /// pays for it; the log is then reused from its start. Returns the
    /// pages the log holds and how many of them are now copied. `None` on
    /// PostgreSQL, which checkpoints on its own.
    pub async fn checkpoint(&self) -> Result<Option<(i64, i64)>, sqlx::Error> {
        match self {
            Self::Sqlite(pool) => {
                let (_busy, log, copied): (i64, i64, i64) =
                    sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
                        .fetch_one(pool)
                        .await?;
                Ok(Some((log, copied)))
            }
            Self::Postgres(_) => Ok(None),
        }
    }

    pub fn backend(&self) -> &'static str {
        match self {
            Self::Sqlite(_) => "sqlite",
            Self::Postgres(_) => "postgres",
        }
    }

    /// The OpenTelemetry `db.system.name` of the backend, for spans.
    pub fn system_name(&self) -> &'static str {
        match self {
            Self::Sqlite(_) => "sqlite",
            Self::Postgres(_) => "postgresql",
        }
    }

    /// Waits for checked-out connections to return, then closes the pool.
    pub async fn close(&self) {
        match self {
            Self::Sqlite(pool) => {
                if let Some(conn) = writer_slot(pool).lock().await.take() {
                    // Closed anyway when dropped; closing here waits for it.
                    let _ = sqlx::Connection::close(conn).await;
                }
                pool.close().await
            }
            Self::Postgres(pool) => pool.close().await,
        }
    }
}

/// False for in-memory databases (`:memory:`, `mode=memory`) and read-only
/// ones (`mode=ro`), which SQLite never creates. Reads the URL as sqlx does.
fn names_a_file_to_create(url: &str) -> bool {
    let rest = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    let (database, params) = rest.split_once('?').unwrap_or((rest, ""));
    !database.is_empty()
        && database != ":memory:"
        && !params
            .split('&')
            .any(|p| p == "mode=memory" || p == "mode=ro")
}

/// Creates the database's directory (0700) and its empty file (0600) before
/// SQLite opens it: SQLite would create the file world-readable (0644 less
/// the umask), and gives its -wal and -shm files the main file's mode. An
/// existing file is left as it is.
async fn create_private(path: &Path) -> Result<(), StoreError> {
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        let mut builder = tokio::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        builder.mode(0o700);
        builder.create(dir).await.map_err(StoreError::CreateDir)?;
    }
    let mut options = tokio::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    match options.open(path).await {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(StoreError::CreateFile(e)),
    }
}

#[async_trait]
impl HealthProbe for Database {
    fn name(&self) -> &'static str {
        "database"
    }

    #[tracing::instrument(name = "health.check", skip_all, fields(otel.kind = "client", db.system.name = self.system_name()))]
    async fn check(&self) -> Result<(), CoreError> {
        self.ping()
            .await
            .map_err(|e| CoreError::unavailable("database", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sqlite_file_and_directory_are_created_and_migrated_twice() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/deeper/gatehouse.db");
        let url = format!("sqlite://{}", path.display());
        let db = Database::connect(&url, PoolSettings::default())
            .await
            .unwrap();
        db.migrate().await.unwrap();
        db.migrate().await.unwrap();
        db.ping().await.unwrap();
        assert!(path.exists());
        assert!(db.check().await.is_ok());
        db.close().await;
        assert!(db.check().await.is_err(), "a closed pool is not ready");
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn sqlite_files_and_directories_are_the_owners_alone() {
        use std::os::unix::fs::PermissionsExt;

        let dir = tempfile::tempdir().unwrap();
        let nested = dir.path().join("nested");
        let path = nested.join("deeper/gatehouse.db");
        let url = format!("sqlite://{}", path.display());
        let db = Database::connect(&url, PoolSettings::default())
            .await
            .unwrap();
        db.migrate().await.unwrap();
        let mode = |p: &Path| {
            format!(
                "{:o}",
                std::fs::metadata(p).unwrap().permissions().mode() & 0o777
            )
        };
        assert_eq!(mode(&nested), "700");
        assert_eq!(mode(path.parent().unwrap()), "700");
        // SQLite gives its -wal and -shm files the database file's mode.
        for file in ["gatehouse.db", "gatehouse.db-wal", "gatehouse.db-shm"] {
            assert_eq!(mode(&path.with_file_name(file)), "600", "{file}");
        }
        db.close().await;

        // An existing database is opened as it is.
        let db = Database::connect(&url, PoolSettings::default())
            .await
            .unwrap();
        db.ping().await.unwrap();
        db.close().await;

        // In-memory databases touch no file.
        let db = Database::connect("sqlite::memory:", PoolSettings::default())
            .await
            .unwrap();
        db.migrate().await.unwrap();
        db.close().await;
    }

    #[test]
    fn only_writable_files_are_created_ahead_of_sqlite() {
        let cases = [
            ("sqlite://data/gatehouse.db", true),
            ("sqlite:gatehouse.db", true),
            ("sqlite://data/gatehouse.db?mode=rwc", true),
            ("sqlite::memory:", false),
            ("sqlite://:memory:", false),
            ("sqlite://?mode=memory", false),
            ("sqlite://gatehouse.db?cache=shared&mode=memory", false),
            ("sqlite://gatehouse.db?mode=ro", false),
        ];
        for (url, creates) in cases {
            assert_eq!(names_a_file_to_create(url), creates, "{url}");
        }
    }

    #[tokio::test]
    async fn with_background_checkpoints_commits_leave_the_log_to_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/c.db", dir.path().display());
        let settings = PoolSettings {
            background_checkpoints: true,
            ..PoolSettings::default()
        };
        let db = Database::connect(&url, settings).await.unwrap();
        let Database::Sqlite(pool) = &db else {
            unreachable!()
        };
        sqlx::query("CREATE TABLE t (v BLOB)")
            .execute(pool)
            .await
            .unwrap();
        // Far past the 1,000 pages at which a commit would checkpoint.
        for _ in 0..300 {
            sqlx::query("INSERT INTO t VALUES (zeroblob(16384))")
                .execute(pool)
                .await
                .unwrap();
        }
        let (log, copied) = db.checkpoint().await.unwrap().unwrap();
        assert!(
            log > 1_000,
            "no commit checkpointed: {log} pages in the log"
        );
        assert_eq!(
            copied, log,
            "a passive checkpoint with no reader copies all"
        );
        // Copied, the log is reused from its start by the next write.
        sqlx::query("INSERT INTO t VALUES (1)")
            .execute(pool)
            .await
            .unwrap();
        let (log, _) = db.checkpoint().await.unwrap().unwrap();
        assert!(log < 10, "{log}");
        db.close().await;
    }

    #[tokio::test]
    async fn a_writer_dropped_mid_transaction_leaves_nothing_open() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/w.db", dir.path().display());
        let db = Database::connect(&url, PoolSettings::default())
            .await
            .unwrap();
        let Database::Sqlite(pool) = &db else {
            unreachable!()
        };
        sqlx::query("CREATE TABLE t (v INTEGER)")
            .execute(pool)
            .await
            .unwrap();
        {
            // As a request dropped mid-transaction, or one whose statement
            // failed: the turn ends without `keep`.
            let mut writer = SqliteWriter::take(pool).await.unwrap();
            let conn = writer.conn().unwrap();
            sqlx::query("BEGIN IMMEDIATE")
                .execute(&mut *conn)
                .await
                .unwrap();
            sqlx::query("INSERT INTO t VALUES (1)")
                .execute(&mut *conn)
                .await
                .unwrap();
        }
        // The next turn gets a new connection, not one inside that
        // transaction (BEGIN would fail there), and the lock is free.
        let mut writer = SqliteWriter::take(pool).await.unwrap();
        let conn = writer.conn().unwrap();
        sqlx::query("BEGIN IMMEDIATE")
            .execute(&mut *conn)
            .await
            .unwrap();
        sqlx::query("INSERT INTO t VALUES (2)")
            .execute(&mut *conn)
            .await
            .unwrap();
        sqlx::query("COMMIT").execute(&mut *conn).await.unwrap();
        writer.keep();
        let values: Vec<i64> = sqlx::query_scalar("SELECT v FROM t")
            .fetch_all(pool)
            .await
            .unwrap();
        assert_eq!(values, [2], "the dropped transaction was rolled back");

        // A kept writer is the same connection next turn: its temporary
        // table is still there.
        let mut writer = SqliteWriter::take(pool).await.unwrap();
        sqlx::query("CREATE TEMP TABLE mine (v INTEGER)")
            .execute(writer.conn().unwrap())
            .await
            .unwrap();
        writer.keep();
        let mut writer = SqliteWriter::take(pool).await.unwrap();
        sqlx::query("SELECT v FROM temp.mine")
            .execute(writer.conn().unwrap())
            .await
            .unwrap();
        writer.keep();
        db.close().await;
    }

    #[tokio::test]
    async fn unsupported_urls_are_refused() {
        let err = Database::connect("mysql://x", PoolSettings::default())
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::UnsupportedUrl));
    }
}
