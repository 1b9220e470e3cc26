//! Online copies of a SQLite database. `VACUUM INTO` reads one snapshot of
//! the source, so the copy is consistent while the service keeps writing;
//! the copy is a new file, readable by its owner alone, flushed to disk and
//! checked before it is reported.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection, SqliteConnection};

/// Why a copy could not be made. Nothing is left at the destination when
/// the copy fails after creating it.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("only a sqlite: DATABASE_URL can be copied this way")]
    NotSqlite,
    #[error("invalid database URL")]
    InvalidUrl(#[source] sqlx::Error),
    #[error("no SQLite database file at {0}")]
    Missing(PathBuf),
    #[error("{0} already exists: a backup never overwrites a file")]
    Exists(PathBuf),
    #[error("the backup path must be valid UTF-8")]
    NonUtf8Path,
    #[error("cannot create {0}")]
    Create(PathBuf, #[source] std::io::Error),
    #[error("cannot open the database")]
    Open(#[source] sqlx::Error),
    #[error("the copy failed")]
    Copy(#[source] sqlx::Error),
    #[error("cannot flush the copy to disk")]
    Sync(#[source] std::io::Error),
    #[error("the copy failed its integrity check: {0}")]
    Integrity(String),
}

/// A finished copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupReport {
    pub bytes: u64,
}

/// How long the copy waits for a writer's lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Copies the SQLite database of `url` to the new file `to` (mode 0600).
pub async fn backup_sqlite(url: &str, to: &Path) -> Result<BackupReport, BackupError> {
    if !url.starts_with("sqlite:") {
        return Err(BackupError::NotSqlite);
    }
    let target = to.to_str().ok_or(BackupError::NonUtf8Path)?;
    let options = SqliteConnectOptions::from_str(url)
        .map_err(BackupError::InvalidUrl)?
        .create_if_missing(false)
        .busy_timeout(BUSY_TIMEOUT);
    let source = options.get_filename();
    if !source.is_file() {
        return Err(BackupError::Missing(source.to_path_buf()));
    }
    let mut conn = options.connect().await.map_err(BackupError::Open)?;
    create_private(to).await?;
    let copied = copy_into(&mut conn, target, to).await;
    let _ = conn.close().await;
    if copied.is_err() {
        // Our own empty or partial file: a half-written backup must not be
        // mistaken for a good one.
        let _ = tokio::fs::remove_file(to).await;
    }
    copied
}

async fn copy_into(
    conn: &mut SqliteConnection,
    target: &str,
    to: &Path,
) -> Result<BackupReport, BackupError> {
    sqlx::query("VACUUM INTO $1")
        .bind(target)
        .execute(&mut *conn)
        .await
        .map_err(BackupError::Copy)?;
    // SQLite does not fsync the file `VACUUM INTO` writes.
    sync(to).await?;
    check(to).await?;
    let bytes = tokio::fs::metadata(to)
        .await
        .map_err(BackupError::Sync)?
        .len();
    Ok(BackupReport { bytes })
}

/// Creates the empty destination, owner-only. `VACUUM INTO` accepts an empty
/// file and keeps its mode; `create_new` refuses an existing one atomically.
async fn create_private(to: &Path) -> Result<(), BackupError> {
    let mut options = tokio::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    match options.open(to).await {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            Err(BackupError::Exists(to.to_path_buf()))
        }
        Err(e) => Err(BackupError::Create(to.to_path_buf(), e)),
    }
}

/// Flushes the file and the directory entry that names it.
async fn sync(to: &Path) -> Result<(), BackupError> {
    let file = tokio::fs::File::open(to).await.map_err(BackupError::Sync)?;
    file.sync_all().await.map_err(BackupError::Sync)?;
    #[cfg(unix)]
    {
        let dir = match to.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        let dir = tokio::fs::File::open(dir)
            .await
            .map_err(BackupError::Sync)?;
        dir.sync_all().await.map_err(BackupError::Sync)?;
    }
    Ok(())
}

/// `PRAGMA quick_check` on the copy, opened read-only and immutable so the
/// check creates no `-wal` or `-shm` file beside it.
async fn check(to: &Path) -> Result<(), BackupError> {
    let mut conn = SqliteConnectOptions::new()
        .filename(to)
        .read_only(true)
        .immutable(true)
        .connect()
        .await
        .map_err(BackupError::Open)?;
    let verdict: Result<String, sqlx::Error> = sqlx::query_scalar("PRAGMA quick_check")
        .fetch_one(&mut conn)
        .await;
    let _ = conn.close().await;
    match verdict.map_err(BackupError::Copy)? {
        ok if ok == "ok" => Ok(()),
        problem => Err(BackupError::Integrity(problem)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Database, PoolSettings};

    async fn seeded(dir: &Path) -> (Database, String) {
        let url = format!("sqlite://{}", dir.join("live.db").display());
        let db = Database::connect(&url, PoolSettings::default())
            .await
            .unwrap();
        db.migrate().await.unwrap();
        (db, url)
    }

    #[tokio::test]
    async fn a_copy_is_new_owner_only_and_complete() {
        let dir = tempfile::tempdir().unwrap();
        let (db, url) = seeded(dir.path()).await;
        let to = dir.path().join("copy.db");
        let report = backup_sqlite(&url, &to).await.unwrap();
        assert!(report.bytes > 0);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&to).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        // Nothing but the copy itself is written beside it.
        let mut names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.starts_with("copy"))
            .collect();
        names.sort();
        assert_eq!(names, ["copy.db"]);

        // The copy opens with its migrations already applied.
        let copy_url = format!("sqlite://{}", to.display());
        let copy = Database::connect(&copy_url, PoolSettings::default())
            .await
            .unwrap();
        copy.migrate().await.unwrap();
        copy.close().await;

        // An existing file is never overwritten, and is left as it was.
        let before = std::fs::read(&to).unwrap();
        let err = backup_sqlite(&url, &to).await.unwrap_err();
        assert!(matches!(err, BackupError::Exists(_)), "{err}");
        assert_eq!(std::fs::read(&to).unwrap(), before);
        db.close().await;
    }

    #[tokio::test]
    async fn nothing_is_created_for_a_missing_or_foreign_database() {
        let dir = tempfile::tempdir().unwrap();
        let to = dir.path().join("copy.db");
        let url = format!("sqlite://{}", dir.path().join("absent.db").display());
        let err = backup_sqlite(&url, &to).await.unwrap_err();
        assert!(matches!(err, BackupError::Missing(_)), "{err}");
        let err = backup_sqlite("postgres://u@h/db", &to).await.unwrap_err();
        assert!(matches!(err, BackupError::NotSqlite), "{err}");
        assert!(!to.exists());
        assert!(!dir.path().join("absent.db").exists());
    }
}
