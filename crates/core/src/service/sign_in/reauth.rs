//! Step-up re-authentication: a signed-in user proves a factor again to
//! renew the `auth_time` of their login, which sensitive changes require to
//! be recent (OWASP ASVS 3.7.1). The login goes on: same session, a fresh
//! access token.

use secrecy::SecretString;
use serde_json::json;
use webauthn_rs::prelude::PublicKeyCredential;

use super::SignIn;
use crate::CoreError;
use crate::audit::{AuditEvent, EventKind, Outcome, RequestMeta};
use crate::clock::unix_ms;
use crate::rbac::Permission;
use crate::service::logins::AccessToken;
use crate::service::passkeys::{Binding, Challenge, Purpose, Refusal, RequestChallengeResponse};
use crate::service::principal::Principal;

/// The factor proved again. One variant per kind of proof.
#[derive(Debug)]
pub enum ReauthProof {
    /// The account's password.
    Password(SecretString),
    /// A TOTP code or an unused backup code (only with 2FA on).
    Code(String),
    /// An assertion by one of the account's passkeys, in a ceremony begun
    /// by this login ([`SignIn::begin_passkey_reauth`]).
    Passkey {
        ceremony: String,
        credential: Box<PublicKeyCredential>,
    },
}

impl ReauthProof {
    /// How the audit trail names the factor.
    fn factor(&self) -> &'static str {
        match self {
            ReauthProof::Password(_) => "password",
            ReauthProof::Code(_) => "code",
            ReauthProof::Passkey { .. } => "passkey",
        }
    }
}

impl SignIn {
    /// Checks `proof` for the caller and, when it holds, records it as the
    /// login's new `auth_time` and returns an access token of the same login
    /// carrying it. A wrong secret is [`CoreError::InvalidCredentials`] and
    /// counts toward the account's lockout like a wrong password at login.
    pub async fn reauthenticate(
        &self,
        principal: &Principal,
        proof: ReauthProof,
        meta: &RequestMeta,
    ) -> Result<AccessToken, CoreError> {
        // A key proves no factor and must not mint a login's token.
        principal.require_login()?;
        principal.require(Permission::SelfRead)?;
        let session_id = principal.session_id.ok_or(CoreError::InvalidToken)?;
        let id = principal.id();
        let factor = proof.factor();
        let record = self.deps.directory.record(id).await?;
        let lockout = &self.deps.lockout;
        // Reserved before the check, like every proof of a secret: however
        // many arrive at once, at most the lockout's allowance is checked.
        let attempt = match lockout.reserve(lockout.key_of(&record)?).await {
            Ok(attempt) => attempt,
            Err(refused) => {
                if matches!(refused, CoreError::AccountLocked { .. }) {
                    self.reauth_failed(principal, factor, "locked", meta).await;
                }
                return Err(refused);
            }
        };
        let holds = match &proof {
            ReauthProof::Password(password) => {
                self.deps
                    .hasher
                    .verify(password, Some(&record.password_hash))
                    .await?
            }
            // Without 2FA there is no code to hold; the check finds none.
            ReauthProof::Code(code) => {
                record.mfa_enabled && self.deps.second_factor.check(id, code).await?
            }
            ReauthProof::Passkey {
                ceremony,
                credential,
            } => {
                let sid = session_id.to_string();
                let binding = Binding {
                    user_id: Some(id),
                    bound_to: Some(&sid),
                };
                let used = self
                    .deps
                    .passkeys
                    .finish_assertion(ceremony, Purpose::Reauth, binding, credential)
                    .await;
                match used {
                    Ok(_) => true,
                    Err(Refusal::Store(e)) => return Err(e),
                    Err(refusal) => {
                        tracing::info!(reason = %refusal, "passkey re-authentication refused");
                        false
                    }
                }
            }
        };
        if !holds {
            self.reauth_failed(principal, factor, "wrong_secret", meta)
                .await;
            attempt
                .failed(Some(id), json!({"step": "reauth"}), meta)
                .await?;
            return Err(CoreError::InvalidCredentials);
        }
        // Given back, not cleared: only a completed login clears the count.
        attempt.passed().await?;
        let now = self.now();
        let logins = &self.deps.logins;
        // The login was revoked since the token was checked: nothing to renew.
        if !logins
            .sessions
            .set_auth_time(session_id, id, unix_ms(now))
            .await?
        {
            return Err(CoreError::InvalidToken);
        }
        let token = logins.access(&principal.user, session_id, Some(now), now)?;
        self.audit(
            AuditEvent::new(EventKind::Reauthenticated, Outcome::Success, meta)
                .actor(id)
                .target(id)
                .details(json!({"session_id": session_id, "factor": factor})),
        )
        .await;
        Ok(token)
    }

    /// Options for re-authenticating this login with one of the account's
    /// passkeys.
    pub async fn begin_passkey_reauth(
        &self,
        principal: &Principal,
    ) -> Result<Challenge<RequestChallengeResponse>, CoreError> {
        principal.require_login()?;
        principal.require(Permission::SelfRead)?;
        let sid = principal
            .session_id
            .ok_or(CoreError::InvalidToken)?
            .to_string();
        let passkeys = self
            .deps
            .passkeys
            .repo()
            .passkeys_of(principal.id())
            .await?;
        if passkeys.is_empty() {
            return Err(CoreError::NotFound);
        }
        let binding = Binding {
            user_id: Some(principal.id()),
            bound_to: Some(&sid),
        };
        self.deps
            .passkeys
            .begin_assertion(Purpose::Reauth, binding, &passkeys, &[])
            .await
    }

    async fn reauth_failed(
        &self,
        principal: &Principal,
        factor: &str,
        reason: &str,
        meta: &RequestMeta,
    ) {
        self.audit(
            AuditEvent::new(EventKind::ReauthenticationFailed, Outcome::Failure, meta)
                .actor(principal.id())
                .target(principal.id())
                .details(json!({
                    "session_id": principal.session_id,
                    "factor": factor,
                    "reason": reason,
                })),
        )
        .await;
    }
}
