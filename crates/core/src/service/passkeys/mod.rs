//! Passkeys: registering them (signed in, recently re-authenticated),
//! listing, renaming and removing them. Signing in with one, and using one
//! as the second factor or to re-authenticate, are sign-in's
//! (`sign_in::passkey`); both go through the [`Verifier`].

mod verifier;

use std::sync::Arc;

use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;
use webauthn_rs::prelude::{
    CreationChallengeResponse, PublicKeyCredential, RegisterPublicKeyCredential,
};

pub use verifier::{
    Binding, CEREMONY_TTL, Challenge, Purpose, Refusal, Verifier, credential_key, transports_of,
};
pub use webauthn_rs::prelude::RequestChallengeResponse;

use super::kernel::Directory;
use super::logins::{Logins, TokenPair};
use super::mail::{EmailVerification, Postman, Proof};
use super::principal::Principal;
use crate::CoreError;
use crate::audit::{AuditEvent, EventKind, Outcome, RequestMeta};
use crate::clock::from_unix_ms;
use crate::mail::Message;
use crate::ports::{PasskeyRecord, Removal};
use crate::rbac::Permission;
use crate::user::{FieldProblem, User};

/// Passkeys one account may have.
pub const MAX_PASSKEYS: usize = 20;

/// A passkey as its owner sees it (never its key material).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasskeyView {
    pub id: Uuid,
    pub name: String,
    pub created_at: OffsetDateTime,
    pub last_used_at: Option<OffsetDateTime>,
    /// Whether the authenticator may sync it to other devices.
    pub backup_eligible: bool,
    /// Whether it is synced (backed up) now, as last reported.
    pub backed_up: bool,
    pub transports: Vec<String>,
}

fn view(r: &PasskeyRecord) -> PasskeyView {
    PasskeyView {
        id: r.id,
        name: r.name.clone(),
        created_at: from_unix_ms(r.created_at),
        last_used_at: r.last_used_at.map(from_unix_ms),
        backup_eligible: r.backup_eligible,
        backed_up: r.backed_up,
        transports: r
            .transports
            .split(',')
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .collect(),
    }
}

/// A passkey's name: 1 to 64 printable characters, trimmed.
fn passkey_name(raw: Option<&str>) -> Result<String, CoreError> {
    let name = raw.map_or("Passkey", str::trim);
    if name.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
        return Err(CoreError::Validation(vec![FieldProblem::new(
            "name",
            "must be 1 to 64 printable characters",
        )]));
    }
    Ok(name.to_owned())
}

/// Parses the browser's JSON (`PublicKeyCredential.toJSON()`) of a
/// registration; a shape that is not one is a field problem.
pub fn registration_json(
    value: serde_json::Value,
) -> Result<RegisterPublicKeyCredential, CoreError> {
    serde_json::from_value(value).map_err(|_| {
        CoreError::Validation(vec![FieldProblem::new(
            "credential",
            "must be the browser's PublicKeyCredential JSON of a registration",
        )])
    })
}

/// Parses the browser's JSON of an assertion.
pub fn assertion_json(value: serde_json::Value) -> Result<PublicKeyCredential, CoreError> {
    serde_json::from_value(value).map_err(|_| {
        CoreError::Validation(vec![FieldProblem::new(
            "credential",
            "must be the browser's PublicKeyCredential JSON of an assertion",
        )])
    })
}

/// A refused registration: the store's own errors as they are, anything
/// else one answer (the log says which).
fn rejected(refusal: Refusal) -> CoreError {
    match refusal {
        Refusal::Store(e) => e,
        other => {
            tracing::info!(reason = %other, "passkey registration refused");
            CoreError::PasskeyRejected
        }
    }
}

/// Managing passkeys takes `self:write` and a person's login, never a key.
fn check(principal: &Principal) -> Result<(), CoreError> {
    principal.require(Permission::SelfWrite)?;
    principal.require_login()
}

impl Passkeys {
    /// Adding or removing a passkey also needs a recent proof of a factor.
    fn check_sensitive(&self, principal: &Principal) -> Result<(), CoreError> {
        check(principal)?;
        self.directory.kernel.require_recent_auth(principal)
    }
}

