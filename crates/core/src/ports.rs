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
}

#[async_trait]
pub trait UserRepo: Send + Sync + Debug {
    /// Fails with [`CoreError::Conflict`] when the username or email exists.
    async fn create(&self, user: &NewUser) -> Result<(), CoreError>;
    async fn by_id(&self, id: Uuid) -> Result<Option<UserRecord>, CoreError>;
    async fn by_email_index(&self, index: &str) -> Result<Option<UserRecord>, CoreError>;
    async fn by_username_key(&self, key: &str) -> Result<Option<UserRecord>, CoreError>;
    /// Replaces the hash without touching `auth_version` (a re-hash keeps
    /// the same password, so existing tokens stay valid).
    async fn set_password_hash(&self, id: Uuid, hash: &str, now: i64) -> Result<(), CoreError>;
    /// Sets a new password and bumps `auth_version`, which kills every
    /// access token issued before.
    async fn change_password(&self, id: Uuid, hash: &str, now: i64) -> Result<(), CoreError>;
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
    /// rotation): (id, email_enc, full_name_enc).
    async fn set_encrypted(&self, rows: &[(Uuid, String, Option<String>)])
    -> Result<(), CoreError>;
    /// Every user matching `filter`, in id order, read from a database
    /// cursor: memory stays flat however many there are.
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
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rotation {
    Rotated,
    /// Another request exchanged the token first: treat as reuse.
    AlreadyUsed,
}

#[async_trait]
pub trait SessionRepo: Send + Sync + Debug {
    /// Creates the session and its first refresh token atomically.
    async fn start(&self, session: &NewSession, token: &NewRefreshToken) -> Result<(), CoreError>;
    async fn find_refresh(&self, digest: &str) -> Result<Option<RefreshLookup>, CoreError>;
    /// Marks `old` used and stores `next` in one transaction, only if `old`
    /// was still unused.
    async fn rotate(
        &self,
        old: Uuid,
        next: &NewRefreshToken,
        now: i64,
    ) -> Result<Rotation, CoreError>;
    /// Revokes one session (all of its refresh tokens). True if it was live.
    async fn revoke(&self, session_id: Uuid, now: i64) -> Result<bool, CoreError>;
    /// Revokes every session of a user; returns how many were live.
    async fn revoke_all(&self, user_id: Uuid, now: i64) -> Result<u64, CoreError>;
    /// Live (not revoked, not expired) sessions of a user, newest first.
    async fn list_active(&self, user_id: Uuid, now: i64) -> Result<Vec<SessionInfo>, CoreError>;
    /// Live sessions of all users.
    async fn count_active(&self, now: i64) -> Result<u64, CoreError>;
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
}

/// Consecutive login failures per account key (lockout).
#[async_trait]
pub trait LoginThrottle: Send + Sync + Debug {
    /// Time left on the lock, if `key` is locked at `now` (Unix ms).
    async fn locked_for(&self, key: &str, now: i64) -> Result<Option<Duration>, CoreError>;
    /// Counts a failure; returns the lock's length if this one locks `key`.
    async fn record_failure(
        &self,
        key: &str,
        now: i64,
        policy: LockoutConfig,
    ) -> Result<Option<Duration>, CoreError>;
    /// A success clears the count.
    async fn reset(&self, key: &str) -> Result<(), CoreError>;
    /// Keys locked at `now`.
    async fn locked_count(&self, now: i64) -> Result<u64, CoreError>;
}

/// Hot reads: users by id (the per-request current-state check) and user
/// list pages.
#[async_trait]
pub trait UserCache: Send + Sync + Debug {
    async fn get(&self, id: Uuid) -> Option<Arc<User>>;
    async fn put(&self, user: Arc<User>);
    /// Drops `id` and every cached list (any write can change any list),
    /// here and, for shared caches, on every instance.
    async fn invalidate(&self, id: Uuid);
    async fn get_list(&self, key: &str) -> Option<Arc<crate::service::UserPage>>;
    async fn put_list(&self, key: String, page: Arc<crate::service::UserPage>);
}
