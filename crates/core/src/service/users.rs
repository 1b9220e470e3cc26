//! User management use cases (same service, same ports as authentication):
//! the caller's own account, and administration of others. Route guards
//! demand the permission; the rules that depend on *whom* an action targets
//! (admin-only grants, no self-delete) are checked here.

use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use uuid::Uuid;

use futures_util::StreamExt;
use futures_util::stream::BoxStream;

use super::auth::{AuthService, Principal, Registration, millis, record_to_user};
use crate::CoreError;
use crate::audit::{AuditEvent, EventKind, Outcome, RequestMeta};
use crate::auth::password;
use crate::ports::{SessionInfo, UserChanges, UserFilter};
use crate::rbac::Role;
use crate::user::{Email, FieldProblem, FullName, User};

/// `PUT /users/me`: `None` leaves a field unchanged.
#[derive(Debug, Default)]
pub struct ProfileUpdate {
    /// `Some(None)` (JSON `null`) clears the name.
    pub full_name: Option<Option<String>>,
    pub email: Option<String>,
}

/// `PATCH /users/{id}`.
#[derive(Debug, Default)]
pub struct AdminPatch {
    pub role: Option<Role>,
    pub is_active: Option<bool>,
    pub full_name: Option<Option<String>>,
}

/// `POST /users`.
#[derive(Debug)]
pub struct NewAccount {
    pub registration: Registration,
    pub role: Role,
}

#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub q: Option<String>,
    pub role: Option<Role>,
    pub is_active: Option<bool>,
}

#[derive(Debug, Clone)]
pub enum UserPage {
    Paged {
        users: Vec<User>,
        total: u64,
        page: u64,
        per_page: u64,
    },
    Keyset {
        users: Vec<User>,
        next_cursor: Option<Uuid>,
    },
}

fn filter(q: &ListQuery) -> UserFilter {
    UserFilter {
        username_prefix: q
            .q
            .as_ref()
            .map(|s| s.trim().to_ascii_lowercase())
            .filter(|s| !s.is_empty()),
        role: q.role.map(|r| r.as_str().to_owned()),
        is_active: q.is_active,
    }
}

impl AuthService {
    fn encrypt_name(&self, name: Option<&str>) -> Result<Option<String>, CoreError> {
        match name.map(FullName::parse).transpose() {
            Ok(parsed) => parsed
                .flatten()
                .map(|n| self.cipher.encrypt("full_name", n.as_str()))
                .transpose(),
            Err(p) => Err(CoreError::Validation(vec![p])),
        }
    }

    async fn load(&self, id: Uuid) -> Result<User, CoreError> {
        let record = self
            .deps
            .users
            .by_id(id)
            .await?
            .ok_or(CoreError::NotFound)?;
        self.to_user(&record)
    }

    /// Reloads a user after a write and refreshes the cache everywhere.
    async fn after_write(&self, id: Uuid) -> Result<User, CoreError> {
        self.deps.cache.invalidate(id).await;
        self.load(id).await
    }