/// The login a ceremony is bound to.
fn login_of(principal: &Principal) -> Result<String, CoreError> {
    principal
        .session_id
        .map(|sid| sid.to_string())
        .ok_or(CoreError::InvalidToken)
}

/// The caller's passkeys, and the first one of an account made without a
/// password.
#[derive(Debug)]
pub struct Passkeys {
    verifier: Verifier,
    directory: Directory,
    postman: Postman,
    verification: Arc<EmailVerification>,
    logins: Logins,
}

impl Passkeys {
    pub fn new(
        verifier: Verifier,
        directory: Directory,
        postman: Postman,
        verification: Arc<EmailVerification>,
        logins: Logins,
    ) -> Self {
        Self {
            verifier,
            directory,
            postman,
            verification,
            logins,
        }
    }

    async fn audit(&self, event: AuditEvent) {
        self.directory.kernel.audit(event).await;
    }

    /// Options for `navigator.credentials.create()`, and the ceremony that
    /// [`Passkeys::finish_registration`] needs.
    pub async fn begin_registration(
        &self,
        principal: &Principal,
    ) -> Result<Challenge<CreationChallengeResponse>, CoreError> {
        self.check_sensitive(principal)?;
        let existing = self.verifier.repo().passkeys_of(principal.id()).await?;
        if existing.len() >= MAX_PASSKEYS {
            return Err(CoreError::Validation(vec![FieldProblem::new(
                "passkeys",
                format!("an account may have at most {MAX_PASSKEYS} passkeys"),
            )]));
        }
        let user = &principal.user;
        self.verifier
            .begin_registration(
                user.id,
                &user.email,
                user.full_name.as_deref().unwrap_or(&user.username),
                &existing,
                &login_of(principal)?,
            )
            .await
    }

    /// Verifies the browser's response and stores the passkey. A spent,
    /// expired or foreign ceremony, or a response that does not verify,
    /// is [`CoreError::PasskeyRejected`].
    pub async fn finish_registration(
        &self,
        principal: &Principal,
        ceremony: &str,
        name: Option<&str>,
        credential: &RegisterPublicKeyCredential,
        meta: &RequestMeta,
    ) -> Result<PasskeyView, CoreError> {
        self.check_sensitive(principal)?;
        let name = passkey_name(name)?;
        let sid = login_of(principal)?;
        let binding = Binding {
            user_id: Some(principal.id()),
            bound_to: Some(&sid),
        };
        let passkey = self
            .verifier
            .finish_registration(ceremony, binding, credential)
            .await
            .map_err(rejected)?;
        let transports = transports_of(credential);
        let record = self
            .store(&principal.user, passkey, name, transports, meta)
            .await?;
        Ok(view(&record))
    }

    /// Stores a verified new passkey of `user`, audits it and mails the
    /// notice.
    async fn store(
        &self,
        user: &User,
        passkey: webauthn_rs::prelude::Passkey,
        name: String,
        transports: String,
        meta: &RequestMeta,
    ) -> Result<PasskeyRecord, CoreError> {
        let (json, mac) = self.verifier.close(user.id, &passkey)?;
        let (sign_count, backup_eligible, backed_up) = verifier::facts(&passkey);
        let record = PasskeyRecord {
            id: Uuid::now_v7(),
            user_id: user.id,
            credential_id: credential_key(passkey.cred_id()),
            name,
            credential: json,
            mac,
            sign_count,
            backup_eligible,
            backed_up,
            transports,
            created_at: self.directory.kernel.now_ms(),
            last_used_at: None,
        };
        self.verifier.repo().add_passkey(&record).await?;
        self.audit(
            AuditEvent::new(EventKind::PasskeyAdded, Outcome::Success, meta)
                .actor(user.id)
                .target(user.id)
                .details(json!({"passkey_id": record.id, "name": record.name})),
        )
        .await;
        // Queued right after: the passkey port has no transaction to share.
        let notice = Message::PasskeyAdded {
            name: record.name.clone(),
        };
        self.postman.send_notice(user, notice).await;
        Ok(record)
    }

