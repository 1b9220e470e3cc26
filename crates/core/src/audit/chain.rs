//! The hash chain of the stored trail: entries, how each is sealed and the
//! storage port. New entries are sealed with HMAC-SHA256 under
//! `AUDIT_CHAIN_KEY`, so rewriting a row needs the key, not just database
//! access; entries written before the key existed keep their plain SHA-256.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use crate::CoreError;
use crate::config::{Config, DataKey};

/// `prev_hash` of the first entry ever written.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// How an entry's `hash` was computed, stored with each entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum HashScheme {
    /// Plain SHA-256: entries written before `AUDIT_CHAIN_KEY` existed.
    Sha256,
    /// HMAC-SHA256 under `AUDIT_CHAIN_KEY`: every entry written since.
    HmacSha256,
}

impl HashScheme {
    /// The number stored in the `hash_scheme` column.
    pub fn code(self) -> i16 {
        match self {
            HashScheme::Sha256 => 1,
            HashScheme::HmacSha256 => 2,
        }
    }

    pub fn from_code(code: i16) -> Option<Self> {
        match code {
            1 => Some(HashScheme::Sha256),
            2 => Some(HashScheme::HmacSha256),
            _ => None,
        }
    }
}

/// An entry ready to append; the store assigns `seq`, `prev_hash`, `hash`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditDraft {
    pub id: Uuid,
    /// Unix milliseconds.
    pub at: i64,
    pub event: String,
    pub outcome: String,
    pub actor_id: Option<Uuid>,
    pub target_id: Option<Uuid>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    /// JSON text.
    pub details: String,
}

/// A stored entry, as `GET /admin/audit` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    pub id: Uuid,
    pub seq: i64,
    pub at: i64,
    pub event: String,
    pub outcome: String,
    pub actor_id: Option<Uuid>,
    pub target_id: Option<Uuid>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    pub details: String,
    pub prev_hash: String,
    pub hash: String,
    /// [`HashScheme::code`] as stored; an unknown number never verifies.
    pub scheme: i16,
}

/// Feeds the previous hash, the sequence and every field, each
/// length-prefixed so no two different entries serialise alike.
fn feed_entry(prev_hash: &str, seq: i64, d: &AuditDraft, mut feed: impl FnMut(&[u8])) {
    let mut field = |bytes: &[u8]| {
        feed(&(bytes.len() as u64).to_be_bytes());
        feed(bytes);
    };
    let opt_id = |id: Option<Uuid>| id.map(|i| i.to_string()).unwrap_or_default();
    field(prev_hash.as_bytes());
    field(&seq.to_be_bytes());
    field(d.id.to_string().as_bytes());
    field(&d.at.to_be_bytes());
    field(d.event.as_bytes());
    field(d.outcome.as_bytes());
    field(opt_id(d.actor_id).as_bytes());
    field(opt_id(d.target_id).as_bytes());
    field(d.ip.as_deref().unwrap_or_default().as_bytes());
    field(d.user_agent.as_deref().unwrap_or_default().as_bytes());
    field(d.request_id.as_deref().unwrap_or_default().as_bytes());
    field(d.details.as_bytes());
}

/// The unkeyed SHA-256 of an entry ([`HashScheme::Sha256`]). Anyone can
/// recompute it: it only verifies entries written before the key existed.
pub fn entry_hash(prev_hash: &str, seq: i64, d: &AuditDraft) -> String {
    let mut h = Sha256::new();
    feed_entry(prev_hash, seq, d, |b| h.update(b));
    hex::encode(h.finalize())
}

/// Hex strings compared in constant time.
pub(crate) fn same_hash(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// `AUDIT_CHAIN_KEY`: seals entries and the pruning anchor. Never rotated:
/// an entry verifies only under the key that sealed it.
#[derive(Clone)]
pub struct ChainKey(Arc<DataKey>);

impl fmt::Debug for ChainKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ChainKey(..)")
    }
}

impl ChainKey {
    pub fn new(key: Arc<DataKey>) -> Self {
        Self(key)
    }

    pub fn from_config(config: &Config) -> Result<Self, CoreError> {
        config
            .audit_chain_key
            .clone()
            .map(Self)
            .ok_or_else(|| CoreError::internal("AUDIT_CHAIN_KEY is not configured"))
    }

    /// HMAC-SHA256 over a label (entries and anchors never collide) and
    /// whatever `body` feeds.
    fn mac(&self, label: &[u8], body: impl FnOnce(&mut Hmac<Sha256>)) -> String {
        // `new_from_slice` accepts any key length for HMAC.
        let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(self.0.bytes()) else {
            return String::new();
        };
        mac.update(&(label.len() as u64).to_be_bytes());
        mac.update(label);
        body(&mut mac);
        hex::encode(mac.finalize().into_bytes())
    }

