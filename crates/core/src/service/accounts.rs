//! Accounts: registration, the operator's first admin, and the caller's own
//! profile, password and logins. [`AccountFactory`] creates accounts for
//! registration and for user administration alike.

use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use uuid::Uuid;

use super::kernel::Directory;
use super::lockout::Lockout;
use super::logins::Logins;
use super::mail::{EmailChanges, EmailVerification, Postman};
use super::principal::Principal;
use crate::CoreError;
use crate::audit::{AuditEvent, EventKind, Outcome, RequestMeta};
use crate::auth::password::{self, PasswordHasher};
use crate::clock::unix_ms;
use crate::mail::Message;
use crate::ports::{NewUser, PasskeyRepo, PasswordChange, SessionInfo, UserChanges, UserRecord};
use crate::rbac::{Permission, Role};
use crate::user::{Email, FieldProblem, FullName, User, Username, mask_email};

/// A registration request, not yet validated.
#[derive(Debug)]
pub struct Registration {
    pub username: String,
    pub email: String,
    pub password: SecretString,
    pub full_name: Option<String>,
}

/// `PUT /users/me`: `None` leaves a field unchanged.
#[derive(Debug, Default)]
pub struct ProfileUpdate {
    /// `Some(None)` (JSON `null`) clears the name.
    pub full_name: Option<Option<String>>,
    pub email: Option<String>,
}

/// What a profile update did.
#[derive(Debug)]
pub struct ProfileOutcome {
    pub user: User,
    /// A new address was asked for: it applies once confirmed.
    pub email_change_requested: bool,
}

/// The validated fields of a registration.
struct Checked {
    username: Username,
    email: Email,
    full_name: Option<FullName>,
}

fn check(input: &Registration) -> Result<Checked, CoreError> {
    let mut problems = Vec::new();
    let username = Username::parse(&input.username)
        .map_err(|p| problems.push(p))
        .ok();
    let email = Email::parse(&input.email)
        .map_err(|p| problems.push(p))
        .ok();
    let full_name = match input.full_name.as_deref().map(FullName::parse).transpose() {
        Ok(name) => name.flatten(),
        Err(p) => {
            problems.push(p);
            None
        }
    };
    match (username, email) {
        (Some(username), Some(email)) if problems.is_empty() => Ok(Checked {
            username,
            email,
            full_name,
        }),
        _ => Err(CoreError::Validation(problems)),
    }
}

/// Why a password is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialChange {
    /// The user changed it, proving the current one.
    Changed,
    /// Reset with a mailed token, spent with the change.
    Reset { token: Uuid },
    /// Removed: the account signs in with its passkeys alone.
    Removed,
}

impl CredentialChange {
    fn reason(self) -> &'static str {
        match self {
            CredentialChange::Changed => "password_changed",
            CredentialChange::Reset { .. } => "password_reset",
            CredentialChange::Removed => "password_removed",
        }
    }
}

/// What a new account is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Welcome {
    /// Nothing (made by an administrator: unverified until asked for).
    Nothing,
    /// A verification mail, stored with the account (registration).
    Verification,
    /// Nothing, and the address counts as verified (the operator's admin).
    Verified,
}

/// Creates accounts: validation, password policy, hashing, encryption.
#[derive(Debug, Clone)]
pub struct AccountFactory {
    pub directory: Directory,
    pub hasher: PasswordHasher,
    pub postman: Postman,
}

impl AccountFactory {
    /// Stores `new` as the password of the account `record` was read from,
    /// if its credentials did not change since: every login, earlier access
    /// token and API key of the user is revoked with it and a notice queued
    /// to the account's address (one transaction), each key audited as
    /// `api_key_revoked` with the change's reason. `Ok(false)` when a
    /// concurrent change came first (or a reset's token was spent).
    pub async fn set_password(
        &self,
        record: &UserRecord,
        new: &SecretString,
        why: CredentialChange,
        meta: &RequestMeta,
    ) -> Result<bool, CoreError> {
        let hash = self.hasher.hash(new).await?;
        self.store_hash(record, hash, why, meta).await
    }

