//! `/api/v1/users`: the caller's own account, and user administration.

mod listing;

use std::sync::Arc;

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use gatehouse_core::clock::from_unix_ms as at;
use gatehouse_core::ports::SessionInfo;
use gatehouse_core::rbac::Role;
use gatehouse_core::service::{AdminPatch, NewAccount, PageRequest, ProfileUpdate, Registration};
use gatehouse_core::user::User;
use secrecy::SecretString;
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::{ApiError, FieldError};
use crate::extract::{ApiJson, Meta, PathId, Require, perm};
use crate::handlers::auth::Message;
use crate::responses::{
    BadRequest, Forbidden, NotFound, ReauthenticationRequired, ValidationFailed,
};
use crate::state::AppState;

pub(crate) use listing::list_filters;
use listing::{MAX_PER_PAGE, RawList, UserList, number};

/// Distinguishes an absent field (`None`) from an explicit `null`
/// (`Some(None)`).
fn nullable<'de, D, T>(de: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(de).map(Some)
}

/// The caller's own account (self:read).
#[utoipa::path(
    get,
    path = "/api/v1/users/me",
    tag = "users",
    security(("bearer" = []), ("oauth2" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The caller", body = User),
        (status = 403, response = Forbidden),
    ),
)]
pub async fn me(Require(p, ..): Require<perm::SelfRead>) -> Json<Arc<User>> {
    // Serialised straight from the cached user: no copy per request.
    Json(p.user)
}

/// Fields left out are unchanged; `full_name: null` clears the name.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateMe {
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, max_length = 100)]
    full_name: Option<Option<String>>,
    #[serde(default)]
    #[schema(format = Email, max_length = 254, nullable = false)]
    email: Option<String>,
}

/// Updates the caller's name (self:write), or asks for a new email: that
/// answers 202 whether or not the address is taken, and applies once the
/// link sent to the new address is confirmed. A new email needs a recent
/// sign-in (`auth_time` within `REAUTH_MAX_AGE_MINUTES`, else 401
/// `reauthentication_required`); API keys cannot change it (403
/// `api_key_not_allowed`).
#[utoipa::path(
    put,
    path = "/api/v1/users/me",
    tag = "users",
    request_body = UpdateMe,
    security(("bearer" = []), ("oauth2" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The updated caller", body = User),
        (status = 202, description = "A new email was asked for: confirm it from the new address", body = Message),
        (status = 400, response = BadRequest),
        (status = 401, response = ReauthenticationRequired),
        (status = 403, response = Forbidden),
    ),
)]
pub async fn update_me(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Require(p, ..): Require<perm::SelfWrite>,
    ApiJson(body): ApiJson<UpdateMe>,
) -> Result<Response, ApiError> {
    let update = ProfileUpdate {
        full_name: body.full_name,
        email: body.email,
    };
    let outcome = state.accounts().update_me(&p, update, &meta).await?;
    Ok(if outcome.email_change_requested {
        let message = Message {
            message: "Check the new address for a confirmation link",
        };
        (StatusCode::ACCEPTED, Json(message)).into_response()
    } else {
        Json(outcome.user).into_response()
    })
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePassword {
    #[schema(value_type = String, format = Password)]
    current_password: SecretString,
    /// Must differ from the current one and pass the password policy.
    #[schema(value_type = String, format = Password, min_length = 8, max_length = 128)]
    new_password: SecretString,
}

/// Changes the caller's password (self:write) and ends every login and
/// earlier access token of the user.
#[utoipa::path(
    post,
    path = "/api/v1/users/me/change-password",
    tag = "users",
    request_body = ChangePassword,
    security(("bearer" = []), ("oauth2" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "Changed; sign in again", body = Message),
        (status = 400, response = BadRequest),
        (status = 403, response = Forbidden),
    ),
)]
pub async fn change_password(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Require(p, ..): Require<perm::SelfWrite>,
    ApiJson(body): ApiJson<ChangePassword>,
) -> Result<Json<Message>, ApiError> {
    state
        .accounts()
        .change_password(&p, &body.current_password, &body.new_password, &meta)
        .await?;
    Ok(Json(Message {
        message: "Password changed; please sign in again",
    }))
}

