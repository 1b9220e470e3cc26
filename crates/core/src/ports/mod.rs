//! Ports: the traits that storage, cache and mail adapters implement, and the
//! plain records that cross them. Timestamps at this boundary are Unix
//! milliseconds, the one representation both SQL backends compare alike.

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::stream::BoxStream;
use uuid::Uuid;

use crate::CoreError;
use crate::config::LockoutConfig;
use crate::user::User;

mod files;
mod mail;
mod passkeys;

pub use files::{
    BlobEntry, BlobStore, BlobStream, BlobWriter, FileRecord, FileRepo, UploadQuota, UploadUsage,
};
pub use mail::{
    ClaimedMail, IssuedMail, MailError, MailTokenRecord, MailTokenRepo, Mailer, OutboxMail,
    OutboxRepo, Settlement, TokenPurpose,
};
pub use passkeys::{CeremonyRecord, PasskeyRecord, PasskeyRepo, PasskeyUse, Removal};

/// A dependency whose reachability decides readiness (`GET /ready`).
#[async_trait]
pub trait HealthProbe: Send + Sync + Debug {
    /// Short stable name reported by `/ready`, e.g. `database`.
    fn name(&self) -> &'static str;
    /// Answers `Ok` when the dependency responds.
    async fn check(&self) -> Result<(), CoreError>;
}

/// A user row as stored: PII encrypted, email as a blind index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub id: Uuid,
    pub username: String,
    pub email_enc: String,
    pub full_name_enc: Option<String>,
    pub password_hash: String,
    pub role: String,
    pub is_active: bool,
    pub email_verified: bool,
    pub mfa_enabled: bool,
    pub auth_version: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

/// What creating a user writes.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub record: UserRecord,
    /// Lower-cased username (case-insensitive uniqueness).
    pub username_key: String,
    pub email_index: String,
    /// The verification mail of a registration, stored with the account.
    pub verification: Option<IssuedMail>,
}

#[async_trait]
pub trait UserRepo: Send + Sync + Debug {
    /// Fails with [`CoreError::Conflict`] when the username or email exists.
    async fn create(&self, user: &NewUser) -> Result<(), CoreError>;
    async fn by_id(&self, id: Uuid) -> Result<Option<UserRecord>, CoreError>;
    async fn by_email_index(&self, index: &str) -> Result<Option<UserRecord>, CoreError>;
    async fn by_username_key(&self, key: &str) -> Result<Option<UserRecord>, CoreError>;
    /// Replaces the hash without touching `auth_version` (a re-hash keeps
    /// the same password, so existing tokens stay valid) — only while the
    /// stored hash is still `old` (compare-and-set: a concurrent password
    /// change wins). `Ok(false)` when it was not.
    async fn set_password_hash(
        &self,
        id: Uuid,
        old: &str,
        new: &str,
        now: i64,
    ) -> Result<bool, CoreError>;
    /// Sets a new password, bumps `auth_version` (every earlier access
    /// token dies), revokes every login and every API key of the user — one
    /// transaction, and only if `auth_version` is still the one the caller
    /// checked. `Ok(None)` when it changed meanwhile; else the revoked keys.
    async fn change_password(
        &self,
        change: &PasswordChange,
    ) -> Result<Option<Vec<Uuid>>, CoreError>;
    /// Applies `changes`; `Ok(false)` when the user does not exist,
    /// [`CoreError::Conflict`] when the new email is taken.
    async fn update(&self, id: Uuid, changes: &UserChanges, now: i64) -> Result<bool, CoreError>;
    /// Deletes the user and, by cascade, everything the user owns.
    async fn delete(&self, id: Uuid) -> Result<bool, CoreError>;
    /// Page mode: `limit` users from `offset`, with the total count.
    async fn list_page(
        &self,
        filter: &UserFilter,
        offset: u64,
        limit: u64,
    ) -> Result<(Vec<UserRecord>, u64), CoreError>;
    /// Rewrites encrypted fields of several users in one transaction (key
    /// rotation); rows changed since they were read are left alone. Answers
    /// how many were rewritten.
    async fn set_encrypted(&self, rows: &[Reencrypted]) -> Result<u64, CoreError>;
    /// Every user matching `filter`, in id order, read page by page: memory
    /// stays flat however many there are, and no database connection is
    /// held between pages, so a slow reader holds none. Not a snapshot:
    /// users written meanwhile may or may not appear.
    fn stream(&self, filter: &UserFilter) -> BoxStream<'static, Result<UserRecord, CoreError>>;
    /// Counts for `GET /admin/stats`.
    async fn stats(&self) -> Result<UserStats, CoreError>;
    /// Keyset mode: up to `limit` users with id greater than `after`,
    /// ascending by id.
    async fn list_after(
        &self,
        filter: &UserFilter,
        after: Option<Uuid>,
        limit: u64,
    ) -> Result<Vec<UserRecord>, CoreError>;
}