    /// [`AccountFactory::set_password`] with no password: the store keeps
    /// it only while the account has a passkey to sign in with.
    pub async fn clear_password(
        &self,
        record: &UserRecord,
        meta: &RequestMeta,
    ) -> Result<bool, CoreError> {
        self.store_hash(record, String::new(), CredentialChange::Removed, meta)
            .await
    }

    async fn store_hash(
        &self,
        record: &UserRecord,
        hash: String,
        why: CredentialChange,
        meta: &RequestMeta,
    ) -> Result<bool, CoreError> {
        let (notice, spends) = match why {
            CredentialChange::Changed | CredentialChange::Removed => {
                (Message::PasswordChanged, None)
            }
            CredentialChange::Reset { token } => (Message::PasswordReset, Some(token)),
        };
        let change = PasswordChange {
            user_id: record.id,
            expected_version: record.auth_version,
            hash,
            now: self.directory.kernel.now_ms(),
            spends,
            notice: Some(self.postman.notice_to(record, notice)?),
        };
        let Some(revoked) = self.directory.users.change_password(&change).await? else {
            return Ok(false);
        };
        self.directory.invalidate(record.id).await;
        for key_id in revoked {
            self.directory
                .kernel
                .audit(
                    AuditEvent::new(EventKind::ApiKeyRevoked, Outcome::Success, meta)
                        .actor(record.id)
                        .target(record.id)
                        .details(json!({"key_id": key_id, "reason": why.reason()})),
                )
                .await;
        }
        Ok(true)
    }

    /// Validates and stores a new account with `role`, and what `welcome`
    /// says with it. Duplicates fail with [`CoreError::RegistrationFailed`]
    /// after the same work as a success, so neither the answer nor its
    /// timing tells whether an account exists.
    pub async fn create(
        &self,
        input: Registration,
        role: Role,
        welcome: Welcome,
    ) -> Result<User, CoreError> {
        let fields = check(&input)?;
        password::check_policy(input.password.expose_secret())
            .map_err(|w| CoreError::WeakPassword(w.0))?;
        let password_hash = self.hasher.hash(&input.password).await?;
        self.store_account(fields, password_hash, role, welcome)
            .await
    }

    /// A self-registered account without a password: it gets its first
    /// passkey once its address is verified (`Passkeys::begin_signup`).
    pub async fn create_passwordless(&self, input: Registration) -> Result<User, CoreError> {
        let fields = check(&input)?;
        self.store_account(fields, String::new(), Role::User, Welcome::Verification)
            .await
    }

    async fn store_account(
        &self,
        fields: Checked,
        password_hash: String,
        role: Role,
        welcome: Welcome,
    ) -> Result<User, CoreError> {
        let kernel = &self.directory.kernel;
        let now = kernel.now_ms();
        let record = UserRecord {
            id: Uuid::now_v7(),
            username: fields.username.as_str().to_owned(),
            email_enc: kernel.cipher.encrypt("email", fields.email.as_str())?,
            full_name_enc: fields
                .full_name
                .as_ref()
                .map(|n| kernel.cipher.encrypt("full_name", n.as_str()))
                .transpose()?,
            password_hash,
            role: role.as_str().to_owned(),
            is_active: true,
            email_verified: welcome == Welcome::Verified,
            mfa_enabled: false,
            auth_version: 0,
            created_at: now,
            updated_at: now,
        };
        let verification = match welcome {
            Welcome::Verification => Some(EmailVerification::verification_for(
                &self.postman,
                &record,
                fields.email.as_str(),
            )?),
            Welcome::Nothing | Welcome::Verified => None,
        };
        let new = NewUser {
            username_key: fields.username.key(),
            email_index: kernel.email_index(&fields.email),
            record,
            verification,
        };
        match self.directory.users.create(&new).await {
            Ok(()) => {
                // A new user changes the lists.
                self.directory.invalidate(new.record.id).await;
                kernel.to_user(&new.record)
            }
            Err(CoreError::Conflict) => Err(CoreError::RegistrationFailed),
            Err(e) => Err(e),
        }
    }
}

