//! Two-factor use cases: setup, enable (with backup codes) and disable; and
//! [`SecondFactor`], the code check that sign-in's second step shares. A
//! code is accepted at most once.

use std::sync::Arc;

use secrecy::SecretString;
use serde_json::json;
use uuid::Uuid;

use super::kernel::{Directory, Kernel};
use super::lockout::Lockout;
use super::mail::Postman;
use super::principal::Principal;
use crate::CoreError;
use crate::audit::{AuditEvent, EventKind, Outcome, RequestMeta};
use crate::auth::mfa;
use crate::auth::password::PasswordHasher;
use crate::mail::Message;
use crate::ports::MfaRepo;
use crate::rbac::Permission;

/// What setup returns: shown once, to be scanned or typed.
#[derive(Debug)]
pub struct MfaSetup {
    pub secret: SecretString,
    pub otpauth_url: SecretString,
    pub qr_svg: String,
}

/// A secret as setup shows it: in base32, as an `otpauth://` URL and as
/// its QR code.
fn shown(principal: &Principal, secret: &[u8]) -> Result<MfaSetup, CoreError> {
    let url = mfa::otpauth_url(&principal.user.username, secret);
    Ok(MfaSetup {
        qr_svg: mfa::qr_svg(&url)?,
        secret: mfa::base32(secret).into(),
        otpauth_url: url.into(),
    })
}

/// The stored TOTP secret and backup codes, and the check of a code.
#[derive(Debug, Clone)]
pub struct SecondFactor {
    pub mfa: Arc<dyn MfaRepo>,
    pub kernel: Kernel,
}

impl SecondFactor {
    fn unix_secs(&self) -> u64 {
        u64::try_from(self.kernel.now().unix_timestamp()).unwrap_or(0)
    }

    fn totp_secret(&self, enc: &str) -> Result<Vec<u8>, CoreError> {
        let b32 = self.kernel.cipher.decrypt("totp_secret", enc)?;
        totp_rs::Secret::try_from_base32(&b32)
            .ok()
            .map(|s| s.as_bytes().to_vec())
            .ok_or_else(|| CoreError::internal("stored TOTP secret is not base32"))
    }

    fn backup_hash(&self, user_id: Uuid, code: &str) -> String {
        self.kernel.blind.of(
            "backup_code",
            &format!("{user_id}:{}", mfa::normalize_backup_code(code)),
        )
    }

    /// Checks a TOTP code (once per time step) or spends a backup code.
    pub async fn check(&self, user_id: Uuid, code: &str) -> Result<bool, CoreError> {
        let state = self.mfa.mfa_state(user_id).await?.unwrap_or_default();
        let Some(enc) = state.secret_enc else {
            return Ok(false);
        };
        let code = code.trim();
        if code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()) {
            let secret = self.totp_secret(&enc)?;
            return match mfa::check(&secret, code, self.unix_secs()) {
                Some(step) => {
                    self.mfa
                        .accept_step(user_id, i64::try_from(step).unwrap_or(i64::MAX))
                        .await
                }
                None => Ok(false),
            };
        }
        let hash = self.backup_hash(user_id, code);
        self.mfa
            .use_backup_code(user_id, &hash, self.kernel.now_ms())
            .await
    }

    pub async fn audit_failure(&self, user_id: Uuid, step: &str, meta: &RequestMeta) {
        self.kernel
            .audit(
                AuditEvent::new(EventKind::MfaFailed, Outcome::Failure, meta)
                    .target(user_id)
                    .details(json!({"step": step})),
            )
            .await;
    }
}

/// Turning 2FA on and off for the caller's own account.
#[derive(Debug)]
pub struct TwoFactor {
    factor: SecondFactor,
    directory: Directory,
    hasher: PasswordHasher,
    lockout: Lockout,
    postman: Postman,
}

impl TwoFactor {
    pub fn new(
        factor: SecondFactor,
        directory: Directory,
        hasher: PasswordHasher,
        lockout: Lockout,
        postman: Postman,
    ) -> Self {
        Self {
            factor,
            directory,
            hasher,
            lockout,
            postman,
        }
    }

    /// Managing a second factor takes `self:write` and a person's login.
    fn check(principal: &Principal) -> Result<(), CoreError> {
        principal.require(Permission::SelfWrite)?;
        principal.require_login()
    }

    async fn audit(&self, kind: EventKind, id: Uuid, meta: &RequestMeta) {
        self.factor
            .kernel
            .audit(
                AuditEvent::new(kind, Outcome::Success, meta)
                    .actor(id)
                    .target(id),
            )
            .await;
    }

