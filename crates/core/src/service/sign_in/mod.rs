//! Sign-in and sessions: login (password, then the second factor when 2FA
//! is on), refresh (rotation with reuse detection), logout, and the
//! per-request check of an access token against the user's current state
//! (those three in `sessions`), and step-up re-authentication (`reauth`).

use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

use super::kernel::Directory;
use super::lockout::{Attempt, Lockout};
use super::logins::{Logins, TokenPair};
use super::passkeys::Verifier;
use super::two_factor::SecondFactor;

mod passkey;
mod reauth;
mod sessions;
use crate::CoreError;
use crate::audit::{AuditEvent, EventKind, Outcome, RequestMeta};
use crate::auth::password::PasswordHasher;
use crate::auth::tokens::{Claims, Grant, TokenKeys, TokenType};
use crate::clock::unix_ms;
use crate::config::Config;
use crate::ports::UserRecord;
use crate::user::{Email, FieldProblem, User, mask_email};
pub use reauth::ReauthProof;

/// Lifetime of the token between the two login steps.
const MFA_TOKEN_TTL: Duration = Duration::from_secs(300);

/// How a login names the account.
#[derive(Debug, Clone)]
pub enum LoginId {
    Email(String),
    /// The OAuth2 password grant's `username`: an email or a username.
    EmailOrUsername(String),
}

/// What a correct password leads to.
#[derive(Debug)]
pub enum LoginOutcome {
    Tokens(TokenPair, User),
    /// 2FA is on: the second step (`/login/mfa`) needs this token.
    MfaRequired {
        mfa_token: String,
        expires_in: u64,
        /// The account has a passkey, which may stand in for the code.
        passkey: bool,
    },
}

/// The account a login names, and how its failures are counted and logged.
#[derive(Debug)]
struct LoginTarget {
    record: Option<UserRecord>,
    /// The lockout counter's key: per account when it exists.
    throttle_key: String,
    /// How the audit trail names the attempt: the masked email typed, or
    /// the account a username resolved to. A username that names no
    /// account is never recorded (people type passwords there).
    who: Option<String>,
}

/// The ports sign-in drives besides the shared ones.
#[derive(Debug, Clone)]
pub struct SignInDeps {
    pub directory: Directory,
    pub logins: Logins,
    pub lockout: Lockout,
    pub hasher: PasswordHasher,
    pub second_factor: SecondFactor,
    pub passkeys: Verifier,
}

#[derive(Debug)]
pub struct SignIn {
    deps: SignInDeps,
    require_verified_email: bool,
}

impl SignIn {
    pub fn new(config: &Config, deps: SignInDeps) -> Self {
        Self {
            deps,
            require_verified_email: config.require_verified_email,
        }
    }

    pub fn token_keys(&self) -> &TokenKeys {
        &self.deps.logins.keys
    }

    pub fn refresh_ttl(&self) -> Duration {
        self.deps.logins.refresh_ttl
    }

    fn now(&self) -> OffsetDateTime {
        self.deps.directory.kernel.now()
    }

    async fn audit(&self, event: AuditEvent) {
        self.deps.directory.kernel.audit(event).await;
    }

    /// Field problems for a login identifier (schema rules only).
    pub fn check_login_email(email: &str) -> Result<(), FieldProblem> {
        Email::parse(email).map(drop)
    }

    /// Finds the account a login names, and the key its failures count under.
    async fn resolve(&self, id: &LoginId) -> Result<LoginTarget, CoreError> {
        let users = &self.deps.directory.users;
        let raw = match id {
            LoginId::Email(s) | LoginId::EmailOrUsername(s) => s.trim(),
        };
        if matches!(id, LoginId::Email(_)) || raw.contains('@') {
            let email = raw.to_lowercase();
            let index = self.deps.directory.kernel.blind.of("email", &email);
            return Ok(LoginTarget {
                record: users.by_email_index(&index).await?,
                throttle_key: self.deps.lockout.key_of_email(&email),
                who: Some(mask_email(&email)),
            });
        }
        let key = raw.to_ascii_lowercase();
        let record = users.by_username_key(&key).await?;
        let (throttle_key, who) = match &record {
            Some(r) => (
                self.deps.lockout.key_of(r)?,
                Some(format!("username:{}", r.username)),
            ),
            None => (self.deps.lockout.key_of_unknown_username(&key), None),
        };
        Ok(LoginTarget {
            record,
            throttle_key,
            who,
        })
    }

    /// Reserves the password check; a refusal is audited as a failed login.
    async fn reserve(
        &self,
        target: &LoginTarget,
        meta: &RequestMeta,
    ) -> Result<Attempt, CoreError> {
        let refused = match self.deps.lockout.reserve(target.throttle_key.clone()).await {
            Ok(attempt) => return Ok(attempt),
            Err(e) => e,
        };
        if matches!(refused, CoreError::AccountLocked { .. }) {
            self.audit(
                AuditEvent::new(EventKind::LoginFailed, Outcome::Failure, meta)
                    .details(json!({"account": target.who, "reason": "locked"})),
            )
            .await;
        }
        Err(refused)
    }