#[derive(Debug)]
pub struct Accounts {
    factory: AccountFactory,
    logins: Logins,
    lockout: Lockout,
    email_changes: EmailChanges,
    passkeys: Arc<dyn PasskeyRepo>,
}

impl Accounts {
    pub fn new(
        factory: AccountFactory,
        logins: Logins,
        lockout: Lockout,
        email_changes: EmailChanges,
        passkeys: Arc<dyn PasskeyRepo>,
    ) -> Self {
        Self {
            factory,
            logins,
            lockout,
            email_changes,
            passkeys,
        }
    }

    fn directory(&self) -> &Directory {
        &self.factory.directory
    }

    async fn audit(&self, event: AuditEvent) {
        self.directory().kernel.audit(event).await;
    }

    /// Self-service registration: always role `user`; the verification
    /// mail is queued with the account.
    pub async fn register(
        &self,
        input: Registration,
        meta: &RequestMeta,
    ) -> Result<User, CoreError> {
        let masked = mask_email(input.email.trim());
        let created = self
            .factory
            .create(input, Role::User, Welcome::Verification)
            .await;
        self.registered(created, &masked, meta).await
    }

    /// Self-service registration without a password (`input.password` is
    /// ignored): the account signs in only once its address is verified
    /// and its first passkey added with the mailed token.
    pub async fn register_passwordless(
        &self,
        input: Registration,
        meta: &RequestMeta,
    ) -> Result<User, CoreError> {
        let masked = mask_email(input.email.trim());
        let created = self.factory.create_passwordless(input).await;
        self.registered(created, &masked, meta).await
    }

    async fn registered(
        &self,
        created: Result<User, CoreError>,
        masked: &str,
        meta: &RequestMeta,
    ) -> Result<User, CoreError> {
        match created {
            Ok(user) => {
                self.audit(
                    AuditEvent::new(EventKind::UserRegistered, Outcome::Success, meta)
                        .actor(user.id)
                        .target(user.id)
                        .details(json!({"email": masked, "username": user.username})),
                )
                .await;
                Ok(user)
            }
            Err(CoreError::RegistrationFailed) => {
                self.audit(
                    AuditEvent::new(EventKind::UserRegistered, Outcome::Failure, meta)
                        .details(json!({"email": masked, "reason": "duplicate"})),
                )
                .await;
                Err(CoreError::RegistrationFailed)
            }
            Err(e) => Err(e),
        }
    }

    /// Operator bootstrap (`gatehouse create-admin`): whoever runs the
    /// binary against the database already holds every power, and vouches
    /// for the address (it counts as verified).
    pub async fn create_admin(&self, input: Registration) -> Result<User, CoreError> {
        let user = self
            .factory
            .create(input, Role::Admin, Welcome::Verified)
            .await?;
        self.audit(
            AuditEvent::new(
                EventKind::UserCreated,
                Outcome::Success,
                &RequestMeta::default(),
            )
            .target(user.id)
            .details(json!({"role": "admin", "via": "create-admin"})),
        )
        .await;
        Ok(user)
    }

    /// The caller's profile changes, validated and encrypted, and the new
    /// address asked for (never applied here: it waits for confirmation).
    fn profile_changes(
        &self,
        principal: &Principal,
        update: &ProfileUpdate,
    ) -> Result<(UserChanges, Option<Email>), CoreError> {
        let kernel = &self.directory().kernel;
        let mut changes = UserChanges::default();
        let mut problems: Vec<FieldProblem> = Vec::new();
        if let Some(name) = &update.full_name {
            match kernel.encrypt_name(name.as_deref()) {
                Ok(enc) => changes.full_name_enc = Some(enc),
                Err(CoreError::Validation(mut p)) => problems.append(&mut p),
                Err(e) => return Err(e),
            }
        }
        let mut new_email = None;
        if let Some(raw) = &update.email {
            match Email::parse(raw) {
                Ok(email) if email.as_str() != principal.user.email => new_email = Some(email),
                Ok(_) => {}
                Err(p) => problems.push(p),
            }
        }
        if problems.is_empty() {
            Ok((changes, new_email))
        } else {
            Err(CoreError::Validation(problems))
        }
    }

