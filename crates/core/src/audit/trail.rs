//! The stored trail as the service drives it: appends sealed with the chain
//! key, the head this instance has written or seen (kept in memory, so a
//! truncation by someone with database access shows), checkpoints of that
//! head in the log (a copy outside the database), verification, pruning.

use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use tokio::sync::oneshot;
use uuid::Uuid;

use super::chain::{
    AuditDraft, AuditEntry, AuditQuery, AuditRepo, ChainKey, ChainPoint, same_hash,
};
use super::verify::{Expected, Verification, verify_chain};
use super::{AuditEvent, AuditSink, LogAuditSink};
use crate::CoreError;
use crate::clock::Clock;

/// An `audit_checkpoint` line is logged for every entry whose sequence is a
/// multiple of this (whichever instance writes it), and at shutdown.
pub const CHECKPOINT_EVERY: i64 = 1000;

/// What this instance knows of the chain's head.
#[derive(Debug, Default)]
struct Known {
    head: Option<ChainPoint>,
    /// Set once the chain was seen going backwards: the head is kept as
    /// evidence and no longer advances, so every later verify fails.
    is_frozen: bool,
}

/// The stored trail with its key and the head this instance knows.
#[derive(Debug)]
pub struct AuditTrail {
    repo: Arc<dyn AuditRepo>,
    key: ChainKey,
    known: Mutex<Known>,
    /// Appends waiting for the writer (group commit).
    queue: Queue,
}

/// Entries waiting to be appended, each with who waits for it, and whether
/// a writer is running. One writer per instance takes everything queued,
/// appends it in one transaction, answers each waiter, and goes again
/// until the queue is empty: concurrent events share a lock and a commit
/// instead of queueing for one each, and every caller still returns only
/// once its own entry is committed.
#[derive(Debug, Default)]
struct Queue {
    state: Mutex<QueueState>,
}

#[derive(Debug, Default)]
struct QueueState {
    waiting: Vec<(AuditDraft, oneshot::Sender<Result<AuditEntry, String>>)>,
    writing: bool,
}

/// Most entries one transaction takes; the rest wait for the next.
const MAX_BATCH: usize = 256;

/// Should the writer stop other than by finding the queue empty (its task
/// cancelled at shutdown, or a panic), the entries still queued are failed
/// rather than left waiting, and the next append starts a new writer.
struct WriterStopped<'a> {
    queue: &'a Queue,
    finished: bool,
}

impl Drop for WriterStopped<'_> {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let mut state = self.queue.lock();
        state.writing = false;
        for (_, waiter) in state.waiting.drain(..) {
            let _ = waiter.send(Err("audit writer stopped".into()));
        }
    }
}

/// Writes the head to the log (target `gatehouse::security`).
fn log_checkpoint(head: &ChainPoint, reason: &'static str) {
    tracing::info!(
        target: "gatehouse::security",
        event = "audit_checkpoint",
        seq = head.seq,
        hash = %head.hash,
        reason,
        "audit checkpoint"
    );
}

impl Queue {
    fn lock(&self) -> std::sync::MutexGuard<'_, QueueState> {
        // Pushes and drains only: a panic elsewhere cannot leave it
        // half-written.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl AuditTrail {
    pub fn new(repo: Arc<dyn AuditRepo>, key: ChainKey) -> Self {
        Self {
            repo,
            key,
            known: Mutex::new(Known::default()),
            queue: Queue::default(),
        }
    }

    pub fn repo(&self) -> &dyn AuditRepo {
        self.repo.as_ref()
    }

    fn known(&self) -> std::sync::MutexGuard<'_, Known> {
        // The state is two plain fields: a panic elsewhere cannot leave it
        // half-written.
        self.known.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The highest entry this instance has written or seen.
    pub fn known_head(&self) -> Option<ChainPoint> {
        self.known().head.clone()
    }

    /// Raises the known head to `point` if it is higher.
    fn observe(&self, point: ChainPoint) {
        let mut known = self.known();
        if !known.is_frozen && known.head.as_ref().is_none_or(|h| point.seq > h.seq) {
            known.head = Some(point);
        }
    }

    /// Appends an entry sealed with the chain key, and logs a checkpoint
    /// every [`CHECKPOINT_EVERY`] entries. Returns once the entry is
    /// committed, in a transaction it may share with concurrent appends.
    pub async fn append(self: &Arc<Self>, draft: &AuditDraft) -> Result<AuditEntry, CoreError> {
        let (tx, rx) = oneshot::channel();
        let start_writer = {
            let mut state = self.queue.lock();
            state.waiting.push((draft.clone(), tx));
            !std::mem::replace(&mut state.writing, true)
        };
        if start_writer {
            // Its own task: a caller that goes away (a client hanging up)
            // cannot stop the writer with other callers' entries in hand.
            tokio::spawn(Arc::clone(self).write_queued());
        }
        rx.await
            .map_err(|_| CoreError::internal("audit writer stopped"))?
            .map_err(CoreError::internal)
    }