    /// The keyed hash of an entry ([`HashScheme::HmacSha256`]).
    pub fn seal(&self, prev_hash: &str, seq: i64, d: &AuditDraft) -> String {
        self.mac(b"entry", |mac| {
            feed_entry(prev_hash, seq, d, |b| mac.update(b));
        })
    }

    /// The seal of a pruning anchor: only the key's holder can move the
    /// start of the chain.
    pub fn seal_anchor(&self, seq: i64, hash: &str) -> String {
        self.mac(b"anchor", |mac| {
            mac.update(&seq.to_be_bytes());
            mac.update(hash.as_bytes());
        })
    }
}

impl AuditDraft {
    /// The entry this draft becomes at `seq`, linked to `prev_hash` and
    /// sealed (HMAC-SHA-256) as `hash`.
    pub fn entry(&self, seq: i64, prev_hash: String, hash: String) -> AuditEntry {
        AuditEntry {
            id: self.id,
            seq,
            at: self.at,
            event: self.event.clone(),
            outcome: self.outcome.clone(),
            actor_id: self.actor_id,
            target_id: self.target_id,
            ip: self.ip.clone(),
            user_agent: self.user_agent.clone(),
            request_id: self.request_id.clone(),
            details: self.details.clone(),
            prev_hash,
            hash,
            scheme: HashScheme::HmacSha256.code(),
        }
    }
}

impl AuditEntry {
    pub fn draft(&self) -> AuditDraft {
        AuditDraft {
            id: self.id,
            at: self.at,
            event: self.event.clone(),
            outcome: self.outcome.clone(),
            actor_id: self.actor_id,
            target_id: self.target_id,
            ip: self.ip.clone(),
            user_agent: self.user_agent.clone(),
            request_id: self.request_id.clone(),
            details: self.details.clone(),
        }
    }

    /// True when the stored hash is the hash of the stored fields under the
    /// entry's scheme. Whether that scheme is allowed at this place in the
    /// chain is the walk's business.
    pub fn is_intact(&self, key: &ChainKey) -> bool {
        let expected = match HashScheme::from_code(self.scheme) {
            Some(HashScheme::Sha256) => entry_hash(&self.prev_hash, self.seq, &self.draft()),
            Some(HashScheme::HmacSha256) => key.seal(&self.prev_hash, self.seq, &self.draft()),
            None => return false,
        };
        same_hash(&expected, &self.hash)
    }
}

/// One entry of the chain, by sequence and hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChainPoint {
    pub seq: i64,
    pub hash: String,
}

/// Where the chain starts after pruning: the last pruned entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Anchor {
    pub seq: i64,
    pub hash: String,
    /// [`ChainKey::seal_anchor`]; `None` for anchors recorded before the key.
    #[serde(skip)]
    pub seal: Option<String>,
}

impl Anchor {
    /// True when the anchor was recorded by a holder of the key, or (unsealed)
    /// lies in the part of the chain written before the key existed.
    pub fn is_sealed_by(&self, key: &ChainKey, unkeyed_until: i64) -> bool {
        match &self.seal {
            Some(seal) => same_hash(&key.seal_anchor(self.seq, &self.hash), seal),
            None => self.seq <= unkeyed_until,
        }
    }
}

/// Filters of `GET /admin/audit` (newest first).
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub event: Option<String>,
    pub user_id: Option<Uuid>,
    /// Unix milliseconds.
    pub since: Option<i64>,
    /// Entries with a smaller `seq` than this (the cursor).
    pub before_seq: Option<i64>,
    pub limit: u64,
}

