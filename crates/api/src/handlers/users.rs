//! `/api/v1/users`.

use axum::Json;
use gatehouse_core::rbac::Permission;
use gatehouse_core::user::User;

use crate::error::ApiError;
use crate::extract::Auth;

/// `GET /users/me` (self:read).
pub async fn me(Auth(principal): Auth) -> Result<Json<User>, ApiError> {
    principal.require(Permission::SelfRead)?;
    Ok(Json(principal.user.as_ref().clone()))
}