    pub async fn update_me(
        &self,
        principal: &Principal,
        update: ProfileUpdate,
        meta: &RequestMeta,
    ) -> Result<User, CoreError> {
        let mut changes = UserChanges::default();
        let mut problems: Vec<FieldProblem> = Vec::new();
        if let Some(name) = &update.full_name {
            match self.encrypt_name(name.as_deref()) {
                Ok(enc) => changes.full_name_enc = Some(enc),
                Err(CoreError::Validation(mut p)) => problems.append(&mut p),
                Err(e) => return Err(e),
            }
        }
        if let Some(raw) = &update.email {
            match Email::parse(raw) {
                Ok(email) if email.as_str() != principal.user.email => {
                    changes.email = Some((
                        self.cipher.encrypt("email", email.as_str())?,
                        self.blind.of("email", email.as_str()),
                    ));
                }
                Ok(_) => {}
                Err(p) => problems.push(p),
            }
        }
        if !problems.is_empty() {
            return Err(CoreError::Validation(problems));
        }
        let id = principal.id();
        match self
            .deps
            .users
            .update(id, &changes, millis(self.now()))
            .await
        {
            Ok(true) => {}
            Ok(false) => return Err(CoreError::NotFound),
            // Same vague answer as registration: no probing for emails.
            Err(CoreError::Conflict) => return Err(CoreError::RegistrationFailed),
            Err(e) => return Err(e),
        }
        let user = self.after_write(id).await?;
        let fields: Vec<&str> = [
            update.full_name.as_ref().map(|_| "full_name"),
            changes.email.as_ref().map(|_| "email"),
        ]
        .into_iter()
        .flatten()
        .collect();
        self.audit(
            AuditEvent::new(EventKind::UserUpdated, Outcome::Success, meta)
                .actor(id)
                .target(id)
                .details(json!({ "fields": fields })),
        )
        .await;
        Ok(user)
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
        let id = principal.id();
        let record = self
            .deps
            .users
            .by_id(id)
            .await?
            .ok_or(CoreError::NotFound)?;
        if !self
            .hasher
            .verify(current, Some(&record.password_hash))
            .await?
        {
            self.audit(
                AuditEvent::new(EventKind::PasswordChanged, Outcome::Failure, meta)
                    .actor(id)
                    .target(id)
                    .details(json!({"reason": "wrong_current_password"})),
            )
            .await;
            return Err(CoreError::WrongPassword);
        }
        if current.expose_secret() == new.expose_secret() {
            return Err(CoreError::WeakPassword(
                "The new password must differ from the current one",
            ));
        }
        password::check_policy(new.expose_secret()).map_err(|w| CoreError::WeakPassword(w.0))?;
        let hash = self.hasher.hash(new).await?;
        let now = self.now();
        self.deps
            .users
            .change_password(id, &hash, millis(now))
            .await?;
        self.deps.sessions.revoke_all(id, millis(now)).await?;
        self.deps.cache.invalidate(id).await;
        self.audit(
            AuditEvent::new(EventKind::PasswordChanged, Outcome::Success, meta)
                .actor(id)
                .target(id),
        )
        .await;
        Ok(())
    }

    pub async fn my_sessions(&self, principal: &Principal) -> Result<Vec<SessionInfo>, CoreError> {
        self.deps
            .sessions
            .list_active(principal.id(), millis(self.now()))
            .await
    }

    /// Revokes one of the caller's logins; another user's session is
    /// reported as absent (no probing of ids).
    pub async fn revoke_my_session(
        &self,
        principal: &Principal,
        session_id: Uuid,
        meta: &RequestMeta,
    ) -> Result<(), CoreError> {
        if self.deps.sessions.owner(session_id).await? != Some(principal.id()) {
            return Err(CoreError::NotFound);
        }
        self.revoke_session(session_id, self.now()).await?;
        self.audit(
            AuditEvent::new(EventKind::SessionRevoked, Outcome::Success, meta)
                .actor(principal.id())
                .target(principal.id())
                .details(json!({"session_id": session_id})),
        )
        .await;
        Ok(())
    }

    pub async fn get_user(&self, id: Uuid) -> Result<User, CoreError> {
        match self.current_user(id).await? {
            Some(user) => Ok(user.as_ref().clone()),
            None => Err(CoreError::NotFound),
        }
    }

    /// A page of users, served from the list cache when a previous identical
    /// request is still fresh (writes clear it).
    pub async fn list_users(
        &self,
        query: &ListQuery,
        page: Option<(u64, u64)>,
        keyset: Option<(Option<Uuid>, u64)>,
    ) -> Result<std::sync::Arc<UserPage>, CoreError> {
        let key = format!("{query:?}|{page:?}|{keyset:?}");
        if let Some(hit) = self.deps.cache.get_list(&key).await {
            return Ok(hit);
        }
        let result = std::sync::Arc::new(self.load_users(query, page, keyset).await?);
        self.deps.cache.put_list(key, result.clone()).await;
        Ok(result)
    }

    async fn load_users(
        &self,
        query: &ListQuery,
        page: Option<(u64, u64)>,
        keyset: Option<(Option<Uuid>, u64)>,
    ) -> Result<UserPage, CoreError> {
        let filter = filter(query);
        if let Some((after, limit)) = keyset {
            // One extra row tells whether another page follows.
            let mut rows = self
                .deps
                .users
                .list_after(&filter, after, limit + 1)
                .await?;
            let has_more = rows.len() as u64 > limit;
            rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
            let users = rows
                .iter()
                .map(|r| self.to_user(r))
                .collect::<Result<Vec<_>, _>>()?;
            let next_cursor = if has_more {
                users.last().map(|u| u.id)
            } else {
                None
            };
            return Ok(UserPage::Keyset { users, next_cursor });
        }
        let (page, per_page) = page.unwrap_or((1, 20));
        let offset = (page.saturating_sub(1)).saturating_mul(per_page);
        let (rows, total) = self.deps.users.list_page(&filter, offset, per_page).await?;
        let users = rows
            .iter()
            .map(|r| self.to_user(r))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(UserPage::Paged {
            users,
            total,
            page,
            per_page,
        })
    }

