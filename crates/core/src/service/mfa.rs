//! Two-factor use cases: setup, enable (with backup codes), disable, and the
//! second login step. A code is accepted at most once; failures count
//! toward the account's lockout like wrong passwords.

use secrecy::SecretString;
use serde_json::json;
use uuid::Uuid;

use super::auth::{AuthService, LoginOutcome, Principal, millis};
use crate::CoreError;
use crate::audit::{AuditEvent, EventKind, Outcome, RequestMeta};
use crate::auth::mfa;
use crate::auth::tokens::TokenType;

/// What setup returns: shown once, to be scanned or typed.
#[derive(Debug)]
pub struct MfaSetup {
    pub secret: SecretString,
    pub otpauth_url: SecretString,
    pub qr_svg: String,
}

impl AuthService {
    fn unix_secs(&self) -> u64 {
        u64::try_from(self.now().unix_timestamp()).unwrap_or(0)
    }

    fn totp_secret(&self, enc: &str) -> Result<Vec<u8>, CoreError> {
        let b32 = self.cipher.decrypt("totp_secret", enc)?;
        totp_rs::Secret::try_from_base32(&b32)
            .ok()
            .map(|s| s.as_bytes().to_vec())
            .ok_or_else(|| CoreError::internal("stored TOTP secret is not base32"))
    }

    fn backup_hash(&self, user_id: Uuid, code: &str) -> String {
        self.blind.of(
            "backup_code",
            &format!("{user_id}:{}", mfa::normalize_backup_code(code)),
        )
    }

    /// Offers a new secret (not active until `enable` proves it works).
    pub async fn mfa_setup(&self, principal: &Principal) -> Result<MfaSetup, CoreError> {
        principal.require_login()?;
        if principal.user.mfa_enabled {
            return Err(CoreError::MfaAlreadyEnabled);
        }
        let secret = mfa::new_secret()?;
        let b32 = mfa::base32(&secret);
        self.deps
            .mfa
            .set_pending(principal.id(), &self.cipher.encrypt("totp_secret", &b32)?)
            .await?;
        let url = mfa::otpauth_url(&principal.user.username, &secret);
        Ok(MfaSetup {
            qr_svg: mfa::qr_svg(&url)?,
            secret: b32.into(),
            otpauth_url: url.into(),
        })
    }

    /// Turns 2FA on with a first valid code; returns ten backup codes.
    pub async fn mfa_enable(
        &self,
        principal: &Principal,
        code: &str,
        meta: &RequestMeta,
    ) -> Result<Vec<String>, CoreError> {
        principal.require_login()?;
        let id = principal.id();
        let state = self.deps.mfa.mfa_state(id).await?.unwrap_or_default();
        if principal.user.mfa_enabled || state.secret_enc.is_some() {
            return Err(CoreError::MfaAlreadyEnabled);
        }
        let pending = state.pending_enc.ok_or(CoreError::MfaNotEnabled)?;
        let secret = self.totp_secret(&pending)?;
        let Some(step) = mfa::check(&secret, code, self.unix_secs()) else {
            self.mfa_failed(id, "enable", meta).await;
            return Err(CoreError::InvalidMfaCode);
        };
        let codes = mfa::new_backup_codes()?;
        let hashes: Vec<String> = codes.iter().map(|c| self.backup_hash(id, c)).collect();
        self.deps
            .mfa
            .enable(
                id,
                &pending,
                i64::try_from(step).unwrap_or(i64::MAX),
                &hashes,
                millis(self.now()),
            )
            .await?;
        self.deps.cache.invalidate(id).await;
        self.audit(
            AuditEvent::new(EventKind::MfaEnabled, Outcome::Success, meta)
                .actor(id)
                .target(id),
        )
        .await;
        Ok(codes)
    }

    /// Turns 2FA off; needs the password and a current code.
    pub async fn mfa_disable(
        &self,
        principal: &Principal,
        password: &SecretString,
        code: &str,
        meta: &RequestMeta,
    ) -> Result<(), CoreError> {
        principal.require_login()?;
        let id = principal.id();
        if !principal.user.mfa_enabled {
            return Err(CoreError::MfaNotEnabled);
        }
        let record = self
            .deps
            .users
            .by_id(id)
            .await?
            .ok_or(CoreError::NotFound)?;
        if !self
            .hasher
            .verify(password, Some(&record.password_hash))
            .await?
        {
            return Err(CoreError::WrongPassword);
        }
        if !self.second_factor(id, code).await? {
            self.mfa_failed(id, "disable", meta).await;
            return Err(CoreError::InvalidMfaCode);
        }
        self.deps.mfa.disable(id, millis(self.now())).await?;
        self.deps.cache.invalidate(id).await;
        self.audit(
            AuditEvent::new(EventKind::MfaDisabled, Outcome::Success, meta)
                .actor(id)
                .target(id),
        )
        .await;
        Ok(())
    }

