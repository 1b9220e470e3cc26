//! The sweep of contents no row refers to: a crash between storing an
//! upload's content and writing its row leaves one, as does an upload that
//! died mid-way without cleaning up. Nothing younger than the grace period
//! is touched, so an upload in flight keeps its content.

use std::collections::HashSet;
use std::time::Duration;

use futures_util::StreamExt;

use super::{FileService, remove_blobs};
use crate::CoreError;
use crate::ports::BlobEntry;

/// Contents written to less than this long ago are never swept: an upload
/// may be between its last write and its row.
pub const ORPHAN_GRACE: Duration = Duration::from_secs(3600);

/// Contents whose rows are looked up at once.
const BATCH: usize = 500;

impl FileService {
    /// Removes contents without a row, and partial contents, last written
    /// more than `grace` ago. A job of the process (at start and
    /// periodically): no caller to check. Returns how many were removed.
    pub async fn sweep_orphans(&self, grace: Duration) -> Result<u64, CoreError> {
        let grace_ms = i64::try_from(grace.as_millis()).unwrap_or(i64::MAX);
        let cutoff = self.deps.kernel.now_ms().saturating_sub(grace_ms);
        let mut entries = self.deps.blobs.entries().await?;
        let mut batch = Vec::with_capacity(BATCH);
        let mut removed = 0;
        while let Some(entry) = entries.next().await {
            let entry = entry?;
            if entry.modified_at > cutoff {
                continue;
            }
            if entry.is_partial {
                // Untouched for the whole grace period: its upload is gone.
                self.deps.blobs.discard(&entry).await?;
                removed += 1;
                continue;
            }
            batch.push(entry);
            if batch.len() == BATCH {
                removed += self.remove_unknown(&mut batch).await?;
            }
        }
        removed += self.remove_unknown(&mut batch).await?;
        Ok(removed)
    }

    /// Removes the contents of `batch` that no row refers to; empties it.
    async fn remove_unknown(&self, batch: &mut Vec<BlobEntry>) -> Result<u64, CoreError> {
        if batch.is_empty() {
            return Ok(0);
        }
        let keys: Vec<String> = batch.iter().map(|e| e.key.clone()).collect();
        let known: HashSet<String> = self
            .deps
            .files
            .known_storage_keys(&keys)
            .await?
            .into_iter()
            .collect();
        let orphans: Vec<String> = batch
            .drain(..)
            .filter(|e| !known.contains(&e.key))
            .map(|e| e.key)
            .collect();
        for key in &orphans {
            tracing::info!(storage_key = %key, "removing upload content without a row");
        }
        remove_blobs(self.deps.blobs.as_ref(), &orphans).await;
        Ok(orphans.len() as u64)
    }
}