/// A new password for a user whose credentials the caller just checked.
#[derive(Debug, Clone)]
pub struct PasswordChange {
    pub user_id: Uuid,
    /// The `auth_version` the check saw.
    pub expected_version: i64,
    pub hash: String,
    pub now: i64,
    /// A reset: the mail token spent with the change (unused, or nothing
    /// changes).
    pub spends: Option<Uuid>,
    /// The notice to the account's address, queued with the change.
    pub notice: Option<OutboxMail>,
}

/// A user's encrypted fields re-encrypted under another key, applied only
/// while the stored values are still the ones read (compare-and-set).
#[derive(Debug, Clone)]
pub struct Reencrypted {
    pub id: Uuid,
    pub old_email: String,
    pub old_name: Option<String>,
    pub email: String,
    pub name: Option<String>,
}

/// Fields to change; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct UserChanges {
    /// `Some(None)` clears the name.
    pub full_name_enc: Option<Option<String>>,
    /// New encrypted email and its blind index.
    pub email: Option<(String, String)>,
    pub role: Option<String>,
    pub is_active: Option<bool>,
}

/// User counts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserStats {
    pub total: u64,
    pub active: u64,
    /// (role, count) for every role that has users.
    pub by_role: Vec<(String, u64)>,
}

/// List filters.
#[derive(Debug, Clone, Default)]
pub struct UserFilter {
    /// Lower-cased username prefix.
    pub username_prefix: Option<String>,
    pub role: Option<String>,
    pub is_active: Option<bool>,
}

/// A live login, as its owner sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    pub id: Uuid,
    pub created_at: i64,
    pub last_used_at: i64,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// A login: the family of refresh tokens issued by one sign-in.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub id: Uuid,
    pub user_id: Uuid,
    pub created_at: i64,
    pub expires_at: i64,
    /// When the user proved a factor for this login (Unix ms).
    pub auth_time: i64,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

#[derive(Debug, Clone)]
pub struct NewRefreshToken {
    pub id: Uuid,
    pub session_id: Uuid,
    /// SHA-256 of the token; the token itself is never stored.
    pub digest: String,
    pub created_at: i64,
    pub expires_at: i64,
}

/// A presented refresh token with the state of its session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshLookup {
    pub token_id: Uuid,
    pub session_id: Uuid,
    pub user_id: Uuid,
    pub expires_at: i64,
    /// Set once the token was exchanged: presenting it again is reuse.
    pub used_at: Option<i64>,
    pub session_revoked_at: Option<i64>,
    /// When the user last proved a factor in this login (Unix ms); `None`
    /// for logins started before it was recorded.
    pub auth_time: Option<i64>,
}

/// The next refresh token of a login, made before the login is known (the
/// token it replaces names it).
#[derive(Debug, Clone)]
pub struct NextRefreshToken {
    pub id: Uuid,
    /// SHA-256 of the token; the token itself is never stored.
    pub digest: String,
    pub created_at: i64,
    pub expires_at: i64,
}

/// The login of a refresh token just spent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spent {
    pub session_id: Uuid,
    pub user_id: Uuid,
    /// When the user last proved a factor in this login (Unix ms).
    pub auth_time: Option<i64>,
}

/// A login's stored state, which every request is checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionState {
    pub user_id: Uuid,
    pub revoked: bool,
    pub expires_at: i64,
}

