//! `FileRepo` on both backends: uploaded files' metadata, and the per-user
//! quota, checked in the statement that writes the row. On SQLite that one
//! statement holds the database's single write lock from its first read; on
//! PostgreSQL the owner's row is locked first, so concurrent uploads of one
//! owner count each other's rows.

use async_trait::async_trait;
use gatehouse_core::CoreError;
use gatehouse_core::ports::{FileRecord, FileRepo, UploadQuota, UploadUsage};
use uuid::Uuid;

use crate::{Database, map_err};

const COLUMNS: &str = "id, owner_id, filename, content_type, size, storage_key, created_at";

#[derive(sqlx::FromRow)]
struct FileRow {
    id: Uuid,
    owner_id: Uuid,
    filename: String,
    content_type: String,
    size: i64,
    storage_key: String,
    created_at: i64,
}

impl From<FileRow> for FileRecord {
    fn from(r: FileRow) -> Self {
        Self {
            id: r.id,
            owner_id: r.owner_id,
            filename: r.filename,
            content_type: r.content_type,
            size: r.size,
            storage_key: r.storage_key,
            created_at: r.created_at,
        }
    }
}

/// The row, only if its owner stays within the quota with it.
fn within_quota() -> String {
    format!(
        "INSERT INTO files ({COLUMNS}) SELECT $1, $2, $3, $4, $5, $6, $7 \
         WHERE (SELECT COUNT(*) FROM files WHERE owner_id = $2) < $8 \
         AND (SELECT COALESCE(SUM(size), 0) FROM files WHERE owner_id = $2) + $5 <= $9"
    )
}

/// Binds a file row and the quota to [`within_quota`].
macro_rules! bind_insert {
    ($query:expr, $f:expr, $max_files:expr, $max_bytes:expr) => {
        $query
            .bind($f.id)
            .bind($f.owner_id)
            .bind(&$f.filename)
            .bind(&$f.content_type)
            .bind($f.size)
            .bind(&$f.storage_key)
            .bind($f.created_at)
            .bind($max_files)
            .bind($max_bytes)
    };
}

#[async_trait]
impl FileRepo for Database {
    #[tracing::instrument(name = "files.insert_file", skip_all, fields(otel.kind = "client", db.system.name = self.system_name()))]
    async fn insert_file(&self, f: &FileRecord, quota: &UploadQuota) -> Result<(), CoreError> {
        let max_files = i64::try_from(quota.max_files).unwrap_or(i64::MAX);
        let max_bytes = i64::try_from(quota.max_bytes).unwrap_or(i64::MAX);
        let inserted = match self {
            Database::Sqlite(pool) => {
                bind_insert!(sqlx::query(&within_quota()), f, max_files, max_bytes)
                    .execute(pool)
                    .await
                    .map(|r| r.rows_affected())
            }
            Database::Postgres(pool) => {
                let mut tx = pool.begin().await.map_err(map_err)?;
                // Serialises this owner's inserts until commit; unlike
                // `FOR UPDATE` it does not block foreign-key checks.
                sqlx::query("SELECT 1 FROM users WHERE id = $1 FOR NO KEY UPDATE")
                    .bind(f.owner_id)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                let rows = bind_insert!(sqlx::query(&within_quota()), f, max_files, max_bytes)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?
                    .rows_affected();
                tx.commit().await.map(|()| rows)
            }
        }
        .map_err(map_err)?;
        if inserted == 1 {
            Ok(())
        } else {
            Err(CoreError::QuotaExceeded)
        }
    }

    #[tracing::instrument(name = "files.usage_of", skip_all, fields(otel.kind = "client", db.system.name = self.system_name()))]
    async fn usage_of(&self, owner: Uuid) -> Result<UploadUsage, CoreError> {
        let sql = "SELECT COUNT(*), CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM files \
                   WHERE owner_id = $1";
        on_pool!(self, pool => sqlx::query_as::<_, (i64, i64)>(sql).bind(owner).fetch_one(pool).await)
            .map(|(files, bytes)| UploadUsage {
                files: u64::try_from(files).unwrap_or(0),
                bytes: u64::try_from(bytes).unwrap_or(0),
            })
            .map_err(map_err)
    }

    #[tracing::instrument(name = "files.file_by_id", skip_all, fields(otel.kind = "client", db.system.name = self.system_name()))]
    async fn file_by_id(&self, id: Uuid) -> Result<Option<FileRecord>, CoreError> {
        let sql = format!("SELECT {COLUMNS} FROM files WHERE id = $1");
        on_pool!(self, pool => sqlx::query_as::<_, FileRow>(&sql).bind(id).fetch_optional(pool).await)
            .map(|row| row.map(FileRecord::from))
            .map_err(map_err)
    }

    #[tracing::instrument(name = "files.files_of_owner", skip_all, fields(otel.kind = "client", db.system.name = self.system_name()))]
    async fn files_of_owner(
        &self,
        owner: Uuid,
        after: Option<Uuid>,
        limit: u64,
    ) -> Result<Vec<FileRecord>, CoreError> {
        // Ids are UUIDv7: descending id is newest first, and a keyset.
        let sql = format!(
            "SELECT {COLUMNS} FROM files WHERE owner_id = $1 AND ($2 IS NULL OR id < $2) \
             ORDER BY id DESC LIMIT $3"
        );
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        on_pool!(self, pool => sqlx::query_as::<_, FileRow>(&sql)
            .bind(owner)
            .bind(after)
            .bind(limit)
            .fetch_all(pool)
            .await)
        .map(|rows| rows.into_iter().map(FileRecord::from).collect())
        .map_err(map_err)
    }

    #[tracing::instrument(name = "files.delete_file", skip_all, fields(otel.kind = "client", db.system.name = self.system_name()))]
    async fn delete_file(&self, id: Uuid) -> Result<bool, CoreError> {
        let sql = "DELETE FROM files WHERE id = $1";
        on_pool!(self, pool => sqlx::query(sql).bind(id).execute(pool).await.map(|r| r.rows_affected()))
            .map(|n| n == 1)
            .map_err(map_err)
    }

    #[tracing::instrument(name = "files.storage_keys_of_owner", skip_all, fields(otel.kind = "client", db.system.name = self.system_name()))]
    async fn storage_keys_of_owner(&self, owner: Uuid) -> Result<Vec<String>, CoreError> {
        let sql = "SELECT storage_key FROM files WHERE owner_id = $1";
        on_pool!(self, pool => sqlx::query_scalar::<_, String>(sql).bind(owner).fetch_all(pool).await)
            .map_err(map_err)
    }

    #[tracing::instrument(name = "files.known_storage_keys", skip_all, fields(otel.kind = "client", db.system.name = self.system_name()))]
    async fn known_storage_keys(&self, keys: &[String]) -> Result<Vec<String>, CoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let params: Vec<String> = (1..=keys.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT storage_key FROM files WHERE storage_key IN ({})",
            params.join(", ")
        );
        on_pool!(self, pool => {
            let mut query = sqlx::query_scalar::<_, String>(&sql);
            for key in keys {
                query = query.bind(key);
            }
            query.fetch_all(pool).await
        })
        .map_err(map_err)
    }
}
