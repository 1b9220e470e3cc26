//! The authenticated caller, and the permission check every use case makes
//! first (`principal.require(Permission::UsersRead)?`), and the check of a
//! recent proof of a factor that sensitive changes make next.

use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;
use uuid::Uuid;

use crate::CoreError;
use crate::rbac::Permission;
use crate::user::User;

/// The authenticated caller, in its *current* state.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user: Arc<User>,
    pub jti: String,
    /// Access token expiry (Unix seconds).
    pub expires_at: i64,
    pub session_id: Option<Uuid>,
    /// When the user last proved a factor in this login (the token's
    /// `auth_time`); `None` for API keys and tokens issued before it.
    pub auth_time: Option<OffsetDateTime>,
    /// Set when authenticated by an API key: the key and its scopes, which
    /// narrow the role's permissions.
    pub api_key: Option<(Uuid, Arc<[Permission]>)>,
}

impl Principal {
    pub fn id(&self) -> Uuid {
        self.user.id
    }

    /// Permissions come from the user's current role, not the token's, and
    /// an API key's scopes narrow them further.
    pub fn require(&self, permission: Permission) -> Result<(), CoreError> {
        let scoped = self
            .api_key
            .as_ref()
            .is_none_or(|(_, scopes)| scopes.contains(&permission));
        if self.user.role.has(permission) && scoped {
            Ok(())
        } else {
            Err(CoreError::Forbidden)
        }
    }

    /// Managing the account's credentials (password, email, second
    /// factors, API keys, sessions) takes a person's login: an API key never
    /// does it, whatever its scopes — a leaked key must not become the
    /// account.
    pub fn require_login(&self) -> Result<(), CoreError> {
        if self.api_key.is_some() {
            Err(CoreError::ApiKeyNotAllowed)
        } else {
            Ok(())
        }
    }

    /// Sensitive changes (second factors, API keys, the email address) take
    /// a factor proved within `max_age` of `now` in this very login (OWASP
    /// ASVS 3.7.1); else re-authenticate at `POST /auth/reauth`. An API key
    /// never passes: it proves no factor. A time in the future beyond clock
    /// skew is no proof either.
    pub fn require_recent_auth(
        &self,
        max_age: Duration,
        now: OffsetDateTime,
    ) -> Result<(), CoreError> {
        let fresh = self.api_key.is_none()
            && self.auth_time.is_some_and(|at| {
                let age = now - at;
                age <= max_age && age >= -time::Duration::minutes(1)
            });
        if fresh {
            Ok(())
        } else {
            Err(CoreError::ReauthenticationRequired)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use time::macros::datetime;
    use uuid::Uuid;

    use super::Principal;
    use crate::CoreError;
    use crate::rbac::{Permission, Role};
    use crate::user::User;

    const NOW: time::OffsetDateTime = datetime!(2026-01-01 12:00 UTC);
    const MAX_AGE: Duration = Duration::from_secs(600);

    fn principal(auth_time: Option<time::OffsetDateTime>) -> Principal {
        Principal {
            user: Arc::new(User {
                id: Uuid::now_v7(),
                username: "jane".into(),
                email: "jane@example.com".into(),
                email_verified: true,
                full_name: None,
                role: Role::User,
                is_active: true,
                mfa_enabled: false,
                created_at: NOW,
                updated_at: NOW,
                auth_version: 0,
            }),
            jti: String::new(),
            expires_at: 0,
            session_id: Some(Uuid::now_v7()),
            auth_time,
            api_key: None,
        }
    }

    fn stale(p: &Principal) -> bool {
        matches!(
            p.require_recent_auth(MAX_AGE, NOW),
            Err(CoreError::ReauthenticationRequired)
        )
    }

    #[test]
    fn a_recent_factor_passes_up_to_the_limit() {
        assert!(
            principal(Some(NOW))
                .require_recent_auth(MAX_AGE, NOW)
                .is_ok()
        );
        let edge = principal(Some(NOW - MAX_AGE));
        assert!(edge.require_recent_auth(MAX_AGE, NOW).is_ok());
    }

    #[test]
    fn old_missing_or_future_auth_times_are_stale() {
        assert!(stale(&principal(Some(
            NOW - MAX_AGE - Duration::from_secs(1)
        ))));
        assert!(stale(&principal(None)));
        assert!(stale(&principal(Some(NOW + Duration::from_secs(3600)))));
    }

    #[test]
    fn an_api_key_is_never_a_recent_factor() {
        let mut key = principal(Some(NOW));
        key.api_key = Some((Uuid::now_v7(), Arc::from(vec![Permission::SelfWrite])));
        assert!(stale(&key));
    }
}
