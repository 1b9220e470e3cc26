//! `BlobStore` on the local disk: file contents under `UPLOAD_DIR`, one file
//! per blob, named by a random key the store chooses. Nothing a client sends
//! ever becomes part of a path.

use std::io;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use async_trait::async_trait;
use futures_util::StreamExt;
use futures_util::stream::{self, BoxStream};
use gatehouse_core::CoreError;
use gatehouse_core::ports::{BlobEntry, BlobStore, BlobStream, BlobWriter};
use tokio::fs::{self, File, OpenOptions};
use tokio::io::AsyncWriteExt;
use tokio_util::io::ReaderStream;
use uuid::Uuid;

/// Chunk size when streaming a blob out.
const READ_CHUNK: usize = 64 * 1024;

/// Blobs in one directory, created on first use (mode 0700; files 0600).
#[derive(Debug, Clone)]
pub struct DiskBlobStore {
    dir: PathBuf,
}

/// A key is exactly 32 lower-case hex digits (a UUIDv7 without dashes), so
/// even a tampered database row cannot name a path outside the directory.
fn is_key(key: &str) -> bool {
    key.len() == 32 && key.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn io_error(err: io::Error) -> CoreError {
    CoreError::internal(err)
}

/// The temporary name of a blob being written.
fn partial_name(key: &str) -> String {
    format!(".{key}.part")
}

/// What a directory entry is to the store: a blob, a partial blob, or (for
/// any other name) nothing of ours, left alone.
async fn blob_entry(entry: &fs::DirEntry) -> io::Result<Option<BlobEntry>> {
    let name = entry.file_name();
    let Some(name) = name.to_str() else {
        return Ok(None);
    };
    let (key, is_partial) = match name.strip_prefix('.').and_then(|n| n.strip_suffix(".part")) {
        Some(key) => (key, true),
        None => (name, false),
    };
    if !is_key(key) {
        return Ok(None);
    }
    let metadata = match entry.metadata().await {
        Ok(m) if m.is_file() => m,
        Ok(_) => return Ok(None),
        // Removed since it was listed (a delete, an aborted upload).
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let modified = metadata.modified()?;
    let modified_at = modified
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    Ok(Some(BlobEntry {
        key: key.to_owned(),
        is_partial,
        modified_at,
    }))
}

impl DiskBlobStore {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path_of(&self, key: &str) -> Result<PathBuf, CoreError> {
        if is_key(key) {
            Ok(self.dir.join(key))
        } else {
            Err(CoreError::internal(format!(
                "malformed storage key of {} bytes",
                key.len()
            )))
        }
    }

    async fn ensure_dir(&self) -> io::Result<()> {
        let mut builder = fs::DirBuilder::new();
        builder.recursive(true);
        // Uploads are readable by the service alone.
        #[cfg(unix)]
        builder.mode(0o700);
        builder.create(&self.dir).await
    }
}

#[async_trait]
impl BlobStore for DiskBlobStore {
    async fn begin(&self) -> Result<Box<dyn BlobWriter>, CoreError> {
        self.ensure_dir().await.map_err(io_error)?;
        let key = Uuid::now_v7().simple().to_string();
        // Written under a temporary name in the same directory, so the final
        // rename is atomic: a blob is never visible half-written.
        let temp = self.dir.join(partial_name(&key));
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        options.mode(0o600);
        let file = options.open(&temp).await.map_err(io_error)?;
        Ok(Box::new(DiskBlobWriter {
            file: Some(file),
            target: self.dir.join(&key),
            temp,
            key,
            is_finished: false,
        }))
    }

    async fn open(&self, key: &str) -> Result<BlobStream, CoreError> {
        let file = match File::open(self.path_of(key)?).await {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(CoreError::NotFound),
            Err(e) => return Err(io_error(e)),
        };
        Ok(ReaderStream::with_capacity(file, READ_CHUNK)
            .map(|chunk| chunk.map_err(io_error))
            .boxed())
    }

    async fn remove(&self, key: &str) -> Result<(), CoreError> {
        match fs::remove_file(self.path_of(key)?).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_error(e)),
        }
    }

    async fn available_bytes(&self) -> Result<u64, CoreError> {
        self.ensure_dir().await.map_err(io_error)?;
        let dir = self.dir.clone();
        let stats = tokio::task::spawn_blocking(move || rustix::fs::statvfs(&dir))
            .await
            .map_err(CoreError::internal)?
            .map_err(|e| io_error(e.into()))?;
        // Blocks available to unprivileged writers, not the root reserve.
        Ok(stats.f_bavail.saturating_mul(stats.f_frsize))
    }

    async fn entries(&self) -> Result<BoxStream<'static, Result<BlobEntry, CoreError>>, CoreError> {
        let dir = match fs::read_dir(&self.dir).await {
            Ok(dir) => dir,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(stream::empty().boxed()),
            Err(e) => return Err(io_error(e)),
        };
        // One directory entry at a time: the listing never sits in memory.
        Ok(stream::unfold(dir, |mut dir| async move {
            loop {
                let found = match dir.next_entry().await {
                    Ok(Some(entry)) => blob_entry(&entry).await.transpose(),
                    Ok(None) => return None,
                    Err(e) => Some(Err(e)),
                };
                if let Some(item) = found {
                    return Some((item.map_err(io_error), dir));
                }
            }
        })
        .boxed())
    }

    async fn discard(&self, entry: &BlobEntry) -> Result<(), CoreError> {
        if !entry.is_partial {
            return self.remove(&entry.key).await;
        }
        let path = self
            .path_of(&entry.key)?
            .with_file_name(partial_name(&entry.key));
        match fs::remove_file(path).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_error(e)),
        }
    }
}

