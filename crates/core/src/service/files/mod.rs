//! File use cases: upload (streamed, size-capped, type-checked by extension
//! and content, within the owner's quota and the volume's free-space floor),
//! list, download and delete. Only a file's owner sees it; holders of
//! `content:delete` may also delete anyone's. The sweep of contents left
//! without a row is in [`sweep`].

mod sweep;

pub use sweep::ORPHAN_GRACE;

use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use serde_json::json;
use uuid::Uuid;

use super::kernel::Kernel;
use super::principal::Principal;
use crate::CoreError;
use crate::audit::{AuditEvent, EventKind, Outcome, RequestMeta};
use crate::clock::from_unix_ms;
use crate::config::Config;
use crate::file::{FileInfo, FileKind, SNIFF_BYTES, sanitize_filename};
use crate::ports::{BlobStore, BlobStream, BlobWriter, FileRecord, FileRepo, UploadQuota};
use crate::rbac::Permission;

/// Ports the file service drives.
#[derive(Debug, Clone)]
pub struct FileDeps {
    pub files: Arc<dyn FileRepo>,
    pub blobs: Arc<dyn BlobStore>,
    pub kernel: Kernel,
}

/// A file's metadata and its content, ready to stream.
pub struct FileDownload {
    pub info: FileInfo,
    pub content: BlobStream,
}

impl std::fmt::Debug for FileDownload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileDownload")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

/// An upload's content as it arrives; an error item ends the upload.
pub type UploadStream<'a> = BoxStream<'a, Result<Bytes, CoreError>>;

#[derive(Debug)]
pub struct FileService {
    deps: FileDeps,
    max_upload_bytes: u64,
    quota: UploadQuota,
    min_free_bytes: u64,
}

/// Which limit stops an upload.
#[derive(Debug, Clone, Copy)]
enum Limit {
    Size,
    Quota,
    Storage,
}

/// How many bytes an upload may have, and what stops it past them.
#[derive(Debug, Clone, Copy)]
struct Budget {
    bytes: u64,
    limit: Limit,
}

impl Budget {
    fn tighten(self, bytes: u64, limit: Limit) -> Self {
        if bytes < self.bytes {
            Self { bytes, limit }
        } else {
            self
        }
    }

    fn exceeded(self) -> CoreError {
        match self.limit {
            Limit::Size => CoreError::FileTooLarge,
            Limit::Quota => CoreError::QuotaExceeded,
            Limit::Storage => {
                tracing::warn!("upload refused: the upload volume is at its free-space floor");
                CoreError::InsufficientStorage
            }
        }
    }
}

fn to_info(r: &FileRecord) -> FileInfo {
    FileInfo {
        id: r.id,
        owner_id: r.owner_id,
        filename: r.filename.clone(),
        content_type: r.content_type.clone(),
        size: u64::try_from(r.size).unwrap_or(0),
        created_at: from_unix_ms(r.created_at),
    }
}

/// Deletes contents whose rows are gone. A failure leaves an orphan blob,
/// which is logged, not an error for the caller: the row is the truth.
pub(super) async fn remove_blobs(blobs: &dyn BlobStore, keys: &[String]) {
    for key in keys {
        if let Err(e) = blobs.remove(key).await {
            tracing::warn!(storage_key = %key, error = %e, "file content not removed");
        }
    }
}

impl FileService {
    pub fn new(config: &Config, deps: FileDeps) -> Self {
        Self {
            deps,
            max_upload_bytes: u64::try_from(config.max_upload_bytes).unwrap_or(u64::MAX),
            quota: UploadQuota {
                max_files: config.upload_quota_files,
                max_bytes: config.upload_quota_bytes,
            },
            min_free_bytes: config.upload_min_free_bytes,
        }
    }

    /// What the owner may still upload: refused at once when the quota is
    /// used up or the volume is at its floor (nothing is written then).
    /// The quota is checked again, atomically, when the row is written.
    async fn budget(&self, owner: Uuid) -> Result<Budget, CoreError> {
        let usage = self.deps.files.usage_of(owner).await?;
        if usage.files >= self.quota.max_files || usage.bytes >= self.quota.max_bytes {
            return Err(CoreError::QuotaExceeded);
        }
        let mut budget = Budget {
            bytes: self.max_upload_bytes,
            limit: Limit::Size,
        }
        .tighten(self.quota.max_bytes - usage.bytes, Limit::Quota);
        if self.min_free_bytes > 0 {
            let free = self.deps.blobs.available_bytes().await?;
            budget = budget.tighten(free.saturating_sub(self.min_free_bytes), Limit::Storage);
            if budget.bytes == 0 {
                return Err(budget.exceeded());
            }
        }
        Ok(budget)
    }