#[async_trait]
pub trait SessionRepo: Send + Sync + Debug {
    /// Creates the session and its first refresh token atomically.
    async fn start(&self, session: &NewSession, token: &NewRefreshToken) -> Result<(), CoreError>;
    async fn find_refresh(&self, digest: &str) -> Result<Option<RefreshLookup>, CoreError>;
    /// The login's stored state, if it exists.
    async fn state(&self, session_id: Uuid) -> Result<Option<SessionState>, CoreError>;
    /// Spends the refresh token with `digest` and stores `next` in its
    /// login, in one transaction — only if the token is unused and
    /// unexpired and its login live at `now`. The conditional update is the
    /// arbiter between concurrent spends of one token (exactly one sees the
    /// row change) and between a spend and a revocation of the login (a
    /// revoked login never gains a token). `None` when refused: the caller
    /// looks the token up to say why.
    async fn spend(
        &self,
        digest: &str,
        next: &NextRefreshToken,
        now: i64,
    ) -> Result<Option<Spent>, CoreError>;
    /// Records a new proof of a factor in a live login of `user_id`. False
    /// if the login is revoked, unknown or another user's.
    async fn set_auth_time(
        &self,
        session_id: Uuid,
        user_id: Uuid,
        auth_time: i64,
    ) -> Result<bool, CoreError>;
    /// Revokes one session (all of its refresh tokens). True if it was live.
    async fn revoke(&self, session_id: Uuid, now: i64) -> Result<bool, CoreError>;
    /// Revokes every session of a user; returns how many were live.
    async fn revoke_all(&self, user_id: Uuid, now: i64) -> Result<u64, CoreError>;
    /// Live (not revoked, not expired) sessions of a user, newest first.
    async fn list_active(&self, user_id: Uuid, now: i64) -> Result<Vec<SessionInfo>, CoreError>;
    /// Live sessions of all users.
    async fn count_active(&self, now: i64) -> Result<u64, CoreError>;
    /// Live sessions of all users, counted by their user's role (roles
    /// without any left out).
    async fn count_active_by_role(&self, now: i64) -> Result<Vec<(String, u64)>, CoreError>;
    /// The owner of a session, if it exists.
    async fn owner(&self, session_id: Uuid) -> Result<Option<Uuid>, CoreError>;
}

