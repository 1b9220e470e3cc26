//! User administration: reading, listing, exporting, creating, changing and
//! deleting other users. Every operation checks the caller's permission
//! first; the rules that depend on *whom* it targets (admin-only grants, no
//! self-delete) follow.

use std::sync::Arc;

use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use serde_json::json;
use uuid::Uuid;

use super::accounts::{AccountFactory, Registration, Welcome};
use super::kernel::{Directory, record_to_user};
use super::principal::Principal;
use crate::CoreError;
use crate::audit::{AuditEvent, EventKind, Outcome, RequestMeta};
use crate::ports::{BlobStore, FileRepo, SessionRepo, UserChanges, UserFilter};
use crate::rbac::{Permission, Role};
use crate::user::User;

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

/// Which page of the list: numbered pages, or the rows after a cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageRequest {
    Numbered { page: u64, per_page: u64 },
    After { after: Option<Uuid>, limit: u64 },
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

/// Ports user administration drives besides the directory.
#[derive(Debug, Clone)]
pub struct UserAdminDeps {
    pub factory: AccountFactory,
    pub sessions: Arc<dyn SessionRepo>,
    /// Files and their contents, removed with their owner.
    pub files: Arc<dyn FileRepo>,
    pub blobs: Arc<dyn BlobStore>,
}

#[derive(Debug)]
pub struct UserAdmin {
    deps: UserAdminDeps,
}

/// Moderators manage users, not admins: touching an admin takes an admin.
pub(super) fn require_admin_for(
    principal: &Principal,
    involves_admin: bool,
) -> Result<(), CoreError> {
    if involves_admin && principal.user.role != Role::Admin {
        Err(CoreError::Forbidden)
    } else {
        Ok(())
    }
}

impl UserAdmin {
    pub fn new(deps: UserAdminDeps) -> Self {
        Self { deps }
    }

    fn directory(&self) -> &Directory {
        &self.deps.factory.directory
    }

    async fn audit(&self, event: AuditEvent) {
        self.directory().kernel.audit(event).await;
    }

    pub async fn get(&self, principal: &Principal, id: Uuid) -> Result<User, CoreError> {
        principal.require(Permission::UsersRead)?;
        match self.directory().current(id).await? {
            Some(user) => Ok(user.as_ref().clone()),
            None => Err(CoreError::NotFound),
        }
    }

    /// A page of users, served from the list cache when a previous identical
    /// request is still fresh (writes clear it).
    pub async fn list(
        &self,
        principal: &Principal,
        query: &ListQuery,
        page: PageRequest,
    ) -> Result<Arc<UserPage>, CoreError> {
        principal.require(Permission::UsersRead)?;
        let key = format!("{query:?}|{page:?}");
        let cache = &self.directory().cache;
        if let Some(hit) = cache.get_list(&key).await {
            return Ok(hit);
        }
        let generation = cache.generation();
        let result = Arc::new(self.load_page(query, page).await?);
        cache.put_list(key, result.clone(), generation).await;
        Ok(result)
    }

    async fn load_page(&self, query: &ListQuery, page: PageRequest) -> Result<UserPage, CoreError> {
        let filter = filter(query);
        let dir = self.directory();
        let decrypt = |rows: &[crate::ports::UserRecord]| {
            rows.iter()
                .map(|r| dir.kernel.to_user(r))
                .collect::<Result<Vec<_>, _>>()
        };
        match page {
            PageRequest::After { after, limit } => {
                // One extra row tells whether another page follows.
                let mut rows = dir.users.list_after(&filter, after, limit + 1).await?;
                let has_more = rows.len() as u64 > limit;
                rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
                let users = decrypt(&rows)?;
                let next_cursor = if has_more {
                    users.last().map(|u| u.id)
                } else {
                    None
                };
                Ok(UserPage::Keyset { users, next_cursor })
            }
            PageRequest::Numbered { page, per_page } => {
                let offset = (page.saturating_sub(1)).saturating_mul(per_page);
                let (rows, total) = dir.users.list_page(&filter, offset, per_page).await?;
                Ok(UserPage::Paged {
                    users: decrypt(&rows)?,
                    total,
                    page,
                    per_page,
                })
            }
        }
    }

    /// Streams every matching user, decrypted, in id order (export).
    pub async fn export(
        &self,
        principal: &Principal,
        query: &ListQuery,
        format: &str,
        meta: &RequestMeta,
    ) -> Result<BoxStream<'static, Result<User, CoreError>>, CoreError> {
        principal.require(Permission::UsersRead)?;
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
        let cipher = self.directory().kernel.cipher.clone();
        Ok(self
            .directory()
            .users
            .stream(&filter(query))
            .map(move |row| row.and_then(|r| record_to_user(&cipher, &r)))
            .boxed())
    }

    /// Creates an account with a chosen role; only admins create admins.
    pub async fn create(
        &self,
        principal: &Principal,
        account: NewAccount,
        meta: &RequestMeta,
    ) -> Result<User, CoreError> {
        principal.require(Permission::UsersWrite)?;
        require_admin_for(principal, account.role == Role::Admin)?;
        let user = self
            .deps
            .factory
            .create(account.registration, account.role, Welcome::Nothing)
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
    pub async fn patch(
        &self,
        principal: &Principal,
        id: Uuid,
        patch: AdminPatch,
        meta: &RequestMeta,
    ) -> Result<User, CoreError> {
        principal.require(Permission::UsersWrite)?;
        let target = self.directory().load(id).await?;
        let touches_admin = patch
            .role
            .is_some_and(|r| (r == Role::Admin) != (target.role == Role::Admin));
        require_admin_for(principal, touches_admin || target.role == Role::Admin)?;
        let mut changes = UserChanges {
            role: patch.role.map(|r| r.as_str().to_owned()),
            is_active: patch.is_active,
            ..UserChanges::default()
        };
        if let Some(name) = &patch.full_name {
            changes.full_name_enc = Some(self.directory().kernel.encrypt_name(name.as_deref())?);
        }
        let now = self.directory().kernel.now_ms();
        if !self.directory().users.update(id, &changes, now).await? {
            return Err(CoreError::NotFound);
        }
        if patch.is_active == Some(false) {
            self.deps.sessions.revoke_all(id, now).await?;
        }
        let user = self.directory().after_write(id).await?;
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
    pub async fn delete(
        &self,
        principal: &Principal,
        id: Uuid,
        meta: &RequestMeta,
    ) -> Result<(), CoreError> {
        principal.require(Permission::UsersDelete)?;
        if id == principal.id() {
            return Err(CoreError::CannotDeleteSelf);
        }
        let target = self.directory().load(id).await?;
        require_admin_for(principal, target.role == Role::Admin)?;
        // File rows go with the user (ON DELETE CASCADE); their contents are
        // listed first and removed once the user is gone.
        let blobs = self.deps.files.storage_keys_of_owner(id).await?;
        if !self.directory().users.delete(id).await? {
            return Err(CoreError::NotFound);
        }
        super::files::remove_blobs(self.deps.blobs.as_ref(), &blobs).await;
        self.directory().invalidate(id).await;
        self.audit(
            AuditEvent::new(EventKind::UserDeleted, Outcome::Success, meta)
                .actor(principal.id())
                .target(id),
        )
        .await;
        Ok(())
    }
}