/// Storage of the audit trail.
#[async_trait]
pub trait AuditRepo: Send + Sync + fmt::Debug {
    /// Appends under the store's write serialisation, sealed with `key`;
    /// returns the entry.
    async fn append(&self, draft: &AuditDraft, key: &ChainKey) -> Result<AuditEntry, CoreError>;
    /// Appends `drafts` in order, as consecutive entries, all or none:
    /// under one write lock and one commit (group commit).
    async fn append_batch(
        &self,
        drafts: &[AuditDraft],
        key: &ChainKey,
    ) -> Result<Vec<AuditEntry>, CoreError>;
    async fn page(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>, CoreError>;
    /// Up to `limit` entries with `seq > after`, ascending.
    async fn chain_after(&self, after: i64, limit: u64) -> Result<Vec<AuditEntry>, CoreError>;
    async fn anchor(&self) -> Result<Option<Anchor>, CoreError>;
    /// The highest sequence that may carry the unkeyed scheme: the last
    /// entry that existed when the keyed chain was introduced (0 if none,
    /// and when the record is missing).
    async fn unkeyed_until(&self) -> Result<i64, CoreError>;
    /// Deletes entries older than `cutoff` (ms) and records the last deleted
    /// one as the anchor, sealed with `key`, atomically. Returns how many
    /// were deleted.
    async fn prune_before(&self, cutoff: i64, key: &ChainKey) -> Result<u64, CoreError>;
    async fn count_since(&self, event: &str, since: i64) -> Result<u64, CoreError>;
    /// Entries of `event` at or after `since` (ms), counted per hour since
    /// then: `(hour, count)` with hour 0 starting at `since`, ascending,
    /// hours without entries left out.
    async fn count_per_hour(&self, event: &str, since: i64) -> Result<Vec<(i64, u64)>, CoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn draft(n: u8) -> AuditDraft {
        AuditDraft {
            id: Uuid::from_bytes([n; 16]),
            at: 1_700_000_000_000 + i64::from(n),
            event: "login_failed".into(),
            outcome: "failure".into(),
            actor_id: None,
            target_id: Some(Uuid::from_bytes([9; 16])),
            ip: Some("127.0.0.1".into()),
            user_agent: None,
            request_id: Some("r".into()),
            details: "{}".into(),
        }
    }

    fn key(byte: u8) -> ChainKey {
        ChainKey::new(Arc::new(DataKey::new("audit", [byte; 32])))
    }

    #[test]
    fn hashes_cover_every_field_and_the_link() {
        let base = entry_hash(GENESIS_HASH, 1, &draft(1));
        assert_eq!(base.len(), 64);
        assert_eq!(base, entry_hash(GENESIS_HASH, 1, &draft(1)));
        assert_ne!(base, entry_hash(GENESIS_HASH, 2, &draft(1)));
        assert_ne!(base, entry_hash(&"1".repeat(64), 1, &draft(1)));
        let mut changed = draft(1);
        changed.details = r#"{"x":1}"#.into();
        assert_ne!(base, entry_hash(GENESIS_HASH, 1, &changed));
        // Moving bytes between fields changes the hash (length prefixes).
        let mut a = draft(1);
        a.ip = Some("ab".into());
        a.user_agent = Some("c".into());
        let mut b = draft(1);
        b.ip = Some("a".into());
        b.user_agent = Some("bc".into());
        assert_ne!(
            entry_hash(GENESIS_HASH, 1, &a),
            entry_hash(GENESIS_HASH, 1, &b)
        );
    }

    #[test]
    fn seals_depend_on_the_key_and_differ_from_the_plain_hash() {
        let sealed = key(1).seal(GENESIS_HASH, 1, &draft(1));
        assert_eq!(sealed.len(), 64);
        assert_eq!(sealed, key(1).seal(GENESIS_HASH, 1, &draft(1)));
        assert_ne!(sealed, key(2).seal(GENESIS_HASH, 1, &draft(1)));
        assert_ne!(sealed, entry_hash(GENESIS_HASH, 1, &draft(1)));
        assert_ne!(sealed, key(1).seal(GENESIS_HASH, 1, &draft(2)));
        // An anchor seal is never an entry seal.
        assert_ne!(key(1).seal_anchor(1, GENESIS_HASH), sealed);
    }

    #[test]
    fn an_entry_is_intact_only_under_its_own_scheme_and_key() {
        let d = draft(3);
        let mut entry = d.entry(7, GENESIS_HASH.into(), key(1).seal(GENESIS_HASH, 7, &d));
        assert!(entry.is_intact(&key(1)));
        assert!(!entry.is_intact(&key(2)));
        // Rewritten and re-hashed without the key: plain SHA-256 under the
        // keyed scheme does not verify.
        entry.details = r#"{"forged":true}"#.into();
        entry.hash = entry_hash(GENESIS_HASH, 7, &entry.draft());
        assert!(!entry.is_intact(&key(1)));
        // As a legacy entry it is intact; the walk decides whether a legacy
        // entry may stand at this sequence.
        entry.scheme = HashScheme::Sha256.code();
        assert!(entry.is_intact(&key(1)));
        entry.scheme = 9;
        assert!(!entry.is_intact(&key(1)));
    }

    #[test]
    fn anchors_need_the_key_unless_they_predate_it() {
        let k = key(1);
        let mut anchor = Anchor {
            seq: 10,
            hash: "a".repeat(64),
            seal: Some(k.seal_anchor(10, &"a".repeat(64))),
        };
        assert!(anchor.is_sealed_by(&k, 0));
        assert!(!anchor.is_sealed_by(&key(2), 0));
        anchor.seq = 11;
        assert!(!anchor.is_sealed_by(&k, 0));
        anchor.seal = None;
        assert!(!anchor.is_sealed_by(&k, 10));
        assert!(anchor.is_sealed_by(&k, 11));
    }
}
