//! Ports of uploaded files: their rows (with the per-user quota enforced
//! where rows are written) and their contents (with the volume's free space
//! and a listing for the sweep of contents left without a row).

use std::fmt::Debug;

use async_trait::async_trait;
use futures_util::stream::BoxStream;
use uuid::Uuid;

use crate::CoreError;

/// A stored file's metadata; its content lives in the [`BlobStore`] under
/// `storage_key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRecord {
    pub id: Uuid,
    pub owner_id: Uuid,
    /// The client's name, sanitised: metadata only, never part of a path.
    pub filename: String,
    pub content_type: String,
    pub size: i64,
    /// The content's name in the blob store, chosen by the store.
    pub storage_key: String,
    pub created_at: i64,
}

/// What one user may keep (`UPLOAD_QUOTA_FILES`, `UPLOAD_QUOTA_BYTES`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadQuota {
    pub max_files: u64,
    pub max_bytes: u64,
}

/// What one user's files take.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UploadUsage {
    pub files: u64,
    pub bytes: u64,
}

#[async_trait]
pub trait FileRepo: Send + Sync + Debug {
    /// Writes the row if its owner stays within `quota` with it, checked and
    /// written atomically: concurrent uploads of one owner cannot all pass.
    /// [`CoreError::QuotaExceeded`] (and nothing written) otherwise.
    async fn insert_file(&self, file: &FileRecord, quota: &UploadQuota) -> Result<(), CoreError>;
    async fn usage_of(&self, owner: Uuid) -> Result<UploadUsage, CoreError>;
    async fn file_by_id(&self, id: Uuid) -> Result<Option<FileRecord>, CoreError>;
    /// Up to `limit` of the owner's files, newest first (by id, UUIDv7),
    /// after the file `after` in that order.
    async fn files_of_owner(
        &self,
        owner: Uuid,
        after: Option<Uuid>,
        limit: u64,
    ) -> Result<Vec<FileRecord>, CoreError>;
    /// True when the row existed.
    async fn delete_file(&self, id: Uuid) -> Result<bool, CoreError>;
    /// The storage keys of every file of `owner` (read before the owner is
    /// deleted: the rows go by cascade, the contents must be removed too).
    async fn storage_keys_of_owner(&self, owner: Uuid) -> Result<Vec<String>, CoreError>;
    /// Which of `keys` a row refers to.
    async fn known_storage_keys(&self, keys: &[String]) -> Result<Vec<String>, CoreError>;
}

/// File contents, a stream of chunks.
pub type BlobStream = BoxStream<'static, Result<bytes::Bytes, CoreError>>;

/// A content the store holds: complete, or partial (an upload still being
/// written, or one that died without cleaning up).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobEntry {
    pub key: String,
    pub is_partial: bool,
    /// Unix milliseconds of the last write.
    pub modified_at: i64,
}

/// Where file contents live. Keys are chosen by the store itself, never
/// derived from client input.
#[async_trait]
pub trait BlobStore: Send + Sync + Debug {
    /// Starts a new blob, invisible under its key until committed.
    async fn begin(&self) -> Result<Box<dyn BlobWriter>, CoreError>;
    /// The blob's content; [`CoreError::NotFound`] when it is missing.
    async fn open(&self, key: &str) -> Result<BlobStream, CoreError>;
    /// Deletes a blob; one already gone is not an error.
    async fn remove(&self, key: &str) -> Result<(), CoreError>;
    /// Bytes free for new contents on the store's volume.
    async fn available_bytes(&self) -> Result<u64, CoreError>;
    /// Every content the store holds, complete or partial.
    async fn entries(&self) -> Result<BoxStream<'static, Result<BlobEntry, CoreError>>, CoreError>;
    /// Deletes a content [`BlobStore::entries`] listed; one already gone is
    /// not an error.
    async fn discard(&self, entry: &BlobEntry) -> Result<(), CoreError>;
}

/// A blob being written. Aborted or dropped before [`BlobWriter::commit`]
/// (a failed or cancelled upload), it leaves nothing behind.
#[async_trait]
pub trait BlobWriter: Send + Debug {
    async fn write(&mut self, chunk: &[u8]) -> Result<(), CoreError>;
    /// Makes the blob complete and durable under its key, and returns it.
    async fn commit(self: Box<Self>) -> Result<String, CoreError>;
    /// Discards what was written.
    async fn abort(self: Box<Self>);
}
