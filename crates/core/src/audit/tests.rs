//! The keyed chain, truncation and rollback detection, and anchors, against
//! an in-memory store that tests tamper with as a database writer would.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use uuid::Uuid;

use super::*;
use crate::CoreError;
use crate::config::DataKey;

#[derive(Debug, Default)]
struct Rows {
    entries: Vec<AuditEntry>,
    anchor: Option<Anchor>,
    unkeyed_until: i64,
}

#[derive(Debug, Default)]
struct MemoryRepo(Mutex<Rows>);

impl MemoryRepo {
    fn rows(&self) -> std::sync::MutexGuard<'_, Rows> {
        self.0.lock().unwrap()
    }

    /// Rewrites entry `seq` with `f`, then recomputes its plain SHA-256, as
    /// someone with database access but without the key would.
    fn forge(&self, seq: i64, f: impl FnOnce(&mut AuditEntry)) {
        let mut rows = self.rows();
        let e = rows.entries.iter_mut().find(|e| e.seq == seq).unwrap();
        f(e);
        e.hash = entry_hash(&e.prev_hash, e.seq, &e.draft());
    }

    fn truncate_after(&self, seq: i64) {
        self.rows().entries.retain(|e| e.seq <= seq);
    }
}

#[async_trait]
impl AuditRepo for MemoryRepo {
    async fn append(&self, d: &AuditDraft, key: &ChainKey) -> Result<AuditEntry, CoreError> {
        let mut rows = self.rows();
        let (prev_seq, prev_hash) = match (rows.entries.last(), &rows.anchor) {
            (Some(e), _) => (e.seq, e.hash.clone()),
            (None, Some(a)) => (a.seq, a.hash.clone()),
            (None, None) => (0, GENESIS_HASH.to_owned()),
        };
        let seq = prev_seq + 1;
        let hash = key.seal(&prev_hash, seq, d);
        let entry = d.entry(seq, prev_hash, hash);
        rows.entries.push(entry.clone());
        Ok(entry)
    }

    async fn append_batch(
        &self,
        drafts: &[AuditDraft],
        key: &ChainKey,
    ) -> Result<Vec<AuditEntry>, CoreError> {
        // A draft whose event is "refused" stands for one the store cannot
        // take: the whole batch fails, as a transaction would.
        if drafts.iter().any(|d| d.event == "refused") {
            return Err(CoreError::internal("refused by the store"));
        }
        let mut entries = Vec::new();
        for d in drafts {
            entries.push(self.append(d, key).await?);
        }
        Ok(entries)
    }

    async fn page(&self, q: &AuditQuery) -> Result<Vec<AuditEntry>, CoreError> {
        let rows = self.rows();
        let limit = usize::try_from(q.limit).unwrap();
        Ok(rows.entries.iter().rev().take(limit).cloned().collect())
    }

    async fn chain_after(&self, after: i64, limit: u64) -> Result<Vec<AuditEntry>, CoreError> {
        let rows = self.rows();
        let limit = usize::try_from(limit).unwrap();
        Ok(rows
            .entries
            .iter()
            .filter(|e| e.seq > after)
            .take(limit)
            .cloned()
            .collect())
    }

    async fn anchor(&self) -> Result<Option<Anchor>, CoreError> {
        Ok(self.rows().anchor.clone())
    }

    async fn unkeyed_until(&self) -> Result<i64, CoreError> {
        Ok(self.rows().unkeyed_until)
    }

    async fn prune_before(&self, cutoff: i64, key: &ChainKey) -> Result<u64, CoreError> {
        let mut rows = self.rows();
        let Some(last) = rows.entries.iter().rfind(|e| e.at < cutoff) else {
            return Ok(0);
        };
        let (seq, hash) = (last.seq, last.hash.clone());
        let before = rows.entries.len();
        rows.entries.retain(|e| e.seq > seq);
        rows.anchor = Some(Anchor {
            seq,
            seal: Some(key.seal_anchor(seq, &hash)),
            hash,
        });
        Ok((before - rows.entries.len()) as u64)
    }

    async fn count_since(&self, _: &str, _: i64) -> Result<u64, CoreError> {
        Ok(0)
    }

    async fn count_per_hour(&self, _: &str, _: i64) -> Result<Vec<(i64, u64)>, CoreError> {
        Ok(Vec::new())
    }
}

fn key(byte: u8) -> ChainKey {
    ChainKey::new(Arc::new(DataKey::new("audit", [byte; 32])))
}

