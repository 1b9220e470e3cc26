//! Security events: what happened, to whom, from where. Sinks store or log
//! them; none ever receives a password, token or key.

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::CoreError;
use crate::clock::Clock;

/// Event names of the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    UserRegistered,
    LoginSucceeded,
    LoginFailed,
    AccountLocked,
    TokenRefreshed,
    RefreshTokenReused,
    Logout,
    PermissionDenied,
    PasswordChanged,
    UserCreated,
    UserUpdated,
    RoleChanged,
    UserDeactivated,
    UserDeleted,
    SessionRevoked,
    DataExported,
    RateLimited,
    FileUploaded,
    FileDeleted,
    MfaFailed,
    MfaEnabled,
    MfaDisabled,
    ApiKeyCreated,
    ApiKeyRotated,
    ApiKeyRevoked,
    ApiKeyUsed,
    PasswordReset,
    EmailVerified,
    EmailChanged,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::UserRegistered => "user_registered",
            EventKind::LoginSucceeded => "login_succeeded",
            EventKind::LoginFailed => "login_failed",
            EventKind::AccountLocked => "account_locked",
            EventKind::TokenRefreshed => "token_refreshed",
            EventKind::RefreshTokenReused => "refresh_token_reused",
            EventKind::Logout => "logout",
            EventKind::PermissionDenied => "permission_denied",
            EventKind::PasswordChanged => "password_changed",
            EventKind::UserCreated => "user_created",
            EventKind::UserUpdated => "user_updated",
            EventKind::RoleChanged => "role_changed",
            EventKind::UserDeactivated => "user_deactivated",
            EventKind::UserDeleted => "user_deleted",
            EventKind::SessionRevoked => "session_revoked",
            EventKind::DataExported => "data_exported",
            EventKind::RateLimited => "rate_limited",
            EventKind::FileUploaded => "file_uploaded",
            EventKind::FileDeleted => "file_deleted",
            EventKind::MfaFailed => "mfa_failed",
            EventKind::MfaEnabled => "mfa_enabled",
            EventKind::MfaDisabled => "mfa_disabled",
            EventKind::ApiKeyCreated => "api_key_created",
            EventKind::ApiKeyRotated => "api_key_rotated",
            EventKind::ApiKeyRevoked => "api_key_revoked",
            EventKind::ApiKeyUsed => "api_key_used",
            EventKind::PasswordReset => "password_reset",
            EventKind::EmailVerified => "email_verified",
            EventKind::EmailChanged => "email_changed",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
        }
    }
}

/// Where a request came from, for events and sessions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestMeta {
    pub ip: Option<String>,
    /// Truncated to [`USER_AGENT_MAX`] characters.
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
}

pub const USER_AGENT_MAX: usize = 256;

impl RequestMeta {
    pub fn new(ip: Option<String>, user_agent: Option<&str>, request_id: Option<String>) -> Self {
        Self {
            ip,
            user_agent: user_agent.map(|ua| ua.chars().take(USER_AGENT_MAX).collect()),
            request_id,
        }
    }
}

#[derive(Debug, Clone)]
pub struct AuditEvent {
    pub kind: EventKind,
    pub outcome: Outcome,
    pub actor_id: Option<Uuid>,
    pub target_id: Option<Uuid>,
    pub meta: RequestMeta,
    /// Extra facts (masked emails, reasons); never secrets.
    pub details: Value,
}

impl AuditEvent {
    pub fn new(kind: EventKind, outcome: Outcome, meta: &RequestMeta) -> Self {
        Self {
            kind,
            outcome,
            actor_id: None,
            target_id: None,
            meta: meta.clone(),
            details: Value::Null,
        }
    }

    pub fn actor(mut self, id: Uuid) -> Self {
        self.actor_id = Some(id);
        self
    }

    pub fn target(mut self, id: Uuid) -> Self {
        self.target_id = Some(id);
        self
    }

    pub fn details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }
}

/// Receives security events. Recording must not fail the request that
/// caused it; sinks report their own failures in the log.
#[async_trait]
pub trait AuditSink: Send + Sync + Debug {
    async fn record(&self, event: AuditEvent);
}

/// Writes each event as a structured log line (target `gatehouse::security`).
#[derive(Debug, Default, Clone, Copy)]
pub struct LogAuditSink;

