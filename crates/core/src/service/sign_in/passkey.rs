//! Signing in with a passkey: username-less (the browser offers the
//! account's passkeys itself) or for a named account, and a passkey as the
//! second step after a password in place of a TOTP code. A passkey with
//! user verification is two factors in itself, so it completes a login
//! alone; no password hash is computed on this path.

use serde_json::json;
use uuid::Uuid;
use webauthn_rs::prelude::PublicKeyCredential;

use super::{LoginOutcome, SignIn};
use crate::CoreError;
use crate::audit::{AuditEvent, EventKind, Outcome, RequestMeta};
use crate::service::passkeys::{Binding, Challenge, Purpose, Refusal, RequestChallengeResponse};
use crate::user::mask_email;

impl SignIn {
    /// Options for `navigator.credentials.get()`. Without `email`, any of
    /// the user's discoverable passkeys may answer. With one, the account's
    /// passkeys are listed — or stand-ins when it has none or does not
    /// exist, so the answer does not tell which.
    pub async fn begin_passkey_login(
        &self,
        email: Option<&str>,
    ) -> Result<Challenge<RequestChallengeResponse>, CoreError> {
        let verifier = &self.deps.passkeys;
        let Some(email) = email else {
            let binding = Binding {
                user_id: None,
                bound_to: None,
            };
            return verifier
                .begin_assertion(Purpose::SignIn, binding, &[], &[])
                .await;
        };
        let email = email.trim().to_lowercase();
        let index = self.deps.directory.kernel.blind.of("email", &email);
        let record = self.deps.directory.users.by_email_index(&index).await?;
        let passkeys = match &record {
            Some(r) => verifier.repo().passkeys_of(r.id).await?,
            None => Vec::new(),
        };
        let decoys = if passkeys.is_empty() {
            verifier.decoys(&email)
        } else {
            Vec::new()
        };
        let binding = Binding {
            user_id: record.as_ref().map(|r| r.id),
            bound_to: None,
        };
        verifier
            .begin_assertion(Purpose::SignIn, binding, &passkeys, &decoys)
            .await
    }

    /// Finishes a passkey sign-in: a new login, audited as `passkey_login`.
    /// Anything wrong is `invalid_credentials`, and the log says what.
    pub async fn finish_passkey_login(
        &self,
        ceremony: &str,
        credential: &PublicKeyCredential,
        meta: &RequestMeta,
    ) -> Result<LoginOutcome, CoreError> {
        let now = self.now();
        // The account, when the ceremony named one, is checked from its
        // stored state.
        let binding = Binding {
            user_id: None,
            bound_to: None,
        };
        let used = self
            .deps
            .passkeys
            .finish_assertion(ceremony, Purpose::SignIn, binding, credential)
            .await;
        let passkey = match used {
            Ok(p) => p,
            Err(refusal) => return Err(self.passkey_refused(refusal, None, meta).await),
        };
        let record = self
            .deps
            .directory
            .users
            .by_id(passkey.user_id)
            .await?
            .filter(|r| r.is_active)
            .ok_or(CoreError::InvalidCredentials)?;
        if self.require_verified_email && !record.email_verified {
            return Err(CoreError::EmailNotVerified);
        }
        let user = self.deps.directory.kernel.to_user(&record)?;
        let pair = self.deps.logins.start(&user, meta, now).await?;
        self.audit(
            AuditEvent::new(EventKind::PasskeyLogin, Outcome::Success, meta)
                .actor(user.id)
                .target(user.id)
                .details(json!({"passkey_id": passkey.id, "account": mask_email(&user.email)})),
        )
        .await;
        Ok(LoginOutcome::Tokens(pair, user))
    }

    /// Audits a refused assertion and says only "invalid credentials".
    async fn passkey_refused(
        &self,
        refusal: Refusal,
        user_id: Option<Uuid>,
        meta: &RequestMeta,
    ) -> CoreError {
        if let Refusal::Store(e) = refusal {
            return e;
        }
        tracing::info!(reason = %refusal, "passkey assertion refused");
        let mut event = AuditEvent::new(EventKind::LoginFailed, Outcome::Failure, meta)
            .details(json!({"method": "passkey", "reason": refusal_reason(&refusal)}));
        if let Some(id) = user_id {
            event = event.target(id);
        }
        self.audit(event).await;
        CoreError::InvalidCredentials
    }

    /// The second step with a passkey instead of a code: options listing the
    /// account's passkeys, bound to this `mfa_token`.
    pub async fn begin_passkey_second_factor(
        &self,
        mfa_token: &str,
    ) -> Result<Challenge<RequestChallengeResponse>, CoreError> {
        let (claims, record) = self.mfa_account(mfa_token).await?;
        let passkeys = self.deps.passkeys.repo().passkeys_of(record.id).await?;
        let passkeys = self.deps.passkeys.usable(passkeys);
        if passkeys.is_empty() {
            return Err(CoreError::InvalidMfaCode);
        }
        let binding = Binding {
            user_id: Some(record.id),
            bound_to: Some(&claims.jti),
        };
        self.deps
            .passkeys
            .begin_assertion(Purpose::SecondFactor, binding, &passkeys, &[])
            .await
    }

    /// Finishes the second step with a passkey. Failures count toward the
    /// account's lockout, as wrong codes do.
    pub async fn finish_passkey_second_factor(
        &self,
        mfa_token: &str,
        ceremony: &str,
        credential: &PublicKeyCredential,
        meta: &RequestMeta,
    ) -> Result<LoginOutcome, CoreError> {
        let now = self.now();
        let (claims, record) = self.mfa_account(mfa_token).await?;
        let attempt = self
            .deps
            .lockout
            .reserve(self.deps.lockout.key_of(&record)?)
            .await?;
        let binding = Binding {
            user_id: Some(record.id),
            bound_to: Some(&claims.jti),
        };
        let used = self
            .deps
            .passkeys
            .finish_assertion(ceremony, Purpose::SecondFactor, binding, credential)
            .await;
        let passkey = match used {
            Ok(p) => p,
            Err(Refusal::Store(e)) => return Err(e),
            Err(refusal) => {
                tracing::info!(reason = %refusal, "passkey second factor refused");
                self.deps
                    .second_factor
                    .audit_failure(record.id, "login_passkey", meta)
                    .await;
                attempt
                    .failed(Some(record.id), json!({"step": "mfa_passkey"}), meta)
                    .await?;
                return Err(CoreError::InvalidMfaCode);
            }
        };
        let user = self.deps.directory.kernel.to_user(&record)?;
        let details = json!({"second_factor": "passkey", "passkey_id": passkey.id});
        self.complete(user, attempt, details, meta, now).await
    }
}

fn refusal_reason(refusal: &Refusal) -> &'static str {
    match refusal {
        Refusal::Ceremony => "ceremony",
        Refusal::Credential => "unknown_credential",
        Refusal::Verification(_) => "verification",
        Refusal::Counter => "counter",
        Refusal::Store(_) => "store",
    }
}
