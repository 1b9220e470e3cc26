//! `/api/v1/users`: the caller's own account, and user administration.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use gatehouse_core::ports::SessionInfo;
use gatehouse_core::rbac::Role;
use gatehouse_core::service::{
    AdminPatch, ListQuery, NewAccount, ProfileUpdate, Registration, UserPage,
};
use gatehouse_core::user::User;
use secrecy::SecretString;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::error::{ApiError, FieldError};
use crate::extract::{ApiJson, Meta, Require, perm};
use crate::state::AppState;

/// Distinguishes an absent field (`None`) from an explicit `null`
/// (`Some(None)`).
fn nullable<'de, D, T>(de: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(de).map(Some)
}

/// `GET /users/me` (self:read).
pub async fn me(Require(p, ..): Require<perm::SelfRead>) -> Json<User> {
    Json(p.user.as_ref().clone())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateMe {
    #[serde(default, deserialize_with = "nullable")]
    full_name: Option<Option<String>>,
    #[serde(default)]
    email: Option<String>,
}

/// `PUT /users/me` (self:write).
pub async fn update_me(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Require(p, ..): Require<perm::SelfWrite>,
    ApiJson(body): ApiJson<UpdateMe>,
) -> Result<Json<User>, ApiError> {
    let update = ProfileUpdate {
        full_name: body.full_name,
        email: body.email,
    };
    Ok(Json(state.auth().update_me(&p, update, &meta).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangePassword {
    current_password: SecretString,
    new_password: SecretString,
}

/// `POST /users/me/change-password` (self:write).
pub async fn change_password(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Require(p, ..): Require<perm::SelfWrite>,
    ApiJson(body): ApiJson<ChangePassword>,
) -> Result<Json<Value>, ApiError> {
    state
        .auth()
        .change_password(&p, &body.current_password, &body.new_password, &meta)
        .await?;
    Ok(Json(
        json!({"message": "Password changed; please sign in again"}),
    ))
}

#[derive(Debug, Serialize)]
struct SessionView {
    id: Uuid,
    #[serde(with = "time::serde::rfc3339")]
    created_at: time::OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    last_used_at: time::OffsetDateTime,
    ip: Option<String>,
    user_agent: Option<String>,
    /// The login the request was made with.
    current: bool,
}

fn at(ms: i64) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

/// `GET /users/me/sessions` (self:read).
pub async fn sessions(
    State(state): State<AppState>,
    Require(p, ..): Require<perm::SelfRead>,
) -> Result<Json<Value>, ApiError> {
    let list: Vec<SessionView> = state
        .auth()
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
    Ok(Json(json!({ "sessions": list })))
}

/// Parses an id from the path; a malformed one is a 422, not a 404.
fn parse_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw)
        .map_err(|_| ApiError::validation(vec![FieldError::new("id", "must be a UUID")]))
}

/// `DELETE /users/me/sessions/{id}` (self:write) → 204.
pub async fn revoke_session(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Require(p, ..): Require<perm::SelfWrite>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state
        .auth()
        .revoke_my_session(&p, parse_id(&id)?, &meta)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Query parameters of the user list, parsed by hand so every bad value is
/// a 422 naming its parameter.
#[derive(Debug, Default, Deserialize)]
struct RawList {
    page: Option<String>,
    per_page: Option<String>,
    limit: Option<String>,
    after: Option<String>,
    q: Option<String>,
    role: Option<String>,
    is_active: Option<String>,
}

const MAX_PER_PAGE: u64 = 100;

fn number(raw: Option<&str>, field: &str, default: u64, errors: &mut Vec<FieldError>) -> u64 {
    match raw.map(str::parse::<u64>) {
        None => default,
        Some(Ok(n)) if n >= 1 => n,
        Some(_) => {
            errors.push(FieldError::new(
                field,
                "must be a whole number of at least 1",
            ));
            default
        }
    }
}

/// `GET /users` (users:read): page mode or keyset mode.
pub async fn list(
    State(state): State<AppState>,
    Require(..): Require<perm::UsersRead>,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let raw: RawList = serde_urlencoded::from_str(query.as_deref().unwrap_or_default())
        .map_err(|_| ApiError::validation(vec![FieldError::new("query", "is malformed")]))?;
    let mut errors = Vec::new();
    let role = match raw.role.as_deref() {
        None | Some("") => None,
        Some(r) => r
            .parse::<Role>()
            .map_err(|()| {
                errors.push(FieldError::new(
                    "role",
                    "must be admin, moderator, user or viewer",
                ));
            })
            .ok(),
    };
    let is_active = match raw.is_active.as_deref() {
        None | Some("") => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(_) => {
            errors.push(FieldError::new("is_active", "must be true or false"));
            None
        }
    };
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
    if raw.q.as_ref().is_some_and(|q| q.chars().count() > 50) {
        errors.push(FieldError::new("q", "must be at most 50 characters"));
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let query = ListQuery {
        q: raw.q,
        role,
        is_active,
    };
    let result = if keyset {
        state
            .auth()
            .list_users(&query, None, Some((after, limit)))
            .await?
    } else {
        state
            .auth()
            .list_users(&query, Some((page, per_page)), None)
            .await?
    };
    Ok(Json(match result {
        UserPage::Paged {
            users,
            total,
            page,
            per_page,
        } => json!({
            "users": users,
            "total": total,
            "page": page,
            "per_page": per_page,
            "pages": total.div_ceil(per_page),
        }),
        UserPage::Keyset { users, next_cursor } => json!({
            "users": users,
            "next_cursor": next_cursor,
        }),
    }))
}

/// `GET /users/{id}` (users:read).
pub async fn get(
    State(state): State<AppState>,
    Require(..): Require<perm::UsersRead>,
    Path(id): Path<String>,
) -> Result<Json<User>, ApiError> {
    Ok(Json(state.auth().get_user(parse_id(&id)?).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    username: String,
    email: String,
    password: SecretString,
    #[serde(default)]
    full_name: Option<String>,
    role: Role,
}

/// `POST /users` (users:write) → 201.
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
    let user = state.auth().create_user(&p, account, &meta).await?;
    Ok((StatusCode::CREATED, Json(user)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatchUser {
    #[serde(default)]
    role: Option<Role>,
    #[serde(default)]
    is_active: Option<bool>,
    #[serde(default, deserialize_with = "nullable")]
    full_name: Option<Option<String>>,
}

/// `PATCH /users/{id}` (users:write).
pub async fn patch(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Require(p, ..): Require<perm::UsersWrite>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<PatchUser>,
) -> Result<Json<User>, ApiError> {
    let patch = AdminPatch {
        role: body.role,
        is_active: body.is_active,
        full_name: body.full_name,
    };
    Ok(Json(
        state
            .auth()
            .patch_user(&p, parse_id(&id)?, patch, &meta)
            .await?,
    ))
}

/// `DELETE /users/{id}` (users:delete) → 204.
pub async fn delete(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Require(p, ..): Require<perm::UsersDelete>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.auth().delete_user(&p, parse_id(&id)?, &meta).await?;
    Ok(StatusCode::NO_CONTENT)
}