/// Access tokens refused before their expiry (logout).
#[async_trait]
pub trait TokenDenylist: Send + Sync + Debug {
    /// Denies `jti` until `expires_at` (Unix seconds), after which the token
    /// is dead anyway and the entry may be dropped.
    async fn deny(&self, jti: &str, expires_at: i64) -> Result<(), CoreError>;
    async fn is_denied(&self, jti: &str) -> Result<bool, CoreError>;
    /// True when any of `keys` is denied (one round trip for shared stores).
    async fn any_denied(&self, keys: &[&str]) -> Result<bool, CoreError> {
        for key in keys {
            if self.is_denied(key).await? {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

/// The answer to a reservation of one secret check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reservation {
    /// Check the secret, then report [`LoginThrottle::fail`] or
    /// [`LoginThrottle::release`] (or [`LoginThrottle::reset`]).
    Granted,
    /// Locked, or every remaining attempt of the window is in flight: try
    /// again after this long.
    Refused(Duration),
}

/// Failed proofs of a secret per account key (lockout). Check and count are
/// one atomic step: a check of a secret is *reserved* before it runs, so
/// however many arrive at once, on however many instances, at most
/// `max_attempts` are ever checked per key and window.
#[async_trait]
pub trait LoginThrottle: Send + Sync + Debug {
    /// Reserves one check for `key` at `now` (Unix ms): refused while the
    /// key is locked or while its failures and in-flight checks fill the
    /// window.
    async fn reserve(
        &self,
        key: &str,
        now: i64,
        policy: LockoutConfig,
    ) -> Result<Reservation, CoreError>;
    /// The reserved check failed: it stays counted. Returns the lock's
    /// length if this failure locks `key`.
    async fn fail(
        &self,
        key: &str,
        now: i64,
        policy: LockoutConfig,
    ) -> Result<Option<Duration>, CoreError>;
    /// The reserved check succeeded without completing a login (a second
    /// factor is still due, or it guarded another action): it is given back,
    /// the failures stay.
    async fn release(&self, key: &str) -> Result<(), CoreError>;
    /// A completed login clears the count.
    async fn reset(&self, key: &str) -> Result<(), CoreError>;
    /// Keys locked at `now`.
    async fn locked_count(&self, now: i64) -> Result<u64, CoreError>;
}

/// Hot reads: users by id (the per-request current-state check) and user
/// list pages.
#[async_trait]
pub trait UserCache: Send + Sync + Debug {
    async fn get(&self, id: Uuid) -> Option<Arc<User>>;
    /// The count of invalidations seen so far. Read it *before* loading
    /// what you will put: a put whose generation is no longer current is
    /// dropped, so a value read before a concurrent write is never cached
    /// after that write's invalidation.
    fn generation(&self) -> u64;
    async fn put(&self, user: Arc<User>, generation: u64);
    /// Drops `id` and every cached list (any write can change any list),
    /// here and, for shared caches, on every instance.
    async fn invalidate(&self, id: Uuid);
    async fn get_list(&self, key: &str) -> Option<Arc<crate::service::UserPage>>;
    async fn put_list(&self, key: String, page: Arc<crate::service::UserPage>, generation: u64);
}

/// The encrypted active and pending TOTP secrets of a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TotpSecrets<'a> {
    pub secret: Option<&'a str>,
    pub pending: Option<&'a str>,
}

/// A user's second-factor state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MfaState {
    pub secret_enc: Option<String>,
    pub pending_enc: Option<String>,
    pub last_step: Option<i64>,
}

#[async_trait]
pub trait MfaRepo: Send + Sync + Debug {
    async fn mfa_state(&self, user_id: Uuid) -> Result<Option<MfaState>, CoreError>;
    /// Stores the secret offered by setup (not yet active).
    async fn set_pending(&self, user_id: Uuid, pending_enc: &str) -> Result<(), CoreError>;
    /// Activates the pending secret at `step` and replaces the backup codes,
    /// in one transaction.
    async fn enable(
        &self,
        user_id: Uuid,
        secret_enc: &str,
        step: i64,
        code_hashes: &[String],
        now: i64,
    ) -> Result<(), CoreError>;
    /// Turns 2FA off and deletes secret and backup codes.
    async fn disable(&self, user_id: Uuid, now: i64) -> Result<(), CoreError>;
    /// Records `step` as used; false when it (or a later one) already was,
    /// so each code is accepted at most once, even concurrently.
    async fn accept_step(&self, user_id: Uuid, step: i64) -> Result<bool, CoreError>;
    /// Rewrites the encrypted TOTP secrets (key rotation), only while they
    /// are still `old` (a concurrent enable or disable wins). `Ok(false)`
    /// when they changed.
    async fn set_totp_encrypted(
        &self,
        user_id: Uuid,
        old: TotpSecrets<'_>,
        new: TotpSecrets<'_>,
    ) -> Result<bool, CoreError>;
    /// Spends a backup code; false when unknown or already used.
    async fn use_backup_code(&self, user_id: Uuid, hash: &str, now: i64)
    -> Result<bool, CoreError>;
}

/// An API key as stored (never the key itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyRecord {
    pub id: Uuid,
    pub user_id: Uuid,
    pub name: String,
    pub prefix: String,
    pub key_hash: String,
    /// Space-separated permission names.
    pub scopes: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

#[async_trait]
pub trait ApiKeyRepo: Send + Sync + Debug {
    async fn create_key(&self, key: &ApiKeyRecord) -> Result<(), CoreError>;
    async fn keys_of(&self, user_id: Uuid) -> Result<Vec<ApiKeyRecord>, CoreError>;
    async fn key_by_prefix(&self, prefix: &str) -> Result<Option<ApiKeyRecord>, CoreError>;
    /// Replaces prefix and hash of a live key of `user_id`; false if none.
    async fn rotate_key(
        &self,
        id: Uuid,
        user_id: Uuid,
        prefix: &str,
        key_hash: &str,
    ) -> Result<bool, CoreError>;
    async fn revoke_key(&self, id: Uuid, user_id: Uuid, now: i64) -> Result<bool, CoreError>;
    async fn touch_key(&self, id: Uuid, now: i64) -> Result<(), CoreError>;
}
