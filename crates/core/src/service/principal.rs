//! The authenticated caller, and the permission check every use case makes
//! first (`principal.require(Permission::UsersRead)?`).

use std::sync::Arc;

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
}
