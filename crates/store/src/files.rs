//! `FileRepo` on both backends: uploaded files' metadata.

use async_trait::async_trait;
use gatehouse_core::CoreError;
use gatehouse_core::ports::{FileRecord, FileRepo};
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

#[async_trait]
impl FileRepo for Database {
    #[tracing::instrument(name = "files.insert_file", skip_all, fields(otel.kind = "client", db.system.name = self.system_name()))]
    async fn insert_file(&self, f: &FileRecord) -> Result<(), CoreError> {
        let sql = format!("INSERT INTO files ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)");
        on_pool!(self, pool => sqlx::query(&sql)
            .bind(f.id)
            .bind(f.owner_id)
            .bind(&f.filename)
            .bind(&f.content_type)
            .bind(f.size)
            .bind(&f.storage_key)
            .bind(f.created_at)
            .execute(pool)
            .await
            .map(drop))
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
    async fn files_of_owner(&self, owner: Uuid) -> Result<Vec<FileRecord>, CoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM files WHERE owner_id = $1 ORDER BY created_at DESC, id DESC"
        );
        on_pool!(self, pool => sqlx::query_as::<_, FileRow>(&sql).bind(owner).fetch_all(pool).await)
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
}