    /// Stores an upload. The extension is checked before anything is
    /// written, the content's magic bytes as soon as they have arrived, and
    /// the size on every chunk against the tightest of the size limit, the
    /// owner's remaining quota and the room above the free-space floor: the
    /// upload never sits whole in memory and stops at the first byte past
    /// it. The row is written only once the content is complete, within the
    /// quota; any failure leaves neither row nor content.
    pub async fn upload(
        &self,
        principal: &Principal,
        client_name: Option<&str>,
        body: UploadStream<'_>,
        meta: &RequestMeta,
    ) -> Result<FileInfo, CoreError> {
        principal.require(Permission::ContentWrite)?;
        let (filename, ext) = sanitize_filename(client_name.unwrap_or_default());
        let kind = ext
            .as_deref()
            .and_then(FileKind::from_extension)
            .ok_or(CoreError::UnsupportedFileType)?;
        let budget = self.budget(principal.id()).await?;

        let mut writer = self.deps.blobs.begin().await?;
        let size = match self.receive(kind, body, writer.as_mut(), budget).await {
            Ok(size) => size,
            Err(e) => {
                writer.abort().await;
                return Err(e);
            }
        };
        let storage_key = writer.commit().await?;
        let record = FileRecord {
            id: Uuid::now_v7(),
            owner_id: principal.id(),
            filename,
            content_type: kind.content_type().to_owned(),
            size: i64::try_from(size).unwrap_or(i64::MAX),
            storage_key,
            created_at: self.deps.kernel.now_ms(),
        };
        if let Err(e) = self.deps.files.insert_file(&record, &self.quota).await {
            remove_blobs(self.deps.blobs.as_ref(), &[record.storage_key]).await;
            return Err(e);
        }
        self.deps
            .kernel
            .audit(
                AuditEvent::new(EventKind::FileUploaded, Outcome::Success, meta)
                    .actor(principal.id())
                    .target(principal.id())
                    .details(json!({
                        "file_id": record.id,
                        "content_type": record.content_type,
                        "size": size,
                    })),
            )
            .await;
        Ok(to_info(&record))
    }

    /// Copies `body` into `writer`, judging the content on its first
    /// [`SNIFF_BYTES`] and counting every byte against `budget`; returns
    /// the size.
    async fn receive(
        &self,
        kind: FileKind,
        mut body: UploadStream<'_>,
        writer: &mut dyn BlobWriter,
        budget: Budget,
    ) -> Result<u64, CoreError> {
        let mut head: Vec<u8> = Vec::with_capacity(SNIFF_BYTES);
        let mut is_judged = false;
        let mut size: u64 = 0;
        while let Some(chunk) = body.next().await {
            let chunk = chunk?;
            size = size.saturating_add(chunk.len() as u64);
            if size > budget.bytes {
                return Err(budget.exceeded());
            }
            if !is_judged {
                let wanted = SNIFF_BYTES - head.len();
                head.extend_from_slice(&chunk[..chunk.len().min(wanted)]);
                if head.len() == SNIFF_BYTES {
                    if !kind.matches(&head) {
                        return Err(CoreError::UnsupportedFileType);
                    }
                    is_judged = true;
                }
            }
            writer.write(&chunk).await?;
        }
        // Files shorter than the sniffing window are judged whole.
        if !is_judged && !kind.matches(&head) {
            return Err(CoreError::UnsupportedFileType);
        }
        Ok(size)
    }

    /// A page of the caller's files, newest first: up to `limit` after the
    /// file `after` (the previous page's cursor), and the next cursor
    /// (`None` on the last page).
    pub async fn list(
        &self,
        principal: &Principal,
        after: Option<Uuid>,
        limit: u64,
    ) -> Result<(Vec<FileInfo>, Option<Uuid>), CoreError> {
        principal.require(Permission::ContentRead)?;
        let mut rows = self
            .deps
            .files
            .files_of_owner(principal.id(), after, limit.saturating_add(1))
            .await?;
        let has_more = rows.len() as u64 > limit;
        rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        let next = if has_more {
            rows.last().map(|r| r.id)
        } else {
            None
        };
        Ok((rows.iter().map(to_info).collect(), next))
    }

    /// A file of the caller's. Someone else's is reported as absent, so ids
    /// cannot be probed (OWASP ASVS 4.0 V4.2.1, IDOR).
    async fn own_file(&self, principal: &Principal, id: Uuid) -> Result<FileRecord, CoreError> {
        match self.deps.files.file_by_id(id).await? {
            Some(r) if r.owner_id == principal.id() => Ok(r),
            _ => Err(CoreError::NotFound),
        }
    }

    pub async fn download(
        &self,
        principal: &Principal,
        id: Uuid,
    ) -> Result<FileDownload, CoreError> {
        principal.require(Permission::ContentRead)?;
        let record = self.own_file(principal, id).await?;
        let content = match self.deps.blobs.open(&record.storage_key).await {
            Ok(content) => content,
            // A row without content is our fault, not the client's.
            Err(CoreError::NotFound) => {
                return Err(CoreError::internal(format!(
                    "content of file {} is missing",
                    record.id
                )));
            }
            Err(e) => return Err(e),
        };
        Ok(FileDownload {
            info: to_info(&record),
            content,
        })
    }

    /// Deletes a file of the caller's; holders of `content:delete` may
    /// delete anyone's. The row goes first, then the content.
    pub async fn delete(
        &self,
        principal: &Principal,
        id: Uuid,
        meta: &RequestMeta,
    ) -> Result<(), CoreError> {
        principal.require(Permission::ContentWrite)?;
        let record = if principal.require(Permission::ContentDelete).is_ok() {
            self.deps
                .files
                .file_by_id(id)
                .await?
                .ok_or(CoreError::NotFound)?
        } else {
            self.own_file(principal, id).await?
        };
        if !self.deps.files.delete_file(record.id).await? {
            return Err(CoreError::NotFound);
        }
        remove_blobs(self.deps.blobs.as_ref(), &[record.storage_key]).await;
        self.deps
            .kernel
            .audit(
                AuditEvent::new(EventKind::FileDeleted, Outcome::Success, meta)
                    .actor(principal.id())
                    .target(record.owner_id)
                    .details(json!({
                        "file_id": record.id,
                        "content_type": record.content_type,
                        "size": record.size,
                    })),
            )
            .await;
        Ok(())
    }
}