/// One active login.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Session)]
pub struct SessionView {
    id: Uuid,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    created_at: time::OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    last_used_at: time::OffsetDateTime,
    #[schema(required = true)]
    ip: Option<String>,
    #[schema(required = true)]
    user_agent: Option<String>,
    /// The login the request was made with.
    current: bool,
}

/// The caller's active logins.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionList {
    sessions: Vec<SessionView>,
}

/// The caller's active logins (self:read).
#[utoipa::path(
    get,
    path = "/api/v1/users/me/sessions",
    tag = "users",
    security(("bearer" = []), ("oauth2" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "Active logins", body = SessionList),
        (status = 403, response = Forbidden),
    ),
)]
pub async fn sessions(
    State(state): State<AppState>,
    Require(p, ..): Require<perm::SelfRead>,
) -> Result<Json<SessionList>, ApiError> {
    let list: Vec<SessionView> = state
        .accounts()
        .my_sessions(&p)
        .await?
        .into_iter()
        .map(|s: SessionInfo| SessionView {
            id: s.id,
            created_at: at(s.created_at),
            last_used_at: at(s.last_used_at),
            ip: s.ip,
            user_agent: s.user_agent,
            current: p.session_id == Some(s.id),
        })
        .collect();
    Ok(Json(SessionList { sessions: list }))
}

/// Revokes one of the caller's logins (self:write).
#[utoipa::path(
    delete,
    path = "/api/v1/users/me/sessions/{id}",
    tag = "users",
    params(("id" = Uuid, Path, description = "Session id")),
    security(("bearer" = []), ("oauth2" = []), ("api_key" = [])),
    responses(
        (status = 204, description = "Revoked"),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 422, response = ValidationFailed),
    ),
)]
pub async fn revoke_session(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Require(p, ..): Require<perm::SelfWrite>,
    PathId(id): PathId,
) -> Result<StatusCode, ApiError> {
    state.accounts().revoke_my_session(&p, id, &meta).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Lists users (users:read), in page mode (`page`, `per_page`) or keyset
/// mode (`limit`, then `after`), filtered by username prefix, role and
/// activity.
#[utoipa::path(
    get,
    path = "/api/v1/users",
    operation_id = "list_users",
    tag = "users",
    params(
        ("page" = Option<u64>, Query, minimum = 1, description = "Page mode: page number (default 1)"),
        ("per_page" = Option<u64>, Query, minimum = 1, description = "Page mode: page size (default 20, capped at 100)"),
        ("limit" = Option<u64>, Query, minimum = 1, description = "Keyset mode: page size (default 20, capped at 100)"),
        ("after" = Option<Uuid>, Query, description = "Keyset mode: the previous page's `next_cursor`"),
        ("q" = Option<String>, Query, max_length = 50, description = "Username prefix"),
        ("role" = Option<Role>, Query, description = "Only this role"),
        ("is_active" = Option<bool>, Query, description = "Only active (or inactive) users"),
    ),
    security(("bearer" = []), ("oauth2" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "A page of users", body = UserList),
        (status = 403, response = Forbidden),
        (status = 422, response = ValidationFailed),
    ),
)]
pub async fn list(
    State(state): State<AppState>,
    Require(p, ..): Require<perm::UsersRead>,
    RawQuery(query): RawQuery,
) -> Result<Json<UserList>, ApiError> {
    let raw: RawList = serde_urlencoded::from_str(query.as_deref().unwrap_or_default())
        .map_err(|_| ApiError::validation(vec![FieldError::new("query", "is malformed")]))?;
    let mut errors = Vec::new();
    let after = match raw.after.as_deref() {
        None | Some("") => None,
        Some(a) => Uuid::parse_str(a)
            .map_err(|_| {
                errors.push(FieldError::new(
                    "after",
                    "must be a cursor from next_cursor",
                ))
            })
            .ok(),
    };
    let keyset = raw.limit.is_some() || raw.after.is_some();
    let limit = number(raw.limit.as_deref(), "limit", 20, &mut errors).min(MAX_PER_PAGE);
    let page = number(raw.page.as_deref(), "page", 1, &mut errors);
    let per_page = number(raw.per_page.as_deref(), "per_page", 20, &mut errors).min(MAX_PER_PAGE);
    let query = list_filters(
        raw.q,
        raw.role.as_deref(),
        raw.is_active.as_deref(),
        &mut errors,
    );
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let request = if keyset {
        PageRequest::After { after, limit }
    } else {
        PageRequest::Numbered { page, per_page }
    };
    let result = state.user_admin().list(&p, &query, request).await?;
    Ok(Json(result.as_ref().clone().into()))
}

