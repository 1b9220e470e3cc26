//! `/api/v1/api-keys`: the caller's API keys (needs a login, not a key).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use gatehouse_core::service::{ApiKeyView, NewApiKey};
use http::HeaderValue;
use http::header::CACHE_CONTROL;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::ApiError;
use crate::extract::{ApiJson, Meta, PathId, Require, perm};
use crate::responses::{Forbidden, NotFound, ReauthenticationRequired, ValidationFailed};
use crate::state::AppState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    #[schema(min_length = 1, max_length = 100)]
    name: String,
    /// Permissions the key may use; a subset of the owner's. Default: all
    /// of the owner's.
    #[serde(default)]
    scopes: Option<Vec<String>>,
    #[serde(default)]
    #[schema(minimum = 1, maximum = 3650)]
    expires_in_days: Option<u32>,
}

/// A key without its secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyView {
    id: Uuid,
    name: String,
    /// The visible start of the key.
    prefix: String,
    scopes: Vec<String>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    expires_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    last_used_at: Option<OffsetDateTime>,
}

impl From<ApiKeyView> for KeyView {
    fn from(v: ApiKeyView) -> Self {
        Self {
            id: v.id,
            name: v.name,
            prefix: v.prefix,
            scopes: v.scopes,
            created_at: v.created_at,
            expires_at: v.expires_at,
            last_used_at: v.last_used_at,
        }
    }
}

/// A new key: `key` is shown only in this response.
#[derive(Debug, Serialize, ToSchema)]
pub struct NewKey {
    id: Uuid,
    name: String,
    /// Send as `X-API-Key`. Store it now: it cannot be shown again.
    key: String,
    prefix: String,
    scopes: Vec<String>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    expires_at: Option<OffsetDateTime>,
}

fn new_key_response(status: StatusCode, view: ApiKeyView, key: &str) -> Response {
    let body = NewKey {
        id: view.id,
        name: view.name,
        key: key.to_owned(),
        prefix: view.prefix,
        scopes: view.scopes,
        created_at: view.created_at,
        expires_at: view.expires_at,
    };
    (
        status,
        [(CACHE_CONTROL, HeaderValue::from_static("no-store"))],
        Json(body),
    )
        .into_response()
}

/// Creates a key (shown once, stored as a digest). Needs a recent sign-in
/// (`auth_time` within `REAUTH_MAX_AGE_MINUTES`).
#[utoipa::path(
    post,
    path = "/api/v1/api-keys",
    operation_id = "create_api_key",
    tag = "api-keys",
    request_body = CreateKey,
    security(("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 201, description = "Created; `key` is shown only now", body = NewKey),
        (status = 401, response = ReauthenticationRequired),
        (status = 403, response = Forbidden),
    ),
)]
pub async fn create(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Require(p, ..): Require<perm::SelfWrite>,
    ApiJson(body): ApiJson<CreateKey>,
) -> Result<Response, ApiError> {
    let (view, key) = state
        .api_keys()
        .create(
            &p,
            NewApiKey {
                name: body.name,
                scopes: body.scopes,
                expires_in_days: body.expires_in_days,
            },
            &meta,
        )
        .await?;
    Ok(new_key_response(
        StatusCode::CREATED,
        view,
        key.expose_secret(),
    ))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct KeyList {
    keys: Vec<KeyView>,
}

/// The caller's live keys (never the keys themselves).
#[utoipa::path(
    get,
    path = "/api/v1/api-keys",
    operation_id = "list_api_keys",
    tag = "api-keys",
    security(("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 200, description = "The caller's keys", body = KeyList),
        (status = 403, response = Forbidden),
    ),
)]
pub async fn list(
    State(state): State<AppState>,
    Require(p, ..): Require<perm::SelfWrite>,
) -> Result<Json<KeyList>, ApiError> {
    let keys = state.api_keys().list(&p).await?;
    Ok(Json(KeyList {
        keys: keys.into_iter().map(KeyView::from).collect(),
    }))
}

/// A new secret for the key; the old one stops working at once. Needs a
/// recent sign-in (`auth_time` within `REAUTH_MAX_AGE_MINUTES`).
#[utoipa::path(
    post,
    path = "/api/v1/api-keys/{id}/rotate",
    operation_id = "rotate_api_key",
    tag = "api-keys",
    params(("id" = Uuid, Path, description = "Key id")),
    security(("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 200, description = "Rotated; the new `key` is shown only now", body = NewKey),
        (status = 401, response = ReauthenticationRequired),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 422, response = ValidationFailed),
    ),
)]
pub async fn rotate(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Require(p, ..): Require<perm::SelfWrite>,
    PathId(id): PathId,
) -> Result<Response, ApiError> {
    let (view, key) = state.api_keys().rotate(&p, id, &meta).await?;
    Ok(new_key_response(StatusCode::OK, view, key.expose_secret()))
}

/// Revokes a key.
#[utoipa::path(
    delete,
    path = "/api/v1/api-keys/{id}",
    operation_id = "revoke_api_key",
    tag = "api-keys",
    params(("id" = Uuid, Path, description = "Key id")),
    security(("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 204, description = "Revoked"),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 422, response = ValidationFailed),
    ),
)]
pub async fn revoke(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Require(p, ..): Require<perm::SelfWrite>,
    PathId(id): PathId,
) -> Result<StatusCode, ApiError> {
    state.api_keys().revoke(&p, id, &meta).await?;
    Ok(StatusCode::NO_CONTENT)
}
