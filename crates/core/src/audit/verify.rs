//! Verification of the stored trail: every link and seal from the anchor to
//! the end, and that the chain still holds the entries it is known to have
//! had — the highest this instance wrote or saw, and one the caller names
//! (from an `audit_checkpoint` log line) — so truncation is caught too.

use serde::Serialize;
use uuid::Uuid;

use super::chain::{Anchor, AuditEntry, AuditRepo, ChainKey, ChainPoint, GENESIS_HASH, HashScheme};
use crate::CoreError;

/// Result of walking the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Verification {
    /// True when every check below passed.
    pub valid: bool,
    /// Entries verified before the first broken link (all of them if none).
    pub checked: u64,
    pub anchor: Option<Anchor>,
    pub first_broken: Option<BrokenLink>,
    /// The last stored entry; `null` when the chain holds none.
    pub head: Option<ChainPoint>,
    /// Entries up to this sequence were written before `AUDIT_CHAIN_KEY`
    /// and may carry the unkeyed SHA-256; later ones must be keyed.
    pub unkeyed_until: i64,
    /// The highest entry this instance has written or seen since it
    /// started, checked against the chain.
    pub instance_head: Option<HeadCheck>,
    /// The entry named by `head_seq` and `head_hash`, checked against the
    /// chain.
    pub claimed_head: Option<HeadCheck>,
    /// What failed, as stable codes: `broken_link`, `anchor_not_sealed`,
    /// `instance_head_missing`, `instance_head_mismatch`,
    /// `claimed_head_missing`, `claimed_head_mismatch`.
    pub failures: Vec<&'static str>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BrokenLink {
    pub seq: i64,
    pub id: Uuid,
    pub reason: &'static str,
}

/// An entry the chain must still hold, and whether it does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HeadCheck {
    pub seq: i64,
    pub hash: String,
    pub status: HeadStatus,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum HeadStatus {
    /// The chain holds the entry with that hash.
    Held,
    /// The entry lies before the pruning anchor (removed by retention).
    Pruned,
    /// The chain ends before the entry: entries were removed.
    Missing,
    /// The chain has another entry at that sequence: it was rewritten.
    Mismatch,
}

/// Entries the chain must still hold besides its own links.
#[derive(Debug, Clone, Default)]
pub struct Expected {
    /// The highest entry this instance has written or seen.
    pub instance: Option<ChainPoint>,
    /// An entry the caller names (a checkpoint kept outside the database).
    pub claimed: Option<ChainPoint>,
}

/// The walk's state: where the next entry must link, and what was found.
struct Walk<'a> {
    key: &'a ChainKey,
    unkeyed_until: i64,
    expected_seq: i64,
    expected_prev: String,
    checked: u64,
    broken: Option<BrokenLink>,
    last: Option<ChainPoint>,
    /// Hashes found at the sequences of [`Expected`].
    at_instance: Option<String>,
    at_claimed: Option<String>,
}

impl Walk<'_> {
    /// Steps through every entry after `start`, in batches.
    async fn run(
        &mut self,
        repo: &dyn AuditRepo,
        start: i64,
        expected: &Expected,
    ) -> Result<(), CoreError> {
        const BATCH: u64 = 1000;
        let mut cursor = start;
        loop {
            let batch = repo.chain_after(cursor, BATCH).await?;
            let done = (batch.len() as u64) < BATCH;
            for entry in batch {
                cursor = entry.seq;
                self.step(entry, expected);
            }
            if done {
                return Ok(());
            }
        }
    }

    fn link_problem(&self, e: &AuditEntry) -> Option<&'static str> {
        if e.seq != self.expected_seq {
            Some("sequence gap (an entry was removed)")
        } else if e.prev_hash != self.expected_prev {
            Some("link to the previous entry does not match")
        } else if HashScheme::from_code(e.scheme) == Some(HashScheme::Sha256)
            && e.seq > self.unkeyed_until
        {
            // A downgrade: entries after the key existed are always keyed.
            Some("entry is not sealed with the chain key")
        } else if !e.is_intact(self.key) {
            Some("entry content does not match its hash")
        } else {
            None
        }
    }

    /// Checks one entry; after a broken link it only records what it finds.
    fn step(&mut self, e: AuditEntry, expected: &Expected) {
        if self.broken.is_none() {
            match self.link_problem(&e) {
                Some(reason) => {
                    self.broken = Some(BrokenLink {
                        seq: e.seq,
                        id: e.id,
                        reason,
                    });
                }
                None => {
                    self.checked += 1;
                    self.expected_seq = e.seq + 1;
                    self.expected_prev.clone_from(&e.hash);
                }
            }
        }
        if expected.instance.as_ref().is_some_and(|p| p.seq == e.seq) {
            self.at_instance = Some(e.hash.clone());
        }
        if expected.claimed.as_ref().is_some_and(|p| p.seq == e.seq) {
            self.at_claimed = Some(e.hash.clone());
        }
        self.last = Some(ChainPoint {
            seq: e.seq,
            hash: e.hash,
        });
    }
}