/// One user (users:read).
#[utoipa::path(
    get,
    path = "/api/v1/users/{id}",
    operation_id = "get_user",
    tag = "users",
    params(("id" = Uuid, Path, description = "User id")),
    security(("bearer" = []), ("oauth2" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The user", body = User),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 422, response = ValidationFailed),
    ),
)]
pub async fn get(
    State(state): State<AppState>,
    Require(p, ..): Require<perm::UsersRead>,
    PathId(id): PathId,
) -> Result<Json<User>, ApiError> {
    Ok(Json(state.user_admin().get(&p, id).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    #[schema(min_length = 3, max_length = 50, pattern = "^[A-Za-z0-9_-]+$")]
    username: String,
    #[schema(format = Email, max_length = 254)]
    email: String,
    #[schema(value_type = String, format = Password, min_length = 8, max_length = 128)]
    password: SecretString,
    #[serde(default)]
    #[schema(max_length = 100)]
    full_name: Option<String>,
    role: Role,
}

/// Creates an account with a chosen role (users:write); only admins create
/// admins.
#[utoipa::path(
    post,
    path = "/api/v1/users",
    operation_id = "create_user",
    tag = "users",
    request_body = CreateUser,
    security(("bearer" = []), ("oauth2" = []), ("api_key" = [])),
    responses(
        (status = 201, description = "The new user", body = User),
        (status = 400, response = BadRequest),
        (status = 403, response = Forbidden),
    ),
)]
pub async fn create(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Require(p, ..): Require<perm::UsersWrite>,
    ApiJson(body): ApiJson<CreateUser>,
) -> Result<(StatusCode, Json<User>), ApiError> {
    let account = NewAccount {
        registration: Registration {
            username: body.username,
            email: body.email,
            password: body.password,
            full_name: body.full_name,
        },
        role: body.role,
    };
    let user = state.user_admin().create(&p, account, &meta).await?;
    Ok((StatusCode::CREATED, Json(user)))
}

/// Fields left out are unchanged; `full_name: null` clears the name.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchUser {
    #[serde(default)]
    #[schema(nullable = false)]
    role: Option<Role>,
    #[serde(default)]
    #[schema(nullable = false)]
    is_active: Option<bool>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, max_length = 100)]
    full_name: Option<Option<String>>,
}

/// Changes a user's role, activity or name (users:write); granting or
/// removing `admin` takes an admin; deactivation ends the user's logins.
#[utoipa::path(
    patch,
    path = "/api/v1/users/{id}",
    operation_id = "patch_user",
    tag = "users",
    params(("id" = Uuid, Path, description = "User id")),
    request_body = PatchUser,
    security(("bearer" = []), ("oauth2" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The updated user", body = User),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
    ),
)]
pub async fn patch(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Require(p, ..): Require<perm::UsersWrite>,
    PathId(id): PathId,
    ApiJson(body): ApiJson<PatchUser>,
) -> Result<Json<User>, ApiError> {
    let patch = AdminPatch {
        role: body.role,
        is_active: body.is_active,
        full_name: body.full_name,
    };
    Ok(Json(state.user_admin().patch(&p, id, patch, &meta).await?))
}

/// Deletes a user and their logins (users:delete); never yourself.
#[utoipa::path(
    delete,
    path = "/api/v1/users/{id}",
    operation_id = "delete_user",
    tag = "users",
    params(("id" = Uuid, Path, description = "User id")),
    security(("bearer" = []), ("oauth2" = []), ("api_key" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, response = BadRequest),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 422, response = ValidationFailed),
    ),
)]
pub async fn delete(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Require(p, ..): Require<perm::UsersDelete>,
    PathId(id): PathId,
) -> Result<StatusCode, ApiError> {
    state.user_admin().delete(&p, id, &meta).await?;
    Ok(StatusCode::NO_CONTENT)
}
