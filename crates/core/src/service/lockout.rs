//! The account lockout as the use cases apply it: every proof of a secret
//! for an account (a password at login, change-password, 2FA disable or
//! re-authentication; a second-factor code) is reserved before it is
//! checked, then settled as a failure (counted) or a success (given back).
//! Only a completed login clears the count.

use std::sync::Arc;

use serde_json::{Value, json};
use uuid::Uuid;

use super::kernel::Kernel;
use crate::CoreError;
use crate::audit::{AuditEvent, EventKind, Outcome, RequestMeta};
use crate::config::{Config, LockoutConfig};
use crate::ports::{LoginThrottle, Reservation, UserRecord};

#[derive(Debug, Clone)]
pub struct Lockout {
    throttle: Arc<dyn LoginThrottle>,
    policy: LockoutConfig,
    kernel: Kernel,
}

impl Lockout {
    pub fn new(config: &Config, throttle: Arc<dyn LoginThrottle>, kernel: Kernel) -> Self {
        Self {
            throttle,
            policy: config.lockout,
            kernel,
        }
    }

    /// The counter of an email address (lower-cased), whether or not an
    /// account has it.
    pub fn key_of_email(&self, email: &str) -> String {
        format!("email:{}", self.kernel.blind.of("email", email))
    }

    /// The counter of an existing account: its email's, so switching
    /// between username and email does not reset it.
    pub fn key_of(&self, record: &UserRecord) -> Result<String, CoreError> {
        let email = self.kernel.cipher.decrypt("email", &record.email_enc)?;
        Ok(self.key_of_email(&email))
    }

    /// The counter of a username that names no account.
    pub fn key_of_unknown_username(&self, key: &str) -> String {
        format!("username:{}", self.kernel.blind.of("username", key))
    }

    /// Reserves one check of a secret under `key`: 429 `account_locked`
    /// while locked or while the window's attempts are all spent or in
    /// flight.
    pub async fn reserve(&self, key: String) -> Result<Attempt, CoreError> {
        match self
            .throttle
            .reserve(&key, self.kernel.now_ms(), self.policy)
            .await?
        {
            Reservation::Granted => Ok(Attempt {
                lockout: self.clone(),
                key,
                settled: false,
            }),
            Reservation::Refused(retry_after) => Err(CoreError::AccountLocked { retry_after }),
        }
    }
}

/// A reserved check. Settle it with [`Attempt::failed`], [`Attempt::passed`]
/// or [`Attempt::completed_login`]; dropped unsettled (an error, a
/// cancelled request), it is given back in the background.
#[derive(Debug)]
pub struct Attempt {
    lockout: Lockout,
    key: String,
    settled: bool,
}

impl Attempt {
    /// The secret was wrong: counted; a lock it causes is audited with
    /// `details` (plus `lock_seconds`).
    pub async fn failed(
        mut self,
        target: Option<Uuid>,
        details: Value,
        meta: &RequestMeta,
    ) -> Result<(), CoreError> {
        self.settled = true;
        let l = &self.lockout;
        let Some(lock) = l
            .throttle
            .fail(&self.key, l.kernel.now_ms(), l.policy)
            .await?
        else {
            return Ok(());
        };
        let mut details = details;
        details["lock_seconds"] = json!(lock.as_secs());
        let mut locked =
            AuditEvent::new(EventKind::AccountLocked, Outcome::Failure, meta).details(details);
        if let Some(id) = target {
            locked = locked.target(id);
        }
        l.kernel.audit(locked).await;
        Ok(())
    }

    /// The secret was right but no login completed (a second factor is
    /// due, or it guarded another action): given back, failures stay.
    pub async fn passed(mut self) -> Result<(), CoreError> {
        self.settled = true;
        self.lockout.throttle.release(&self.key).await
    }

    /// A login completed: the count starts over.
    pub async fn completed_login(mut self) -> Result<(), CoreError> {
        self.settled = true;
        self.lockout.throttle.reset(&self.key).await
    }
}

impl Drop for Attempt {
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        let throttle = self.lockout.throttle.clone();
        let key = std::mem::take(&mut self.key);
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                if let Err(e) = throttle.release(&key).await {
                    tracing::warn!(error = %e, "lockout reservation not given back");
                }
            });
        }
    }
}