/// The failure code of a head check that did not pass: `missing` or
/// `mismatch`, as its status says.
fn head_failure(
    head: Option<&HeadCheck>,
    [missing, mismatch]: [&'static str; 2],
) -> Option<&'static str> {
    match head.map(|h| h.status) {
        Some(HeadStatus::Missing) => Some(missing),
        Some(HeadStatus::Mismatch) => Some(mismatch),
        _ => None,
    }
}

/// Whether the chain (with its anchor) holds `point`, given the hash found
/// at its sequence, if any.
fn head_status(point: &ChainPoint, found: Option<&str>, anchor: Option<&Anchor>) -> HeadStatus {
    let held = |hash: &str| {
        if super::chain::same_hash(hash, &point.hash) {
            HeadStatus::Held
        } else {
            HeadStatus::Mismatch
        }
    };
    match (found, anchor) {
        (Some(hash), _) => held(hash),
        (None, Some(a)) if a.seq == point.seq => held(&a.hash),
        (None, Some(a)) if point.seq < a.seq => HeadStatus::Pruned,
        _ => HeadStatus::Missing,
    }
}

/// Walks the whole chain in batches, names the first broken link and checks
/// the expected entries.
pub async fn verify_chain(
    repo: &dyn AuditRepo,
    key: &ChainKey,
    expected: &Expected,
) -> Result<Verification, CoreError> {
    let anchor = repo.anchor().await?;
    let unkeyed_until = repo.unkeyed_until().await?;
    let start = anchor.as_ref().map_or(0, |a| a.seq);
    let mut walk = Walk {
        key,
        unkeyed_until,
        expected_seq: start + 1,
        expected_prev: anchor
            .as_ref()
            .map_or_else(|| GENESIS_HASH.to_owned(), |a| a.hash.clone()),
        checked: 0,
        broken: None,
        last: None,
        at_instance: None,
        at_claimed: None,
    };
    walk.run(repo, start, expected).await?;
    let mut failures = Vec::new();
    if walk.broken.is_some() {
        failures.push("broken_link");
    }
    if anchor
        .as_ref()
        .is_some_and(|a| !a.is_sealed_by(key, unkeyed_until))
    {
        failures.push("anchor_not_sealed");
    }
    let check = |point: &Option<ChainPoint>, found: &Option<String>| {
        point.as_ref().map(|p| HeadCheck {
            seq: p.seq,
            hash: p.hash.clone(),
            status: head_status(p, found.as_deref(), anchor.as_ref()),
        })
    };
    let instance_head = check(&expected.instance, &walk.at_instance);
    let claimed_head = check(&expected.claimed, &walk.at_claimed);
    failures.extend(head_failure(
        instance_head.as_ref(),
        ["instance_head_missing", "instance_head_mismatch"],
    ));
    failures.extend(head_failure(
        claimed_head.as_ref(),
        ["claimed_head_missing", "claimed_head_mismatch"],
    ));
    Ok(Verification {
        valid: failures.is_empty(),
        checked: walk.checked,
        anchor,
        first_broken: walk.broken,
        head: walk.last,
        unkeyed_until,
        instance_head,
        claimed_head,
        failures,
    })
}