    /// Applies a new name at once. A new email is only *requested* (and
    /// only with a recently proved factor): it is confirmed from the new
    /// address before it applies, and the answer is the same whether or not
    /// another account has it (no probing).
    pub async fn update_me(
        &self,
        principal: &Principal,
        update: ProfileUpdate,
        meta: &RequestMeta,
    ) -> Result<ProfileOutcome, CoreError> {
        principal.require(Permission::SelfWrite)?;
        if update.email.is_some() {
            principal.require_login()?;
        }
        let (changes, new_email) = self.profile_changes(principal, &update)?;
        // A new address can take over the account (password resets go
        // there): it takes a recently proved factor; a new name does not.
        if new_email.is_some() {
            self.directory().kernel.require_recent_auth(principal)?;
        }
        let id = principal.id();
        let now = self.directory().kernel.now_ms();
        if !self.directory().users.update(id, &changes, now).await? {
            return Err(CoreError::NotFound);
        }
        let user = self.directory().after_write(id).await?;
        if update.full_name.is_some() {
            self.audit(
                AuditEvent::new(EventKind::UserUpdated, Outcome::Success, meta)
                    .actor(id)
                    .target(id)
                    .details(json!({ "fields": ["full_name"] })),
            )
            .await;
        }
        if let Some(new) = &new_email {
            self.email_changes.request(&principal.user, new).await?;
            self.audit(
                AuditEvent::new(EventKind::UserUpdated, Outcome::Success, meta)
                    .actor(id)
                    .target(id)
                    .details(json!({ "email_change": "requested" })),
            )
            .await;
        }
        Ok(ProfileOutcome {
            user,
            email_change_requested: new_email.is_some(),
        })
    }

    /// Changes the caller's password: revokes every login of the user and
    /// every access token issued before (credential version bump).
    pub async fn change_password(
        &self,
        principal: &Principal,
        current: &SecretString,
        new: &SecretString,
        meta: &RequestMeta,
    ) -> Result<(), CoreError> {
        principal.require(Permission::SelfWrite)?;
        principal.require_login()?;
        let id = principal.id();
        let record = self.directory().record(id).await?;
        // A wrong current password is a failed proof of the secret: it
        // counts toward the lockout like a wrong password at login.
        let attempt = self.lockout.reserve(self.lockout.key_of(&record)?).await?;
        if !self
            .factory
            .hasher
            .verify(current, Some(&record.password_hash))
            .await?
        {
            attempt
                .failed(Some(id), json!({"step": "change_password"}), meta)
                .await?;
            self.audit(
                AuditEvent::new(EventKind::PasswordChanged, Outcome::Failure, meta)
                    .actor(id)
                    .target(id)
                    .details(json!({"reason": "wrong_current_password"})),
            )
            .await;
            return Err(CoreError::WrongPassword);
        }
        attempt.passed().await?;
        if current.expose_secret() == new.expose_secret() {
            return Err(CoreError::WeakPassword(
                "The new password must differ from the current one",
            ));
        }
        password::check_policy(new.expose_secret()).map_err(|w| CoreError::WeakPassword(w.0))?;
        // A concurrent change won: the password checked above is gone.
        if !self
            .factory
            .set_password(&record, new, CredentialChange::Changed, meta)
            .await?
        {
            return Err(CoreError::WrongPassword);
        }
        self.audit(
            AuditEvent::new(EventKind::PasswordChanged, Outcome::Success, meta)
                .actor(id)
                .target(id),
        )
        .await;
        Ok(())
    }

