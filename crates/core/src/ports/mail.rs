//! The mail ports: one-time mail tokens, the outbox (mail written in the
//! same transaction as the change that causes it, delivered later by a
//! worker) and the mailer that delivers one message.

use std::fmt::Debug;

use async_trait::async_trait;
use uuid::Uuid;

use crate::CoreError;
use crate::mail::Mail;

/// What a mail token lets its holder do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenPurpose {
    VerifyEmail,
    PasswordReset,
    EmailChange,
}

impl TokenPurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenPurpose::VerifyEmail => "verify_email",
            TokenPurpose::PasswordReset => "password_reset",
            TokenPurpose::EmailChange => "email_change",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::VerifyEmail, Self::PasswordReset, Self::EmailChange]
            .into_iter()
            .find(|p| p.as_str() == s)
    }
}

/// A mail token as stored: digests only, never the token or the code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailTokenRecord {
    pub id: Uuid,
    /// `None` for a decoy: written when a request sends nothing, so that
    /// both cost the same; it can never be redeemed.
    pub user_id: Option<Uuid>,
    pub purpose: TokenPurpose,
    /// SHA-256 of the link's token.
    pub token_digest: String,
    /// Keyed hash of the typed code.
    pub code_digest: String,
    /// Blind index of the address the mail went to (codes are looked up by it).
    pub address_index: String,
    /// The account state the token was issued against: the email's blind
    /// index, and for a reset also the credential version
    /// (`<auth_version>:<email index>`). A change of it kills the token.
    pub bound_to: String,
    /// An email change: the new address, encrypted, and its blind index.
    pub new_email: Option<(String, String)>,
    pub created_at: i64,
    pub expires_at: i64,
    /// Codes live shorter than links.
    pub code_expires_at: i64,
    pub used_at: Option<i64>,
}

/// A mail for the outbox: the whole [`Mail`] as JSON, encrypted with the
/// field cipher (it holds an address, and may hold a token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxMail {
    pub id: Uuid,
    /// The template's name (not secret: for logs and metrics).
    pub kind: String,
    pub payload_enc: String,
    pub created_at: i64,
}

/// A token and the mail that carries it, written in one transaction.
#[derive(Debug, Clone)]
pub struct IssuedMail {
    pub token: MailTokenRecord,
    pub mails: Vec<OutboxMail>,
}

#[async_trait]
pub trait MailTokenRepo: Send + Sync + Debug {
    /// Stores the token and queues its mails, in one transaction.
    async fn issue(&self, issued: &IssuedMail) -> Result<(), CoreError>;
    async fn token_by_digest(&self, digest: &str) -> Result<Option<MailTokenRecord>, CoreError>;
    /// Unused, non-decoy tokens of `purposes` whose mail went to
    /// `address_index` and whose code is still valid at `now`.
    async fn tokens_for_code(
        &self,
        address_index: &str,
        purposes: &[TokenPurpose],
        now: i64,
    ) -> Result<Vec<MailTokenRecord>, CoreError>;
    /// Spends the token and marks the address verified, in one
    /// transaction — only while the token is unused and the account's
    /// email is still the one it was bound to. `Ok(false)` otherwise.
    async fn confirm_verification(
        &self,
        token: &MailTokenRecord,
        now: i64,
    ) -> Result<bool, CoreError>;
    /// Spends the token, switches the account to the new (verified)
    /// address and queues `notice` to the old one, in one transaction —
    /// only while the token is unused and the email unchanged (`Ok(false)`
    /// otherwise); [`CoreError::Conflict`] when the new address was taken
    /// meanwhile.
    async fn confirm_email_change(
        &self,
        token: &MailTokenRecord,
        notice: &OutboxMail,
        now: i64,
    ) -> Result<bool, CoreError>;
    /// Deletes tokens that expired before `cutoff`; how many.
    async fn prune_tokens(&self, cutoff: i64) -> Result<u64, CoreError>;
}

/// An outbox entry claimed for delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedMail {
    pub id: Uuid,
    pub kind: String,
    pub payload_enc: String,
    pub created_at: i64,
    /// Attempts before this one.
    pub attempts: i64,
}

/// How a claimed entry ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settlement<'a> {
    /// Sent: the entry and its payload are deleted.
    Delivered,
    /// Not sent: released for another attempt at `at` (Unix ms).
    Retry { at: i64, error: &'a str },
    /// No more attempts: the payload is scrubbed, the entry kept as a record.
    GiveUp { at: i64, error: &'a str },
}

#[async_trait]
pub trait OutboxRepo: Send + Sync + Debug {
    /// Queues a mail on its own, for a change whose port has no
    /// transaction to share.
    async fn enqueue(&self, mail: &OutboxMail) -> Result<(), CoreError>;
    /// Claims up to `limit` entries due at `now` — never sent, not given
    /// up, not claimed or with an expired lease — for `lease_ms`, as
    /// `claimer`. Concurrent claimers never get the same entry.
    async fn claim(
        &self,
        claimer: Uuid,
        now: i64,
        lease_ms: i64,
        limit: u32,
    ) -> Result<Vec<ClaimedMail>, CoreError>;
    /// Settles an entry, only while `claimer` still holds it. `Ok(false)`
    /// when its lease passed to another claimer.
    async fn settle(
        &self,
        id: Uuid,
        claimer: Uuid,
        outcome: Settlement<'_>,
    ) -> Result<bool, CoreError>;
}

/// Why a mail was not delivered. The text never holds the message, the
/// recipient or the server's free-form reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MailError {
    /// Worth another try (connection, timeout, 4xx).
    #[error("mail not sent: {0}")]
    Transient(String),
    /// The server refused for good (5xx), or the message cannot be built.
    #[error("mail refused: {0}")]
    Permanent(String),
}

/// Delivers one message now.
#[async_trait]
pub trait Mailer: Send + Sync + Debug {
    async fn send(&self, mail: &Mail) -> Result<(), MailError>;
}