    /// Offers a new secret (not active until `enable` proves it works).
    pub async fn setup(&self, principal: &Principal) -> Result<MfaSetup, CoreError> {
        Self::check(principal)?;
        if principal.user.mfa_enabled {
            return Err(CoreError::MfaAlreadyEnabled);
        }
        let secret = mfa::new_secret()?;
        let b32 = mfa::base32(&secret);
        let enc = self.factor.kernel.cipher.encrypt("totp_secret", &b32)?;
        self.factor.mfa.set_pending(principal.id(), &enc).await?;
        shown(principal, &secret)
    }

    /// The setup begun and not yet enabled, shown again with the same
    /// secret (so a mistyped first code does not mean scanning anew);
    /// `None` when there is none or 2FA is on.
    pub async fn pending(&self, principal: &Principal) -> Result<Option<MfaSetup>, CoreError> {
        Self::check(principal)?;
        if principal.user.mfa_enabled {
            return Ok(None);
        }
        let state = self
            .factor
            .mfa
            .mfa_state(principal.id())
            .await?
            .unwrap_or_default();
        match (state.secret_enc, state.pending_enc) {
            (None, Some(pending)) => {
                let secret = self.factor.totp_secret(&pending)?;
                shown(principal, &secret).map(Some)
            }
            _ => Ok(None),
        }
    }

    /// Turns 2FA on with a first valid code; returns ten backup codes. Takes
    /// a recently proved factor, like every change of a factor.
    pub async fn enable(
        &self,
        principal: &Principal,
        code: &str,
        meta: &RequestMeta,
    ) -> Result<Vec<String>, CoreError> {
        Self::check(principal)?;
        self.factor.kernel.require_recent_auth(principal)?;
        let id = principal.id();
        let state = self.factor.mfa.mfa_state(id).await?.unwrap_or_default();
        if principal.user.mfa_enabled || state.secret_enc.is_some() {
            return Err(CoreError::MfaAlreadyEnabled);
        }
        let pending = state.pending_enc.ok_or(CoreError::MfaNotEnabled)?;
        let secret = self.factor.totp_secret(&pending)?;
        let Some(step) = mfa::check(&secret, code, self.factor.unix_secs()) else {
            self.factor.audit_failure(id, "enable", meta).await;
            return Err(CoreError::InvalidMfaCode);
        };
        let codes = mfa::new_backup_codes()?;
        let hashes: Vec<String> = codes
            .iter()
            .map(|c| self.factor.backup_hash(id, c))
            .collect();
        let step = i64::try_from(step).unwrap_or(i64::MAX);
        let now = self.factor.kernel.now_ms();
        self.factor
            .mfa
            .enable(id, &pending, step, &hashes, now)
            .await?;
        self.directory.invalidate(id).await;
        self.audit(EventKind::MfaEnabled, id, meta).await;
        // Queued right after: the 2FA port has no transaction to share.
        self.postman
            .send_notice(&principal.user, Message::TwoFactorEnabled)
            .await;
        Ok(codes)
    }

    /// Turns 2FA off; needs a recently proved factor, the password and a
    /// current code.
    pub async fn disable(
        &self,
        principal: &Principal,
        password: &SecretString,
        code: &str,
        meta: &RequestMeta,
    ) -> Result<(), CoreError> {
        Self::check(principal)?;
        // Checked before the secrets: a stale login spends no attempt.
        self.factor.kernel.require_recent_auth(principal)?;
        let id = principal.id();
        if !principal.user.mfa_enabled {
            return Err(CoreError::MfaNotEnabled);
        }
        let record = self.directory.record(id).await?;
        // Both secrets are proofs: a wrong one counts toward the lockout.
        let attempt = self.lockout.reserve(self.lockout.key_of(&record)?).await?;
        let details = json!({"step": "mfa_disable"});
        if !self
            .hasher
            .verify(password, Some(&record.password_hash))
            .await?
        {
            attempt.failed(Some(id), details, meta).await?;
            return Err(CoreError::WrongPassword);
        }
        if !self.factor.check(id, code).await? {
            self.factor.audit_failure(id, "disable", meta).await;
            attempt.failed(Some(id), details, meta).await?;
            return Err(CoreError::InvalidMfaCode);
        }
        attempt.passed().await?;
        self.factor
            .mfa
            .disable(id, self.factor.kernel.now_ms())
            .await?;
        self.directory.invalidate(id).await;
        self.audit(EventKind::MfaDisabled, id, meta).await;
        self.postman
            .send_notice(&principal.user, Message::TwoFactorDisabled)
            .await;
        Ok(())
    }

    /// The secret of a pending or active setup (tests and recovery tools).
    pub async fn secret_of(&self, user_id: Uuid) -> Result<Option<Vec<u8>>, CoreError> {
        let state = self
            .factor
            .mfa
            .mfa_state(user_id)
            .await?
            .unwrap_or_default();
        state
            .secret_enc
            .or(state.pending_enc)
            .map(|enc| self.factor.totp_secret(&enc))
            .transpose()
    }
}