/// A blob being written to its temporary file.
#[derive(Debug)]
struct DiskBlobWriter {
    file: Option<File>,
    temp: PathBuf,
    target: PathBuf,
    key: String,
    /// Committed or aborted: nothing left for `Drop` to clean up.
    is_finished: bool,
}

impl DiskBlobWriter {
    async fn finish(&mut self) -> io::Result<()> {
        let Some(mut file) = self.file.take() else {
            return Err(io::Error::other("blob already finished"));
        };
        file.flush().await?;
        file.sync_all().await?;
        drop(file);
        fs::rename(&self.temp, &self.target).await
    }
}

#[async_trait]
impl BlobWriter for DiskBlobWriter {
    async fn write(&mut self, chunk: &[u8]) -> Result<(), CoreError> {
        match self.file.as_mut() {
            Some(file) => file.write_all(chunk).await.map_err(io_error),
            None => Err(CoreError::internal("write to a finished blob")),
        }
    }

    async fn commit(mut self: Box<Self>) -> Result<String, CoreError> {
        // On failure `Drop` removes the temporary file.
        self.finish().await.map_err(io_error)?;
        self.is_finished = true;
        Ok(std::mem::take(&mut self.key))
    }

    async fn abort(mut self: Box<Self>) {
        drop(self.file.take());
        if let Err(e) = fs::remove_file(&self.temp).await
            && e.kind() != io::ErrorKind::NotFound
        {
            tracing::warn!(error = %e, "temporary upload file not removed");
        }
        self.is_finished = true;
    }
}

impl Drop for DiskBlobWriter {
    /// A cancelled upload (the client went away, the request timed out)
    /// drops its writer mid-way: the partial file must not stay behind.
    fn drop(&mut self) {
        if !self.is_finished {
            drop(self.file.take());
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn read_all(store: &DiskBlobStore, key: &str) -> Vec<u8> {
        let mut stream = store.open(key).await.unwrap();
        let mut out = Vec::new();
        while let Some(chunk) = stream.next().await {
            out.extend_from_slice(&chunk.unwrap());
        }
        out
    }

    fn names(dir: &Path) -> Vec<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    }

    #[tokio::test]
    async fn committed_blobs_round_trip_under_random_keys() {
        let root = tempfile::tempdir().unwrap();
        let store = DiskBlobStore::new(root.path().join("nested/uploads"));
        let mut writer = store.begin().await.unwrap();
        writer.write(b"hello ").await.unwrap();
        writer.write(b"world").await.unwrap();
        let key = writer.commit().await.unwrap();
        assert!(is_key(&key));
        assert_eq!(read_all(&store, &key).await, b"hello world");
        assert_eq!(names(store.dir()), vec![key.clone()]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(store.dir()), 0o700);
            assert_eq!(mode(&store.dir().join(&key)), 0o600);
        }
        store.remove(&key).await.unwrap();
        store.remove(&key).await.unwrap();
        assert!(matches!(store.open(&key).await, Err(CoreError::NotFound)));
    }

    #[tokio::test]
    async fn aborted_and_dropped_writers_leave_nothing() {
        let root = tempfile::tempdir().unwrap();
        let store = DiskBlobStore::new(root.path());
        let mut writer = store.begin().await.unwrap();
        writer.write(b"partial").await.unwrap();
        writer.abort().await;
        let mut writer = store.begin().await.unwrap();
        writer.write(b"partial").await.unwrap();
        drop(writer);
        assert!(names(root.path()).is_empty());
    }

    #[tokio::test]
    async fn entries_list_complete_and_partial_blobs_and_nothing_else() {
        let root = tempfile::tempdir().unwrap();
        let store = DiskBlobStore::new(root.path().join("uploads"));
        assert!(store.entries().await.unwrap().next().await.is_none());
        let mut writer = store.begin().await.unwrap();
        writer.write(b"done").await.unwrap();
        let done = writer.commit().await.unwrap();
        let mut pending = store.begin().await.unwrap();
        pending.write(b"half").await.unwrap();
        std::fs::write(store.dir().join("notes.txt"), b"not ours").unwrap();
        std::fs::write(store.dir().join(".x.part"), b"not ours").unwrap();
        let mut found: Vec<BlobEntry> = store
            .entries()
            .await
            .unwrap()
            .map(Result::unwrap)
            .collect()
            .await;
        found.sort_by_key(|e| e.is_partial);
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!(
            (found[0].key.as_str(), found[0].is_partial),
            (done.as_str(), false)
        );
        assert!(found[1].is_partial);
        assert!(found.iter().all(|e| e.modified_at > 1_600_000_000_000));
        for entry in &found {
            store.discard(entry).await.unwrap();
            store.discard(entry).await.unwrap();
        }
        let mut left = names(store.dir());
        left.sort();
        assert_eq!(left, [".x.part", "notes.txt"]);
        drop(pending);
        assert!(store.available_bytes().await.unwrap() > 0);
    }

    #[tokio::test]
    async fn keys_that_are_not_ours_never_become_paths() {
        let root = tempfile::tempdir().unwrap();
        let store = DiskBlobStore::new(root.path());
        for key in [
            "../etc/passwd",
            "/etc/passwd",
            "",
            "ABCDEF0123456789ABCDEF0123456789",
        ] {
            assert!(matches!(store.open(key).await, Err(CoreError::Internal(_))));
            assert!(store.remove(key).await.is_err());
        }
    }
}
