//! Security events: what happened, to whom, from where. Sinks store or log
//! them; none ever receives a password, token or key.

mod chain;
mod trail;
mod verify;

use std::fmt::Debug;

use async_trait::async_trait;
use serde_json::Value;
use uuid::Uuid;

pub use chain::{
    Anchor, AuditDraft, AuditEntry, AuditQuery, AuditRepo, ChainKey, ChainPoint, GENESIS_HASH,
    HashScheme, entry_hash,
};
pub use trail::{AuditTrail, CHECKPOINT_EVERY, StoredAuditSink};
pub use verify::{BrokenLink, Expected, HeadCheck, HeadStatus, Verification, verify_chain};

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
    PasskeyAdded,
    PasskeyRemoved,
    PasskeyLogin,
    Reauthenticated,
    ReauthenticationFailed,
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
            EventKind::PasskeyAdded => "passkey_added",
            EventKind::PasskeyRemoved => "passkey_removed",
            EventKind::PasskeyLogin => "passkey_login",
            EventKind::Reauthenticated => "reauthenticated",
            EventKind::ReauthenticationFailed => "reauthentication_failed",
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

#[cfg(test)]
mod tests;