    /// Streams every matching user, decrypted, in id order (export).
    pub async fn export_users(
        &self,
        principal: &Principal,
        query: &ListQuery,
        format: &str,
        meta: &RequestMeta,
    ) -> BoxStream<'static, Result<User, CoreError>> {
        self.audit(
            AuditEvent::new(EventKind::DataExported, Outcome::Success, meta)
                .actor(principal.id())
                .details(json!({
                    "format": format,
                    "q": query.q,
                    "role": query.role.map(Role::as_str),
                    "is_active": query.is_active,
                })),
        )
        .await;
        let cipher = self.cipher.clone();
        self.deps
            .users
            .stream(&filter(query))
            .map(move |row| row.and_then(|r| record_to_user(&cipher, &r)))
            .boxed()
    }

    /// Creates an account with a chosen role; only admins create admins.
    pub async fn create_user(
        &self,
        principal: &Principal,
        account: NewAccount,
        meta: &RequestMeta,
    ) -> Result<User, CoreError> {
        if account.role == Role::Admin && principal.user.role != Role::Admin {
            return Err(CoreError::Forbidden);
        }
        let user = self
            .create_account(account.registration, account.role)
            .await?;
        self.audit(
            AuditEvent::new(EventKind::UserCreated, Outcome::Success, meta)
                .actor(principal.id())
                .target(user.id)
                .details(json!({"role": user.role.as_str()})),
        )
        .await;
        Ok(user)
    }

    /// Changes role, activity or name. Granting or removing `admin` takes an
    /// admin; deactivation ends the user's logins.
    pub async fn patch_user(
        &self,
        principal: &Principal,
        id: Uuid,
        patch: AdminPatch,
        meta: &RequestMeta,
    ) -> Result<User, CoreError> {
        let target = self.load(id).await?;
        let touches_admin = patch
            .role
            .is_some_and(|r| (r == Role::Admin) != (target.role == Role::Admin));
        if touches_admin && principal.user.role != Role::Admin {
            return Err(CoreError::Forbidden);
        }
        // Moderators manage users, not admins.
        if target.role == Role::Admin && principal.user.role != Role::Admin {
            return Err(CoreError::Forbidden);
        }
        let mut changes = UserChanges {
            role: patch.role.map(|r| r.as_str().to_owned()),
            is_active: patch.is_active,
            ..UserChanges::default()
        };
        if let Some(name) = &patch.full_name {
            changes.full_name_enc = Some(self.encrypt_name(name.as_deref())?);
        }
        let now = self.now();
        if !self.deps.users.update(id, &changes, millis(now)).await? {
            return Err(CoreError::NotFound);
        }
        if patch.is_active == Some(false) {
            self.deps.sessions.revoke_all(id, millis(now)).await?;
        }
        let user = self.after_write(id).await?;
        let actor = principal.id();
        let event = |kind| {
            AuditEvent::new(kind, Outcome::Success, meta)
                .actor(actor)
                .target(id)
        };
        if let Some(role) = patch.role.filter(|r| *r != target.role) {
            self.audit(
                event(EventKind::RoleChanged)
                    .details(json!({"from": target.role.as_str(), "to": role.as_str()})),
            )
            .await;
        }
        if patch.is_active == Some(false) && target.is_active {
            self.audit(event(EventKind::UserDeactivated)).await;
        }
        self.audit(event(EventKind::UserUpdated)).await;
        Ok(user)
    }

    /// Deletes a user (not oneself); their logins, keys and files go too.
    pub async fn delete_user(
        &self,
        principal: &Principal,
        id: Uuid,
        meta: &RequestMeta,
    ) -> Result<(), CoreError> {
        if id == principal.id() {
            return Err(CoreError::CannotDeleteSelf);
        }
        let target = self.load(id).await?;
        if target.role == Role::Admin && principal.user.role != Role::Admin {
            return Err(CoreError::Forbidden);
        }
        // File rows go with the user (ON DELETE CASCADE); their contents are
        // listed first and removed once the user is gone.
        let blobs = self.deps.files.storage_keys_of_owner(id).await?;
        if !self.deps.users.delete(id).await? {
            return Err(CoreError::NotFound);
        }
        super::files::remove_blobs(self.deps.blobs.as_ref(), &blobs).await;
        self.deps.cache.invalidate(id).await;
        self.audit(
            AuditEvent::new(EventKind::UserDeleted, Outcome::Success, meta)
                .actor(principal.id())
                .target(id),
        )
        .await;
        Ok(())
    }
}
