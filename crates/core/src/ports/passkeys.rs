//! Passkeys as stored, and the server-side state of WebAuthn ceremonies.

use std::fmt::Debug;

use async_trait::async_trait;
use uuid::Uuid;

use crate::CoreError;

/// A registered passkey. `credential` is the verifier's own record (public
/// key, counter, flags) as JSON, sealed by `mac` to its owner and
/// credential id: a row written or moved by hand does not verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasskeyRecord {
    pub id: Uuid,
    pub user_id: Uuid,
    /// The credential id, base64url without padding.
    pub credential_id: String,
    pub name: String,
    pub credential: String,
    pub mac: String,
    /// The authenticator's signature counter; 0 when it keeps none.
    pub sign_count: i64,
    pub backup_eligible: bool,
    pub backed_up: bool,
    /// Comma-separated transports the browser reported (`usb`, `internal`…).
    pub transports: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

/// What a successful assertion changes on the passkey.
#[derive(Debug, Clone)]
pub struct PasskeyUse<'a> {
    pub id: Uuid,
    /// The counter the assertion carried; 0 when the authenticator keeps none.
    pub sign_count: i64,
    pub backed_up: bool,
    pub credential: &'a str,
    pub mac: &'a str,
    pub now: i64,
}

/// Why a removal was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    Removed,
    NotFound,
    /// The account has no password and this is its last passkey.
    LastFactor,
}

/// The state of a ceremony between its two requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CeremonyRecord {
    /// SHA-256 of the handle given to the client (the handle is never stored).
    pub digest: String,
    pub purpose: String,
    /// The account it is for, when known when it began.
    pub user_id: Option<Uuid>,
    /// What else it is bound to: the login (`sid`) or the MFA token.
    pub bound_to: Option<String>,
    /// The verifier's state as JSON, sealed by `mac`.
    pub state: String,
    pub mac: String,
    pub expires_at: i64,
}

#[async_trait]
pub trait PasskeyRepo: Send + Sync + Debug {
    /// Fails with [`CoreError::Conflict`] when the credential id is
    /// registered already (to anyone).
    async fn add_passkey(&self, record: &PasskeyRecord) -> Result<(), CoreError>;
    async fn passkeys_of(&self, user_id: Uuid) -> Result<Vec<PasskeyRecord>, CoreError>;
    async fn passkey_by_credential(
        &self,
        credential_id: &str,
    ) -> Result<Option<PasskeyRecord>, CoreError>;
    /// Records a use, only when its counter moves forward (or both the stored
    /// and the new counter are 0): `Ok(false)` when it does not, which is how
    /// a cloned authenticator shows, also when two uses race.
    async fn record_passkey_use(&self, used: &PasskeyUse<'_>) -> Result<bool, CoreError>;
    /// `Ok(false)` when the user has no such passkey.
    async fn rename_passkey(&self, user_id: Uuid, id: Uuid, name: &str) -> Result<bool, CoreError>;
    /// Removes a passkey, in one statement with the check that the account
    /// keeps a way to sign in (a password, or another passkey).
    async fn remove_passkey(&self, user_id: Uuid, id: Uuid) -> Result<Removal, CoreError>;

    /// Stores a ceremony's state (and drops expired ones).
    async fn put_ceremony(&self, ceremony: &CeremonyRecord, now: i64) -> Result<(), CoreError>;
    /// Takes a ceremony: returned once, and only before it expires.
    async fn take_ceremony(
        &self,
        digest: &str,
        now: i64,
    ) -> Result<Option<CeremonyRecord>, CoreError>;
}