#[async_trait]
impl AuditSink for LogAuditSink {
    async fn record(&self, e: AuditEvent) {
        tracing::info!(
            target: "gatehouse::security",
            event = e.kind.as_str(),
            outcome = e.outcome.as_str(),
            actor_id = e.actor_id.map(|id| id.to_string()),
            target_id = e.target_id.map(|id| id.to_string()),
            ip = e.meta.ip,
            user_agent = e.meta.user_agent,
            request_id = e.meta.request_id,
            details = %e.details,
            "security event"
        );
    }
}

/// `prev_hash` of the first entry ever written.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

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
}

/// SHA-256 over the previous hash and every field, each length-prefixed so
/// no two different entries serialise alike.
pub fn entry_hash(prev_hash: &str, seq: i64, d: &AuditDraft) -> String {
    let mut h = Sha256::new();
    let mut field = |bytes: &[u8]| {
        h.update((bytes.len() as u64).to_be_bytes());
        h.update(bytes);
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
    hex::encode(h.finalize())
}

impl AuditEntry {
    fn draft(&self) -> AuditDraft {
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

    /// True when the stored hash is the hash of the stored fields.
    pub fn is_intact(&self) -> bool {
        entry_hash(&self.prev_hash, self.seq, &self.draft()) == self.hash
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

/// Where the chain starts after pruning: the last pruned entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Anchor {
    pub seq: i64,
    pub hash: String,
}

/// Storage of the audit trail.
#[async_trait]
pub trait AuditRepo: Send + Sync + Debug {
    /// Appends under the store's write serialisation; returns the entry.
    async fn append(&self, draft: &AuditDraft) -> Result<AuditEntry, CoreError>;
    async fn page(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>, CoreError>;
    /// Up to `limit` entries with `seq > after`, ascending.
    async fn chain_after(&self, after: i64, limit: u64) -> Result<Vec<AuditEntry>, CoreError>;
    async fn anchor(&self) -> Result<Option<Anchor>, CoreError>;
    /// Deletes entries older than `cutoff` (ms) and records the last deleted
    /// one as the anchor, atomically. Returns how many were deleted.
    async fn prune_before(&self, cutoff: i64) -> Result<u64, CoreError>;
    async fn count_since(&self, event: &str, since: i64) -> Result<u64, CoreError>;
}

/// Result of walking the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Verification {
    pub valid: bool,
    pub checked: u64,
    pub anchor: Option<Anchor>,
    pub first_broken: Option<BrokenLink>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BrokenLink {
    pub seq: i64,
    pub id: Uuid,
    pub reason: &'static str,
}

/// Walks the whole chain in batches and names the first broken link.
pub async fn verify_chain(repo: &dyn AuditRepo) -> Result<Verification, CoreError> {
    const BATCH: u64 = 1000;
    let anchor = repo.anchor().await?;
    let (mut expected_seq, mut expected_prev) = match &anchor {
        Some(a) => (a.seq + 1, a.hash.clone()),
        None => (1, GENESIS_HASH.to_owned()),
    };
    let mut checked = 0u64;
    loop {
        let batch = repo.chain_after(expected_seq - 1, BATCH).await?;
        let done = (batch.len() as u64) < BATCH;
        for entry in batch {
            let reason = if entry.seq != expected_seq {
                Some("sequence gap (an entry was removed)")
            } else if entry.prev_hash != expected_prev {
                Some("link to the previous entry does not match")
            } else if !entry.is_intact() {
                Some("entry content does not match its hash")
            } else {
                None
            };
            if let Some(reason) = reason {
                return Ok(Verification {
                    valid: false,
                    checked,
                    anchor,
                    first_broken: Some(BrokenLink {
                        seq: entry.seq,
                        id: entry.id,
                        reason,
                    }),
                });
            }
            checked += 1;
            expected_seq = entry.seq + 1;
            expected_prev = entry.hash;
        }
        if done {
            break;
        }
    }
    Ok(Verification {
        valid: true,
        checked,
        anchor,
        first_broken: None,
    })
}

/// Logs every event and appends it to the stored, hash-chained trail.
#[derive(Debug, Clone)]
pub struct StoredAuditSink {
    repo: Arc<dyn AuditRepo>,
    clock: Arc<dyn Clock>,
}

impl StoredAuditSink {
    pub fn new(repo: Arc<dyn AuditRepo>, clock: Arc<dyn Clock>) -> Self {
        Self { repo, clock }
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
        if let Err(err) = self.repo.append(&draft).await {
            tracing::error!(
                target: "gatehouse::security",
                event = %draft.event,
                error = %err,
                "audit entry could not be stored"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft(n: u8) -> AuditDraft {
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
}