    /// Gives an account without a password one (recently re-authenticated,
    /// e.g. with a passkey). Like a change, it ends every login.
    pub async fn add_password(
        &self,
        principal: &Principal,
        new: &SecretString,
        meta: &RequestMeta,
    ) -> Result<(), CoreError> {
        let record = self.own_credentials(principal).await?;
        if !record.password_hash.is_empty() {
            return Err(CoreError::Conflict);
        }
        password::check_policy(new.expose_secret()).map_err(|w| CoreError::WeakPassword(w.0))?;
        if !self
            .factory
            .set_password(&record, new, CredentialChange::Changed, meta)
            .await?
        {
            return Err(CoreError::Conflict);
        }
        self.password_event(principal.id(), "added", meta).await;
        Ok(())
    }

    /// Removes the caller's password: from then on the account signs in
    /// with its passkeys alone (it must have one, checked again in the
    /// store's transaction). Like a change, it ends every login.
    pub async fn remove_password(
        &self,
        principal: &Principal,
        meta: &RequestMeta,
    ) -> Result<(), CoreError> {
        let record = self.own_credentials(principal).await?;
        if record.password_hash.is_empty() {
            return Err(CoreError::NotFound);
        }
        if self.passkeys.passkeys_of(record.id).await?.is_empty()
            || !self.factory.clear_password(&record, meta).await?
        {
            return Err(CoreError::LastFactor);
        }
        self.password_event(principal.id(), "removed", meta).await;
        Ok(())
    }

    /// The caller's stored account, for a change to its sign-in factors: a
    /// person's login (never a key) that proved a factor recently.
    async fn own_credentials(&self, principal: &Principal) -> Result<UserRecord, CoreError> {
        principal.require(Permission::SelfWrite)?;
        principal.require_login()?;
        self.directory().kernel.require_recent_auth(principal)?;
        self.directory().record(principal.id()).await
    }

    async fn password_event(&self, id: Uuid, what: &str, meta: &RequestMeta) {
        self.audit(
            AuditEvent::new(EventKind::PasswordChanged, Outcome::Success, meta)
                .actor(id)
                .target(id)
                .details(json!({ "password": what })),
        )
        .await;
    }

    pub async fn my_sessions(&self, principal: &Principal) -> Result<Vec<SessionInfo>, CoreError> {
        principal.require(Permission::SelfRead)?;
        principal.require_login()?;
        let now = self.directory().kernel.now_ms();
        self.logins.sessions.list_active(principal.id(), now).await
    }

    /// Revokes one of the caller's logins; another user's session is
    /// reported as absent (no probing of ids).
    pub async fn revoke_my_session(
        &self,
        principal: &Principal,
        session_id: Uuid,
        meta: &RequestMeta,
    ) -> Result<(), CoreError> {
        principal.require(Permission::SelfWrite)?;
        principal.require_login()?;
        if self.logins.sessions.owner(session_id).await? != Some(principal.id()) {
            return Err(CoreError::NotFound);
        }
        let now = self.directory().kernel.now();
        self.logins.revoke(session_id, now).await?;
        self.audit(
            AuditEvent::new(EventKind::SessionRevoked, Outcome::Success, meta)
                .actor(principal.id())
                .target(principal.id())
                .details(json!({"session_id": session_id})),
        )
        .await;
        Ok(())
    }

    /// Revokes every login of the caller but the one the request was made
    /// with ("sign out everywhere else"); how many were revoked.
    pub async fn revoke_other_sessions(
        &self,
        principal: &Principal,
        meta: &RequestMeta,
    ) -> Result<usize, CoreError> {
        principal.require(Permission::SelfWrite)?;
        principal.require_login()?;
        let now = self.directory().kernel.now();
        let active = self
            .logins
            .sessions
            .list_active(principal.id(), unix_ms(now))
            .await?;
        let mut revoked = 0;
        for session in active.iter().filter(|s| Some(s.id) != principal.session_id) {
            self.logins.revoke(session.id, now).await?;
            self.audit(
                AuditEvent::new(EventKind::SessionRevoked, Outcome::Success, meta)
                    .actor(principal.id())
                    .target(principal.id())
                    .details(json!({"session_id": session.id})),
            )
            .await;
            revoked += 1;
        }
        Ok(revoked)
    }
}