    /// The account a verification proof names, if it is one made without
    /// a password and still without a passkey, and the token's binding.
    async fn signup_account(
        &self,
        proof: &Proof,
        meta: &RequestMeta,
    ) -> Result<(User, String), CoreError> {
        let (record, token_id) = self.verification.account_of(proof, meta).await?;
        let passkeys = self.verifier.repo().passkeys_of(record.id).await?;
        if !record.password_hash.is_empty() || !passkeys.is_empty() {
            return Err(CoreError::InvalidMailToken);
        }
        let user = self.directory.kernel.to_user(&record)?;
        Ok((user, format!("signup:{token_id}")))
    }

    /// Options for the first passkey of an account registered without a
    /// password, with the token (or code) its verification mail carried.
    /// The token is not spent until [`Passkeys::finish_signup`] succeeds.
    pub async fn begin_signup(
        &self,
        proof: &Proof,
        meta: &RequestMeta,
    ) -> Result<Challenge<CreationChallengeResponse>, CoreError> {
        let (user, bound_to) = self.signup_account(proof, meta).await?;
        let display = user.full_name.as_deref().unwrap_or(&user.username);
        self.verifier
            .begin_registration(user.id, &user.email, display, &[], &bound_to)
            .await
    }

    /// Stores the first passkey, spends the verification (the address is
    /// verified) and signs the new account in.
    pub async fn finish_signup(
        &self,
        proof: &Proof,
        ceremony: &str,
        name: Option<&str>,
        credential: &RegisterPublicKeyCredential,
        meta: &RequestMeta,
    ) -> Result<(TokenPair, User), CoreError> {
        let name = passkey_name(name)?;
        let (user, bound_to) = self.signup_account(proof, meta).await?;
        let binding = Binding {
            user_id: Some(user.id),
            bound_to: Some(&bound_to),
        };
        let passkey = self
            .verifier
            .finish_registration(ceremony, binding, credential)
            .await
            .map_err(rejected)?;
        let transports = transports_of(credential);
        let record = self.store(&user, passkey, name, transports, meta).await?;
        if let Err(e) = self.verification.confirm(proof, meta).await {
            // Spent meanwhile by another request: this one adds nothing.
            self.verifier
                .repo()
                .remove_passkey(user.id, record.id)
                .await?;
            return Err(e);
        }
        let user = self.directory.after_write(user.id).await?;
        let pair = self
            .logins
            .start(&user, meta, self.directory.kernel.now())
            .await?;
        Ok((pair, user))
    }

    pub async fn list(&self, principal: &Principal) -> Result<Vec<PasskeyView>, CoreError> {
        principal.require(Permission::SelfRead)?;
        principal.require_login()?;
        let records = self.verifier.repo().passkeys_of(principal.id()).await?;
        Ok(records.iter().map(view).collect())
    }

    pub async fn rename(
        &self,
        principal: &Principal,
        id: Uuid,
        name: &str,
    ) -> Result<PasskeyView, CoreError> {
        check(principal)?;
        let name = passkey_name(Some(name))?;
        let repo = self.verifier.repo();
        if !repo.rename_passkey(principal.id(), id, &name).await? {
            return Err(CoreError::NotFound);
        }
        let records = repo.passkeys_of(principal.id()).await?;
        records
            .iter()
            .find(|r| r.id == id)
            .map(view)
            .ok_or(CoreError::NotFound)
    }

    /// Removes a passkey, unless it is the last way into an account without
    /// a password ([`CoreError::LastFactor`]).
    pub async fn remove(
        &self,
        principal: &Principal,
        id: Uuid,
        meta: &RequestMeta,
    ) -> Result<(), CoreError> {
        self.check_sensitive(principal)?;
        match self
            .verifier
            .repo()
            .remove_passkey(principal.id(), id)
            .await?
        {
            Removal::Removed => {}
            Removal::NotFound => return Err(CoreError::NotFound),
            Removal::LastFactor => return Err(CoreError::LastFactor),
        }
        self.audit(
            AuditEvent::new(EventKind::PasskeyRemoved, Outcome::Success, meta)
                .actor(principal.id())
                .target(principal.id())
                .details(json!({"passkey_id": id})),
        )
        .await;
        Ok(())
    }
}
