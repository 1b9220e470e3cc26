//! File use cases: upload (streamed, size-capped, type-checked by extension
//! and content), list, download and delete. Only a file's owner sees it;
//! holders of `content:delete` may also delete anyone's.

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
use crate::ports::{BlobStore, BlobStream, BlobWriter, FileRecord, FileRepo};
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
        }
    }

    /// Stores an upload. The extension is checked before anything is
    /// written, the content's magic bytes as soon as they have arrived, and
    /// the size on every chunk: the upload never sits whole in memory and
    /// stops at the first byte past the limit. The row is written only once
    /// the content is complete; any failure leaves neither row nor content.
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

        let mut writer = self.deps.blobs.begin().await?;
        let size = match self.receive(kind, body, writer.as_mut()).await {
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
        if let Err(e) = self.deps.files.insert_file(&record).await {
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
    /// [`SNIFF_BYTES`] and counting every byte; returns the size.
    async fn receive(
        &self,
        kind: FileKind,
        mut body: UploadStream<'_>,
        writer: &mut dyn BlobWriter,
    ) -> Result<u64, CoreError> {
        let mut head: Vec<u8> = Vec::with_capacity(SNIFF_BYTES);
        let mut is_judged = false;
        let mut size: u64 = 0;
        while let Some(chunk) = body.next().await {
            let chunk = chunk?;
            size = size.saturating_add(chunk.len() as u64);
            if size > self.max_upload_bytes {
                return Err(CoreError::FileTooLarge);
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

    /// The caller's files, newest first.
    pub async fn list(&self, principal: &Principal) -> Result<Vec<FileInfo>, CoreError> {
        principal.require(Permission::ContentRead)?;
        let rows = self.deps.files.files_of_owner(principal.id()).await?;
        Ok(rows.iter().map(to_info).collect())
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