    pub async fn login(
        &self,
        id: LoginId,
        password: &SecretString,
        meta: &RequestMeta,
    ) -> Result<LoginOutcome, CoreError> {
        let now = self.now();
        let target = self.resolve(&id).await?;
        let attempt = self.reserve(&target, meta).await?;
        // Always verify, against a dummy hash when the account is unknown:
        // same work, same time, same answer (OWASP ASVS 2.2.x / 3.x).
        let matched = self
            .deps
            .hasher
            .verify(
                password,
                target.record.as_ref().map(|r| r.password_hash.as_str()),
            )
            .await?;
        let record = match &target.record {
            Some(r) if matched && r.is_active => r,
            other => {
                let reason = match other {
                    None => "unknown_account",
                    Some(r) if !r.is_active && matched => "inactive",
                    Some(_) => "wrong_password",
                };
                self.refuse_password(attempt, &target, reason, meta).await?;
                return Err(CoreError::InvalidCredentials);
            }
        };
        if self.require_verified_email && !record.email_verified {
            attempt.passed().await?;
            return Err(CoreError::EmailNotVerified);
        }
        self.rehash_if_needed(record, password, now).await;
        let user = self.deps.directory.kernel.to_user(record)?;
        if user.mfa_enabled {
            // The password alone completes no login: the count stays until
            // the second factor succeeds too.
            attempt.passed().await?;
            return self.second_step(&user, now).await;
        }
        let details = json!({"account": target.who});
        self.complete(user, attempt, details, meta, now).await
    }

    /// Every factor passed: starts the login, clears the lockout count and
    /// records `login_succeeded` with `details`.
    async fn complete(
        &self,
        user: User,
        attempt: Attempt,
        details: serde_json::Value,
        meta: &RequestMeta,
        now: OffsetDateTime,
    ) -> Result<LoginOutcome, CoreError> {
        let pair = self.deps.logins.start(&user, meta, now).await?;
        attempt.completed_login().await?;
        self.audit(
            AuditEvent::new(EventKind::LoginSucceeded, Outcome::Success, meta)
                .actor(user.id)
                .target(user.id)
                .details(details),
        )
        .await;
        Ok(LoginOutcome::Tokens(pair, user))
    }

    /// Audits and counts a refused password; the answer never says why.
    async fn refuse_password(
        &self,
        attempt: Attempt,
        target: &LoginTarget,
        reason: &str,
        meta: &RequestMeta,
    ) -> Result<(), CoreError> {
        let account = target.record.as_ref().map(|r| r.id);
        let mut failure = AuditEvent::new(EventKind::LoginFailed, Outcome::Failure, meta)
            .details(json!({"account": target.who, "reason": reason}));
        if let Some(id) = account {
            failure = failure.target(id);
        }
        self.audit(failure).await;
        attempt
            .failed(account, json!({"account": target.who}), meta)
            .await
    }

    /// Upgrades a hash made with other parameters. Best effort: a failed
    /// upgrade must not fail a correct login.
    async fn rehash_if_needed(
        &self,
        record: &UserRecord,
        password: &SecretString,
        now: OffsetDateTime,
    ) {
        if !self.deps.hasher.needs_rehash(&record.password_hash) {
            return;
        }
        let stored = match self.deps.hasher.hash(password).await {
            // Only over the hash just verified: a password changed meanwhile
            // is never overwritten by the old one.
            Ok(hash) => {
                self.deps
                    .directory
                    .users
                    .set_password_hash(record.id, &record.password_hash, &hash, unix_ms(now))
                    .await
            }
            Err(e) => Err(e),
        };
        match stored {
            Ok(true) => {}
            Ok(false) => {
                tracing::info!(user_id = %record.id, "password changed meanwhile; re-hash dropped")
            }
            Err(e) => {
                tracing::warn!(user_id = %record.id, error = %e, "password re-hash not stored")
            }
        }
    }

    /// 2FA is on: a short-lived token for the second step instead of a login.
    async fn second_step(
        &self,
        user: &User,
        now: OffsetDateTime,
    ) -> Result<LoginOutcome, CoreError> {
        let issued = self.deps.logins.keys.issue(
            &Grant {
                token_type: TokenType::Mfa,
                user_id: user.id,
                role: user.role,
                auth_version: user.auth_version,
                session_id: None,
                auth_time: None,
                ttl: MFA_TOKEN_TTL,
            },
            now,
        )?;
        let passkeys = self.deps.passkeys.repo().passkeys_of(user.id).await?;
        // Offered only when one may be used (an allow-list of models can
        // rule out every passkey the account has).
        let passkeys = self.deps.passkeys.usable(passkeys);
        Ok(LoginOutcome::MfaRequired {
            mfa_token: issued.token,
            expires_in: MFA_TOKEN_TTL.as_secs(),
            passkey: !passkeys.is_empty(),
        })
    }

    /// The MFA token's claims and account, still as they were when the
    /// password was checked.
    async fn mfa_account(&self, mfa_token: &str) -> Result<(Arc<Claims>, UserRecord), CoreError> {
        let claims = self
            .deps
            .logins
            .keys
            .verify(mfa_token, TokenType::Mfa, self.now())
            .map_err(|_| CoreError::InvalidMfaCode)?;
        let user_id: Uuid = claims.sub.parse().map_err(|_| CoreError::InvalidMfaCode)?;
        let record = self
            .deps
            .directory
            .users
            .by_id(user_id)
            .await?
            .filter(|r| r.is_active && r.mfa_enabled && r.auth_version == claims.ver)
            .ok_or(CoreError::InvalidMfaCode)?;
        Ok((claims, record))
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
        let (_, record) = self.mfa_account(mfa_token).await?;
        let user_id = record.id;
        let attempt = self
            .deps
            .lockout
            .reserve(self.deps.lockout.key_of(&record)?)
            .await?;
        if !self.deps.second_factor.check(user_id, code).await? {
            self.deps
                .second_factor
                .audit_failure(user_id, "login", meta)
                .await;
            attempt
                .failed(Some(user_id), json!({"step": "mfa"}), meta)
                .await?;
            return Err(CoreError::InvalidMfaCode);
        }
        let user = self.deps.directory.kernel.to_user(&record)?;
        let details = json!({"second_factor": true});
        self.complete(user, attempt, details, meta, now).await
    }
}