fn draft(n: i64) -> AuditDraft {
    AuditDraft {
        id: Uuid::now_v7(),
        at: 1_700_000_000_000 + n,
        event: "login_failed".into(),
        outcome: "failure".into(),
        actor_id: None,
        target_id: None,
        ip: Some("127.0.0.1".into()),
        user_agent: None,
        request_id: None,
        details: format!(r#"{{"n":{n}}}"#),
    }
}

/// A trail over a fresh store, with `n` entries appended through it.
async fn trail_with(n: i64) -> (Arc<MemoryRepo>, Arc<AuditTrail>) {
    let repo = Arc::new(MemoryRepo::default());
    let trail = Arc::new(AuditTrail::new(repo.clone(), key(1)));
    for i in 1..=n {
        trail.append(&draft(i)).await.unwrap();
    }
    (repo, trail)
}

fn point(repo: &MemoryRepo, seq: i64) -> ChainPoint {
    let rows = repo.rows();
    let e = rows.entries.iter().find(|e| e.seq == seq).unwrap();
    ChainPoint {
        seq,
        hash: e.hash.clone(),
    }
}

#[tokio::test]
async fn a_keyed_chain_verifies_and_knows_its_head() {
    let (repo, trail) = trail_with(5).await;
    let v = trail.verify(None).await.unwrap();
    assert!(v.valid, "{v:?}");
    assert_eq!(v.checked, 5);
    assert_eq!(v.head, Some(point(&repo, 5)));
    assert_eq!(v.instance_head.unwrap().status, HeadStatus::Held);
    assert!(v.failures.is_empty());
}

#[tokio::test]
async fn a_row_rewritten_without_the_key_fails() {
    let (repo, trail) = trail_with(5).await;
    repo.forge(3, |e| e.details = r#"{"n":99}"#.into());
    let v = trail.verify(None).await.unwrap();
    assert!(!v.valid);
    assert_eq!(v.first_broken.unwrap().seq, 3);
    assert_eq!(v.failures, ["broken_link"]);

    // Recomputing the whole tail as plain SHA-256 and calling it unkeyed
    // (a downgrade) fails too: only entries from before the key may be.
    let (repo, trail) = trail_with(5).await;
    for seq in 3..=5 {
        let prev = point(&repo, seq - 1).hash;
        repo.forge(seq, |e| {
            e.prev_hash = prev;
            e.scheme = HashScheme::Sha256.code();
        });
    }
    let fresh = AuditTrail::new(repo.clone(), key(1));
    let v = fresh.verify(None).await.unwrap();
    assert!(!v.valid);
    let broken = v.first_broken.unwrap();
    assert_eq!(broken.seq, 3);
    assert_eq!(broken.reason, "entry is not sealed with the chain key");
    // And the instance that wrote them sees its head rewritten.
    let v = trail.verify(None).await.unwrap();
    assert!(v.failures.contains(&"instance_head_mismatch"), "{v:?}");
}

#[tokio::test]
async fn entries_from_before_the_key_still_verify() {
    let repo = Arc::new(MemoryRepo::default());
    {
        let mut rows = repo.rows();
        let mut prev = GENESIS_HASH.to_owned();
        for seq in 1..=3 {
            let d = draft(seq);
            let hash = entry_hash(&prev, seq, &d);
            rows.entries.push(AuditEntry {
                id: d.id,
                seq,
                at: d.at,
                event: d.event,
                outcome: d.outcome,
                actor_id: None,
                target_id: None,
                ip: d.ip,
                user_agent: None,
                request_id: None,
                details: d.details,
                prev_hash: std::mem::replace(&mut prev, hash.clone()),
                hash,
                scheme: HashScheme::Sha256.code(),
            });
        }
        rows.unkeyed_until = 3;
    }
    let trail = Arc::new(AuditTrail::new(repo.clone(), key(1)));
    trail.append(&draft(4)).await.unwrap();
    trail.append(&draft(5)).await.unwrap();
    let v = trail.verify(None).await.unwrap();
    assert!(v.valid, "{v:?}");
    assert_eq!((v.checked, v.unkeyed_until), (5, 3));
    // The same chain under another key: the keyed part fails.
    let other = AuditTrail::new(repo, key(2));
    let v = other.verify(None).await.unwrap();
    assert_eq!(v.first_broken.unwrap().seq, 4);
}

#[tokio::test]
async fn deleting_the_newest_entries_is_caught_by_the_known_head() {
    let (repo, trail) = trail_with(5).await;
    let removed = point(&repo, 5);
    repo.truncate_after(3);
    let v = trail.verify(None).await.unwrap();
    assert!(!v.valid);
    assert!(v.first_broken.is_none(), "what is left links up");
    assert_eq!(v.instance_head.unwrap().status, HeadStatus::Missing);
    assert_eq!(v.failures, ["instance_head_missing"]);
    // An instance that never saw them needs the checkpoint from the log.
    let fresh = AuditTrail::new(repo.clone(), key(1));
    assert!(fresh.verify(None).await.unwrap().valid);
    let v = fresh.verify(Some(removed)).await.unwrap();
    assert_eq!(v.claimed_head.unwrap().status, HeadStatus::Missing);
    assert_eq!(v.failures, ["claimed_head_missing"]);
    let v = fresh
        .verify(Some(ChainPoint {
            seq: 2,
            hash: "f".repeat(64),
        }))
        .await
        .unwrap();
    assert_eq!(v.failures, ["claimed_head_mismatch"]);
    let held = point(&repo, 3);
    assert!(fresh.verify(Some(held)).await.unwrap().valid);
}

#[tokio::test]
async fn appends_after_a_truncation_do_not_hide_it() {
    let (repo, trail) = trail_with(5).await;
    repo.truncate_after(3);
    // New entries reuse the removed sequences and then pass them.
    for i in 0..4 {
        trail.append(&draft(10 + i)).await.unwrap();
    }
    let v = trail.verify(None).await.unwrap();
    assert!(!v.valid, "{v:?}");
    let head = v.instance_head.unwrap();
    assert_eq!((head.seq, head.status), (5, HeadStatus::Mismatch));
}

#[tokio::test]
async fn pruning_anchors_are_sealed_and_forged_ones_fail() {
    let (_, trail) = trail_with(5).await;
    assert_eq!(trail.prune_before(1_700_000_000_000 + 3).await.unwrap(), 2);
    let v = trail.verify(None).await.unwrap();
    assert!(v.valid, "{v:?}");
    assert_eq!((v.anchor.unwrap().seq, v.checked), (2, 3));
    // Everything pruned: the known head is the anchor itself.
    trail.prune_before(i64::MAX).await.unwrap();
    let v = trail.verify(None).await.unwrap();
    assert!(v.valid, "{v:?}");
    assert_eq!(v.instance_head.unwrap().status, HeadStatus::Held);
    // Someone deletes entries and writes an anchor of their own.
    let (victim, trail) = trail_with(5).await;
    let tail = point(&victim, 4);
    victim.rows().entries.retain(|e| e.seq > 4);
    victim.rows().anchor = Some(Anchor {
        seq: tail.seq,
        hash: tail.hash,
        seal: None,
    });
    let v = trail.verify(None).await.unwrap();
    assert_eq!(v.failures, ["anchor_not_sealed"]);
}

#[tokio::test]
async fn a_checkpoint_reports_the_stored_head_as_seen() {
    let (repo, writer) = trail_with(3).await;
    let reader = AuditTrail::new(repo.clone(), key(1));
    assert_eq!(reader.known_head(), None);
    let head = reader.checkpoint("startup").await.unwrap();
    assert_eq!(head, Some(point(&repo, 3)));
    repo.truncate_after(2);
    assert!(!reader.verify(None).await.unwrap().valid);
    // The checkpoint keeps the higher head it knew.
    assert_eq!(writer.checkpoint("shutdown").await.unwrap().unwrap().seq, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_share_commits_and_keep_one_chain() {
    let repo = Arc::new(MemoryRepo::default());
    let trail = Arc::new(AuditTrail::new(repo.clone(), key(1)));
    let tasks: Vec<_> = (1..=200)
        .map(|i| {
            let trail = Arc::clone(&trail);
            tokio::spawn(async move {
                let d = draft(i);
                let entry = trail.append(&d).await.unwrap();
                // Each caller gets its own entry back.
                assert_eq!(entry.id, d.id);
                entry.seq
            })
        })
        .collect();
    let mut seqs = Vec::new();
    for task in tasks {
        seqs.push(task.await.unwrap());
    }
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=200).collect::<Vec<i64>>());
    assert_eq!(trail.known_head().unwrap().seq, 200);
    assert!(trail.verify(None).await.unwrap().valid);
}

/// On one thread the writer starts after all forty appends are queued, so
/// they are one batch, with the refused entry inside it.
#[tokio::test]
async fn an_entry_the_store_refuses_fails_alone() {
    let repo = Arc::new(MemoryRepo::default());
    let trail = Arc::new(AuditTrail::new(repo.clone(), key(1)));
    let tasks: Vec<_> = (1..=40)
        .map(|i| {
            let trail = Arc::clone(&trail);
            tokio::spawn(async move {
                let mut d = draft(i);
                if i == 20 {
                    d.event = "refused".into();
                }
                (i, trail.append(&d).await.is_ok())
            })
        })
        .collect();
    for task in tasks {
        let (i, stored) = task.await.unwrap();
        assert_eq!(stored, i != 20, "entry {i}");
    }
    assert_eq!(repo.rows().entries.len(), 39);
    assert!(trail.verify(None).await.unwrap().valid);
}