    /// The writer: appends what is queued, batch after batch, until nothing
    /// is left.
    async fn write_queued(self: Arc<Self>) {
        let mut stopped = WriterStopped {
            queue: &self.queue,
            finished: false,
        };
        loop {
            let batch = {
                let mut state = self.queue.lock();
                if state.waiting.is_empty() {
                    state.writing = false;
                    stopped.finished = true;
                    return;
                }
                let take = state.waiting.len().min(MAX_BATCH);
                state.waiting.drain(..take).collect::<Vec<_>>()
            };
            let (drafts, waiters): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
            let results = match self.append_now(&drafts).await {
                Ok(entries) => entries.into_iter().map(Ok).collect(),
                // One entry the store refuses must not take the others with
                // it: each is tried on its own.
                Err(_) if drafts.len() > 1 => {
                    let mut results = Vec::with_capacity(drafts.len());
                    for draft in &drafts {
                        let one = self.append_now(std::slice::from_ref(draft)).await;
                        results.push(one.and_then(|mut e| {
                            e.pop()
                                .ok_or_else(|| CoreError::internal("nothing appended"))
                        }));
                    }
                    results
                }
                Err(e) => vec![Err(e)],
            };
            for (result, waiter) in results.into_iter().zip(waiters) {
                let _ = waiter.send(result.map_err(|e| e.to_string()));
            }
        }
    }

    /// Appends `drafts` as one transaction and checks the chain did not go
    /// backwards underneath this instance.
    async fn append_now(&self, drafts: &[AuditDraft]) -> Result<Vec<AuditEntry>, CoreError> {
        let before = self.known_head();
        let entries = self.repo.append_batch(drafts, &self.key).await?;
        let (Some(first), Some(last)) = (entries.first(), entries.last()) else {
            return Ok(entries);
        };
        // An append takes the next sequence after everything that existed
        // when it started: a lower one, or a different link to the entry we
        // knew, means entries were removed or rewritten underneath us.
        let rolled_back = before.as_ref().is_some_and(|b| {
            first.seq <= b.seq || (first.seq == b.seq + 1 && !same_hash(&first.prev_hash, &b.hash))
        });
        if rolled_back {
            let mut known = self.known();
            if !known.is_frozen {
                known.is_frozen = true;
                tracing::error!(
                    target: "gatehouse::security",
                    known_seq = before.as_ref().map(|b| b.seq),
                    appended_seq = first.seq,
                    "audit chain went backwards: entries were removed or rewritten"
                );
            }
        } else {
            self.observe(ChainPoint {
                seq: last.seq,
                hash: last.hash.clone(),
            });
        }
        for entry in entries.iter().filter(|e| e.seq % CHECKPOINT_EVERY == 0) {
            log_checkpoint(
                &ChainPoint {
                    seq: entry.seq,
                    hash: entry.hash.clone(),
                },
                "interval",
            );
        }
        Ok(entries)
    }

    /// Verifies the chain against its links, the known head and, when
    /// given, the head the caller names. A valid chain's end counts as seen.
    pub async fn verify(&self, claimed: Option<ChainPoint>) -> Result<Verification, CoreError> {
        let expected = Expected {
            instance: self.known_head(),
            claimed,
        };
        let verification = verify_chain(self.repo.as_ref(), &self.key, &expected).await?;
        if verification.valid
            && let Some(head) = &verification.head
        {
            self.observe(head.clone());
        }
        Ok(verification)
    }

    /// Reads the stored head, counts it as seen, and logs the known head as
    /// an `audit_checkpoint` (`reason`: `startup`, `shutdown`). Returns it.
    pub async fn checkpoint(&self, reason: &'static str) -> Result<Option<ChainPoint>, CoreError> {
        let newest = self
            .repo
            .page(&AuditQuery {
                limit: 1,
                ..AuditQuery::default()
            })
            .await?;
        if let Some(e) = newest.into_iter().next() {
            let known = self.known_head();
            if known.as_ref().is_some_and(|k| e.seq < k.seq) {
                tracing::error!(
                    target: "gatehouse::security",
                    stored_seq = e.seq,
                    known_seq = known.map(|k| k.seq),
                    "audit chain ends before the head this instance knows"
                );
            }
            self.observe(ChainPoint {
                seq: e.seq,
                hash: e.hash,
            });
        }
        let head = self.known_head();
        if let Some(head) = &head {
            log_checkpoint(head, reason);
        }
        Ok(head)
    }

    /// Deletes entries older than `cutoff` (ms), anchoring the rest.
    pub async fn prune_before(&self, cutoff: i64) -> Result<u64, CoreError> {
        self.repo.prune_before(cutoff, &self.key).await
    }
}

/// Logs every event and appends it to the stored, hash-chained trail.
#[derive(Debug, Clone)]
pub struct StoredAuditSink {
    trail: Arc<AuditTrail>,
    clock: Arc<dyn Clock>,
}

impl StoredAuditSink {
    pub fn new(trail: Arc<AuditTrail>, clock: Arc<dyn Clock>) -> Self {
        Self { trail, clock }
    }
}

#[async_trait]
impl AuditSink for StoredAuditSink {
    async fn record(&self, e: AuditEvent) {
        let draft = AuditDraft {
            id: Uuid::now_v7(),
            at: self.clock.now_ms(),
            event: e.kind.as_str().to_owned(),
            outcome: e.outcome.as_str().to_owned(),
            actor_id: e.actor_id,
            target_id: e.target_id,
            ip: e.meta.ip.clone(),
            user_agent: e.meta.user_agent.clone(),
            request_id: e.meta.request_id.clone(),
            details: if e.details.is_null() {
                "{}".to_owned()
            } else {
                e.details.to_string()
            },
        };
        LogAuditSink.record(e).await;
        if let Err(err) = self.trail.append(&draft).await {
            tracing::error!(
                target: "gatehouse::security",
                event = %draft.event,
                error = %err,
                "audit entry could not be stored"
            );
        }
    }
}
