//! `BlobStore` on the local disk: file contents under `UPLOAD_DIR`, one file
//! per blob, named by a random key the store chooses. Nothing a client sends
//! ever becomes part of a path.

use std::io;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use futures_util::StreamExt;
use gatehouse_core::CoreError;
use gatehouse_core::ports::{BlobStore, BlobStream, BlobWriter};
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
        let temp = self.dir.join(format!(".{key}.part"));
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
