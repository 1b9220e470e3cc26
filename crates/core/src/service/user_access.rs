//! Another user's logins and API keys, as user administration sees them:
//! listed with `users:read`, revoked with `users:write`. Touching an
//! admin's takes an admin, as every other change to an admin does. Each
//! revocation is audited as the owner's own would be (`session_revoked`,
//! `api_key_revoked`), with the administrator as the actor.

use std::sync::Arc;

use serde_json::json;
use uuid::Uuid;

use super::api_keys::{ApiKeyView, view};
use super::kernel::Directory;
use super::logins::Logins;
use super::principal::Principal;
use super::user_admin::require_admin_for;
use crate::CoreError;
use crate::audit::{AuditEvent, EventKind, Outcome, RequestMeta};
use crate::clock::unix_ms;
use crate::ports::{ApiKeyRepo, SessionInfo};
use crate::rbac::{Permission, Role};
use crate::user::User;

#[derive(Debug)]
pub struct UserAccess {
    directory: Directory,
    logins: Logins,
    keys: Arc<dyn ApiKeyRepo>,
}

/// Whether `principal` may change what belongs to `target`: `users:write`,
/// and an admin's things only by an admin.
fn may_change(principal: &Principal, target: &User) -> Result<(), CoreError> {
    principal.require(Permission::UsersWrite)?;
    require_admin_for(principal, target.role == Role::Admin)
}

impl UserAccess {
    pub fn new(directory: Directory, logins: Logins, keys: Arc<dyn ApiKeyRepo>) -> Self {
        Self {
            directory,
            logins,
            keys,
        }
    }

    async fn audit(&self, event: AuditEvent) {
        self.directory.kernel.audit(event).await;
    }

    /// The user's live logins, newest first.
    pub async fn sessions_of(
        &self,
        principal: &Principal,
        user_id: Uuid,
    ) -> Result<Vec<SessionInfo>, CoreError> {
        principal.require(Permission::UsersRead)?;
        let user = self.directory.load(user_id).await?;
        let now = self.directory.kernel.now_ms();
        self.logins.sessions.list_active(user.id, now).await
    }

    /// Ends one of the user's logins; a session of someone else is reported
    /// as absent (no probing of ids).
    pub async fn revoke_session_of(
        &self,
        principal: &Principal,
        user_id: Uuid,
        session_id: Uuid,
        meta: &RequestMeta,
    ) -> Result<(), CoreError> {
        principal.require(Permission::UsersWrite)?;
        let target = self.directory.load(user_id).await?;
        may_change(principal, &target)?;
        if self.logins.sessions.owner(session_id).await? != Some(user_id) {
            return Err(CoreError::NotFound);
        }
        self.logins
            .revoke(session_id, self.directory.kernel.now())
            .await?;
        self.audit(
            AuditEvent::new(EventKind::SessionRevoked, Outcome::Success, meta)
                .actor(principal.id())
                .target(user_id)
                .details(json!({"session_id": session_id})),
        )
        .await;
        Ok(())
    }

    /// Ends every login of the user; how many were ended.
    pub async fn revoke_sessions_of(
        &self,
        principal: &Principal,
        user_id: Uuid,
        meta: &RequestMeta,
    ) -> Result<usize, CoreError> {
        principal.require(Permission::UsersWrite)?;
        let target = self.directory.load(user_id).await?;
        may_change(principal, &target)?;
        let now = self.directory.kernel.now();
        let active = self
            .logins
            .sessions
            .list_active(user_id, unix_ms(now))
            .await?;
        for session in &active {
            self.logins.revoke(session.id, now).await?;
            self.audit(
                AuditEvent::new(EventKind::SessionRevoked, Outcome::Success, meta)
                    .actor(principal.id())
                    .target(user_id)
                    .details(json!({"session_id": session.id})),
            )
            .await;
        }
        Ok(active.len())
    }

    /// The user's API keys (never the keys themselves).
    pub async fn api_keys_of(
        &self,
        principal: &Principal,
        user_id: Uuid,
    ) -> Result<Vec<ApiKeyView>, CoreError> {
        principal.require(Permission::UsersRead)?;
        let user = self.directory.load(user_id).await?;
        Ok(self.keys.keys_of(user.id).await?.iter().map(view).collect())
    }

    /// Revokes one of the user's API keys.
    pub async fn revoke_api_key_of(
        &self,
        principal: &Principal,
        user_id: Uuid,
        key_id: Uuid,
        meta: &RequestMeta,
    ) -> Result<(), CoreError> {
        principal.require(Permission::UsersWrite)?;
        let target = self.directory.load(user_id).await?;
        may_change(principal, &target)?;
        let now = self.directory.kernel.now_ms();
        if !self.keys.revoke_key(key_id, user_id, now).await? {
            return Err(CoreError::NotFound);
        }
        self.audit(
            AuditEvent::new(EventKind::ApiKeyRevoked, Outcome::Success, meta)
                .actor(principal.id())
                .target(user_id)
                .details(json!({"key_id": key_id, "reason": "administrator"})),
        )
        .await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use time::OffsetDateTime;

    use super::*;

    fn user(role: Role) -> User {
        User {
            id: Uuid::now_v7(),
            username: "u".into(),
            email: "u@example.com".into(),
            email_verified: true,
            full_name: None,
            role,
            is_active: true,
            mfa_enabled: false,
            created_at: OffsetDateTime::UNIX_EPOCH,
            updated_at: OffsetDateTime::UNIX_EPOCH,
            auth_version: 0,
        }
    }

    fn principal(role: Role) -> Principal {
        Principal {
            user: Arc::new(user(role)),
            jti: String::new(),
            expires_at: 0,
            session_id: Some(Uuid::now_v7()),
            auth_time: None,
            api_key: None,
        }
    }

    #[test]
    fn changing_what_is_a_users_takes_users_write_and_an_admins_an_admin() {
        for (actor, target, allowed) in [
            (Role::Admin, Role::Admin, true),
            (Role::Admin, Role::User, true),
            (Role::Moderator, Role::User, true),
            (Role::Moderator, Role::Moderator, true),
            (Role::Moderator, Role::Admin, false),
            (Role::User, Role::User, false),
            (Role::Viewer, Role::Viewer, false),
        ] {
            let result = may_change(&principal(actor), &user(target));
            assert_eq!(
                result.is_ok(),
                allowed,
                "{actor:?} on {target:?}: {result:?}"
            );
        }
    }

    #[test]
    fn a_key_without_users_write_changes_nothing() {
        let mut p = principal(Role::Admin);
        p.api_key = Some((Uuid::now_v7(), Arc::from([Permission::UsersRead])));
        assert!(matches!(
            may_change(&p, &user(Role::User)),
            Err(CoreError::Forbidden)
        ));
    }
}
