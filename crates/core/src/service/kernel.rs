//! The pieces every use case shares: the field cipher and blind index, the
//! clock, the audit sink, the re-authentication window, and the user
//! directory (stored users behind the cache that writes invalidate).

use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;
use uuid::Uuid;

use crate::CoreError;
use crate::audit::{AuditEvent, AuditSink};
use crate::clock::{Clock, from_unix_ms};
use crate::config::Config;
use crate::crypto::{BlindIndex, FieldCipher};
use crate::ports::{UserCache, UserRecord, UserRepo};
use crate::rbac::Role;
use crate::service::principal::Principal;
use crate::user::{Email, FullName};

/// Cipher, blind index, clock, audit sink and re-authentication window.
#[derive(Debug, Clone)]
pub struct Kernel {
    pub cipher: FieldCipher,
    pub blind: BlindIndex,
    pub clock: Arc<dyn Clock>,
    pub audit: Arc<dyn AuditSink>,
    /// `REAUTH_MAX_AGE_MINUTES`.
    pub reauth_max_age: Duration,
}

impl Kernel {
    pub fn new(
        config: &Config,
        clock: Arc<dyn Clock>,
        audit: Arc<dyn AuditSink>,
    ) -> Result<Self, CoreError> {
        let keys = config
            .data_keys
            .as_ref()
            .ok_or_else(|| CoreError::internal("DATA_ENCRYPTION_KEYS are not configured"))?;
        let blind = config
            .blind_index_key
            .as_ref()
            .ok_or_else(|| CoreError::internal("BLIND_INDEX_KEY is not configured"))?;
        Ok(Self {
            cipher: FieldCipher::new(keys.clone()),
            blind: BlindIndex::new(blind.clone()),
            clock,
            audit,
            reauth_max_age: config.reauth_max_age,
        })
    }

    /// [`Principal::require_recent_auth`] with the configured window, now.
    pub fn require_recent_auth(&self, principal: &Principal) -> Result<(), CoreError> {
        principal.require_recent_auth(self.reauth_max_age, self.now())
    }

    pub fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    pub async fn audit(&self, event: AuditEvent) {
        self.audit.record(event).await;
    }

    /// Decrypts a stored row into the domain user.
    pub fn to_user(&self, r: &UserRecord) -> Result<crate::user::User, CoreError> {
        record_to_user(&self.cipher, r)
    }

    /// The blind index an email is looked up by.
    pub fn email_index(&self, email: &Email) -> String {
        self.blind.of("email", email.as_str())
    }

    /// A full name, validated and encrypted; `None` clears it.
    pub fn encrypt_name(&self, name: Option<&str>) -> Result<Option<String>, CoreError> {
        match name.map(FullName::parse).transpose() {
            Ok(parsed) => parsed
                .flatten()
                .map(|n| self.cipher.encrypt("full_name", n.as_str()))
                .transpose(),
            Err(p) => Err(CoreError::Validation(vec![p])),
        }
    }
}

/// Decrypts a stored row into the domain user.
pub(crate) fn record_to_user(
    cipher: &FieldCipher,
    r: &UserRecord,
) -> Result<crate::user::User, CoreError> {
    Ok(crate::user::User {
        id: r.id,
        username: r.username.clone(),
        email: cipher.decrypt("email", &r.email_enc)?,
        email_verified: r.email_verified,
        full_name: r
            .full_name_enc
            .as_deref()
            .map(|v| cipher.decrypt("full_name", v))
            .transpose()?,
        role: r
            .role
            .parse::<Role>()
            .map_err(|()| CoreError::internal(format!("stored role `{}` is unknown", r.role)))?,
        is_active: r.is_active,
        mfa_enabled: r.mfa_enabled,
        created_at: from_unix_ms(r.created_at),
        updated_at: from_unix_ms(r.updated_at),
        auth_version: r.auth_version,
    })
}

/// Stored users, read through the cache; every write goes through
/// [`Directory::invalidate`] so no instance keeps serving the old state.
#[derive(Debug, Clone)]
pub struct Directory {
    pub users: Arc<dyn UserRepo>,
    pub cache: Arc<dyn UserCache>,
    pub kernel: Kernel,
}

impl Directory {
    /// The user as stored now (cached; writes invalidate).
    pub async fn current(&self, id: Uuid) -> Result<Option<Arc<crate::user::User>>, CoreError> {
        if let Some(user) = self.cache.get(id).await {
            return Ok(Some(user));
        }
        let generation = self.cache.generation();
        let Some(record) = self.users.by_id(id).await? else {
            return Ok(None);
        };
        let user = Arc::new(self.kernel.to_user(&record)?);
        self.cache.put(user.clone(), generation).await;
        Ok(Some(user))
    }

    /// The stored row, uncached (for checks against the password hash).
    pub async fn record(&self, id: Uuid) -> Result<UserRecord, CoreError> {
        self.users.by_id(id).await?.ok_or(CoreError::NotFound)
    }

    /// The stored user, uncached.
    pub async fn load(&self, id: Uuid) -> Result<crate::user::User, CoreError> {
        self.kernel.to_user(&self.record(id).await?)
    }

    /// Drops the cached user (and the lists) on every instance.
    pub async fn invalidate(&self, id: Uuid) {
        self.cache.invalidate(id).await;
    }

    /// Reloads a user after a write and refreshes the cache everywhere.
    pub async fn after_write(&self, id: Uuid) -> Result<crate::user::User, CoreError> {
        self.invalidate(id).await;
        self.load(id).await
    }
}