    /// Checks a TOTP code (once per time step) or spends a backup code.
    async fn second_factor(&self, user_id: Uuid, code: &str) -> Result<bool, CoreError> {
        let state = self.deps.mfa.mfa_state(user_id).await?.unwrap_or_default();
        let Some(enc) = state.secret_enc else {
            return Ok(false);
        };
        let code = code.trim();
        if code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()) {
            let secret = self.totp_secret(&enc)?;
            return match mfa::check(&secret, code, self.unix_secs()) {
                Some(step) => {
                    self.deps
                        .mfa
                        .accept_step(user_id, i64::try_from(step).unwrap_or(i64::MAX))
                        .await
                }
                None => Ok(false),
            };
        }
        let hash = self.backup_hash(user_id, code);
        self.deps
            .mfa
            .use_backup_code(user_id, &hash, millis(self.now()))
            .await
    }

    async fn mfa_failed(&self, user_id: Uuid, step: &str, meta: &RequestMeta) {
        self.audit(
            AuditEvent::new(EventKind::MfaFailed, Outcome::Failure, meta)
                .target(user_id)
                .details(json!({"step": step})),
        )
        .await;
    }

    /// The second login step: `mfa_token` from the first, and a TOTP or
    /// backup code. Failures count toward the account's lockout.
    pub async fn login_mfa(
        &self,
        mfa_token: &str,
        code: &str,
        meta: &RequestMeta,
    ) -> Result<LoginOutcome, CoreError> {
        let now = self.now();
        let claims = self
            .keys
            .verify(mfa_token, TokenType::Mfa, now)
            .map_err(|_| CoreError::InvalidMfaCode)?;
        let user_id: Uuid = claims.sub.parse().map_err(|_| CoreError::InvalidMfaCode)?;
        let record = self
            .deps
            .users
            .by_id(user_id)
            .await?
            .filter(|r| r.is_active && r.mfa_enabled && r.auth_version == claims.ver)
            .ok_or(CoreError::InvalidMfaCode)?;
        let email = self.cipher.decrypt("email", &record.email_enc)?;
        let throttle_key = format!("email:{}", self.blind.of("email", &email));
        if let Some(retry_after) = self
            .deps
            .throttle
            .locked_for(&throttle_key, millis(now))
            .await?
        {
            return Err(CoreError::AccountLocked { retry_after });
        }
        if !self.second_factor(user_id, code).await? {
            self.mfa_failed(user_id, "login", meta).await;
            if let Some(lock) = self
                .deps
                .throttle
                .record_failure(&throttle_key, millis(now), self.lockout)
                .await?
            {
                self.audit(
                    AuditEvent::new(EventKind::AccountLocked, Outcome::Failure, meta)
                        .target(user_id)
                        .details(json!({"lock_seconds": lock.as_secs(), "step": "mfa"})),
                )
                .await;
            }
            return Err(CoreError::InvalidMfaCode);
        }
        self.deps.throttle.reset(&throttle_key).await?;
        let user = self.to_user(&record)?;
        let pair = self.start_session(&user, meta, now).await?;
        self.audit(
            AuditEvent::new(EventKind::LoginSucceeded, Outcome::Success, meta)
                .actor(user.id)
                .target(user.id)
                .details(json!({"second_factor": true})),
        )
        .await;
        Ok(LoginOutcome::Tokens(pair, user))
    }

    /// The secret of a pending or active setup (tests and recovery tools).
    pub async fn totp_secret_of(&self, user_id: Uuid) -> Result<Option<Vec<u8>>, CoreError> {
        let state = self.deps.mfa.mfa_state(user_id).await?.unwrap_or_default();
        state
            .secret_enc
            .or(state.pending_enc)
            .map(|enc| self.totp_secret(&enc))
            .transpose()
    }
}
