//! `/ui/admin/users/{id}`: one user — the account, their logins and API
//! keys — with the changes an administrator makes: the role, activation,
//! ending logins, revoking keys and deleting the user (typed confirmation).
//! Each goes through the use case of its API route (`UserAdmin::patch`,
//! `UserAdmin::delete`) or of the console's own (`UserAccess`), which
//! checks the permission and the rules about admins and oneself.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Form};
use gatehouse_core::clock::from_unix_ms;
use gatehouse_core::rbac::{Permission, Role};
use gatehouse_core::service::AdminPatch;
use http::{HeaderMap, StatusCode};
use minijinja::context;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{nav, shown};
use crate::error::{ApiError, FieldError};
use crate::extract::Meta;
use crate::state::AppState;
use crate::ui::csrf::{self, Binding, FormKey};
use crate::ui::page::{self, Page, Refusal, Shown};
use crate::ui::session::SignedIn;
use crate::ui::sign_in::PlainForm;
use crate::ui::templates;

/// An id from the path: a malformed one names no user, so "not found".
fn id_of(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::not_found())
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct UserQuery {
    notice: String,
}

fn notice(code: &str) -> Option<&'static str> {
    match code {
        "role_changed" => Some("The role was changed."),
        "activated" => Some("The account was activated."),
        "deactivated" => Some("The account was deactivated and all its sessions were ended."),
        "session_revoked" => Some("The session was ended."),
        "sessions_revoked" => Some("All the user's sessions were ended."),
        "key_revoked" => Some("The API key was revoked."),
        _ => None,
    }
}

#[derive(Debug, Serialize)]
struct SessionRow {
    id: Uuid,
    user_agent: Option<String>,
    ip: Option<String>,
    created: (String, String),
    last_used: (String, String),
    current: bool,
}

#[derive(Debug, Serialize)]
struct KeyRow {
    id: Uuid,
    name: String,
    prefix: String,
    scopes: String,
    created: (String, String),
    expires: Option<(String, String)>,
    last_used: Option<(String, String)>,
}

/// The user's page, with a notice or a refused form's sentence.
async fn render(
    state: &AppState,
    signed: &SignedIn,
    key: &FormKey,
    id: Uuid,
    notice: Option<&'static str>,
    error: Option<&Shown>,
) -> Result<String, ApiError> {
    let p = &signed.principal;
    let user = state.user_admin().get(p, id).await?;
    let sessions: Vec<SessionRow> = state
        .user_access()
        .sessions_of(p, id)
        .await?
        .into_iter()
        .map(|s| SessionRow {
            id: s.id,
            user_agent: s.user_agent,
            ip: s.ip,
            created: shown(from_unix_ms(s.created_at)),
            last_used: shown(from_unix_ms(s.last_used_at)),
            current: p.session_id == Some(s.id),
        })
        .collect();
    let keys: Vec<KeyRow> = state
        .user_access()
        .api_keys_of(p, id)
        .await?
        .into_iter()
        .map(|k| KeyRow {
            id: k.id,
            name: k.name,
            prefix: k.prefix,
            scopes: k.scopes.join(" "),
            created: shown(k.created_at),
            expires: k.expires_at.map(shown),
            last_used: k.last_used_at.map(shown),
        })
        .collect();
    // What to offer; the use cases decide what is done.
    let is_admin = p.user.role == Role::Admin;
    let can_write =
        p.require(Permission::UsersWrite).is_ok() && (is_admin || user.role != Role::Admin);
    let is_self = p.id() == id;
    let can_delete = can_write && p.require(Permission::UsersDelete).is_ok() && !is_self;
    let roles: Vec<&str> = Role::ALL
        .iter()
        .filter(|r| is_admin || **r != Role::Admin)
        .map(|r| r.as_str())
        .collect();
    templates::render(
        page::product(state),
        "admin_user.html",
        context! {
            csrf => key.token(Binding::login(p.session_id)),
            nav => nav(p, "users"),
            notice => notice,
            error => error,
            user => context! {
                id => user.id,
                username => &user.username,
                email => &user.email,
                email_verified => user.email_verified,
                full_name => &user.full_name,
                role => user.role.as_str(),
                is_active => user.is_active,
                mfa_enabled => user.mfa_enabled,
                created => shown(user.created_at),
                updated => shown(user.updated_at),
            },
            sessions => sessions,
            keys => keys,
            roles => roles,
            can_write => can_write,
            can_delete => can_delete,
            is_self => is_self,
        },
    )
}

/// The user's page again, with a refused form's sentence; if the page
/// itself cannot be shown (no permission, no such user), that answer.
async fn refused(
    state: &AppState,
    signed: &SignedIn,
    headers: &HeaderMap,
    id: Uuid,
    refusal: Refusal,
) -> Result<Response, ApiError> {
    let key = FormKey::of(headers, state.http().secure_cookies)?;
    let html = render(state, signed, &key, id, None, Some(&refusal.shown)).await?;
    Ok(refusal.page(html))
}

/// After a change: the user's page, with what was done.
fn done(id: Uuid, notice: &str) -> Response {
    page::see_other(&format!("/ui/admin/users/{id}?notice={notice}")).into_response()
}

/// `GET /ui/admin/users/{id}`.
pub async fn show(
    State(state): State<AppState>,
    Extension(signed): Extension<SignedIn>,
    headers: HeaderMap,
    Path(raw): Path<String>,
    Query(q): Query<UserQuery>,
) -> Result<Page, ApiError> {
    let id = id_of(&raw)?;
    let key = FormKey::of(&headers, state.http().secure_cookies)?;
    let html = render(&state, &signed, &key, id, notice(&q.notice), None).await?;
    Ok(Page::new(StatusCode::OK, html).cookie(key.cookie()))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RoleForm {
    csrf: String,
    role: String,
}

/// `POST /ui/admin/users/{id}/role` (`UserAdmin::patch`, as `PATCH
/// /api/v1/users/{id}` with `role`).
pub async fn change_role(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Extension(signed): Extension<SignedIn>,
    headers: HeaderMap,
    Path(raw): Path<String>,
    Form(form): Form<RoleForm>,
) -> Result<Response, ApiError> {
    let p = &signed.principal;
    let id = id_of(&raw)?;
    csrf::verify(&headers, Binding::login(p.session_id), &form.csrf)?;
    let Ok(role) = form.role.parse::<Role>() else {
        let err = ApiError::validation(vec![FieldError::new(
            "role",
            "must be admin, moderator, user or viewer",
        )]);
        return refused(&state, &signed, &headers, id, Refusal::new(err, true)).await;
    };
    let patch = AdminPatch {
        role: Some(role),
        ..AdminPatch::default()
    };
    match state.user_admin().patch(p, id, patch, &meta).await {
        Ok(_) => Ok(done(id, "role_changed")),
        Err(e) => refused(&state, &signed, &headers, id, Refusal::new(e, true)).await,
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ActiveForm {
    csrf: String,
    is_active: String,
}

/// `POST /ui/admin/users/{id}/active` (`UserAdmin::patch` with
/// `is_active`; deactivation ends the user's logins).
pub async fn set_active(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Extension(signed): Extension<SignedIn>,
    headers: HeaderMap,
    Path(raw): Path<String>,
    Form(form): Form<ActiveForm>,
) -> Result<Response, ApiError> {
    let p = &signed.principal;
    let id = id_of(&raw)?;
    csrf::verify(&headers, Binding::login(p.session_id), &form.csrf)?;
    let is_active = match form.is_active.as_str() {
        "true" => true,
        "false" => false,
        _ => {
            let err =
                ApiError::validation(vec![FieldError::new("is_active", "must be true or false")]);
            return refused(&state, &signed, &headers, id, Refusal::new(err, true)).await;
        }
    };
    let patch = AdminPatch {
        is_active: Some(is_active),
        ..AdminPatch::default()
    };
    match state.user_admin().patch(p, id, patch, &meta).await {
        Ok(_) => Ok(done(
            id,
            if is_active {
                "activated"
            } else {
                "deactivated"
            },
        )),
        Err(e) => refused(&state, &signed, &headers, id, Refusal::new(e, true)).await,
    }
}

/// `POST /ui/admin/users/{id}/sessions/{session}/revoke`.
pub async fn revoke_session(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Extension(signed): Extension<SignedIn>,
    headers: HeaderMap,
    Path((raw, raw_session)): Path<(String, String)>,
    Form(form): Form<PlainForm>,
) -> Result<Response, ApiError> {
    let p = &signed.principal;
    let id = id_of(&raw)?;
    let session = id_of(&raw_session)?;
    csrf::verify(&headers, Binding::login(p.session_id), &form.csrf)?;
    match state
        .user_access()
        .revoke_session_of(p, id, session, &meta)
        .await
    {
        Ok(()) => Ok(done(id, "session_revoked")),
        Err(e) => refused(&state, &signed, &headers, id, Refusal::new(e, false)).await,
    }
}

/// `POST /ui/admin/users/{id}/sessions/revoke-all`.
pub async fn revoke_sessions(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Extension(signed): Extension<SignedIn>,
    headers: HeaderMap,
    Path(raw): Path<String>,
    Form(form): Form<PlainForm>,
) -> Result<Response, ApiError> {
    let p = &signed.principal;
    let id = id_of(&raw)?;
    csrf::verify(&headers, Binding::login(p.session_id), &form.csrf)?;
    match state.user_access().revoke_sessions_of(p, id, &meta).await {
        Ok(_) => Ok(done(id, "sessions_revoked")),
        Err(e) => refused(&state, &signed, &headers, id, Refusal::new(e, false)).await,
    }
}

/// `POST /ui/admin/users/{id}/api-keys/{key}/revoke`.
pub async fn revoke_api_key(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Extension(signed): Extension<SignedIn>,
    headers: HeaderMap,
    Path((raw, raw_key)): Path<(String, String)>,
    Form(form): Form<PlainForm>,
) -> Result<Response, ApiError> {
    let p = &signed.principal;
    let id = id_of(&raw)?;
    let key = id_of(&raw_key)?;
    csrf::verify(&headers, Binding::login(p.session_id), &form.csrf)?;
    match state
        .user_access()
        .revoke_api_key_of(p, id, key, &meta)
        .await
    {
        Ok(()) => Ok(done(id, "key_revoked")),
        Err(e) => refused(&state, &signed, &headers, id, Refusal::new(e, false)).await,
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct DeleteForm {
    csrf: String,
    confirm: String,
}

/// `POST /ui/admin/users/{id}/delete` (`UserAdmin::delete`, as `DELETE
/// /api/v1/users/{id}`), once the username is typed as confirmation.
pub async fn delete(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Extension(signed): Extension<SignedIn>,
    headers: HeaderMap,
    Path(raw): Path<String>,
    Form(form): Form<DeleteForm>,
) -> Result<Response, ApiError> {
    let p = &signed.principal;
    let id = id_of(&raw)?;
    csrf::verify(&headers, Binding::login(p.session_id), &form.csrf)?;
    let user = state.user_admin().get(p, id).await?;
    if form.confirm.trim() != user.username {
        let refusal = Refusal::status(
            StatusCode::UNPROCESSABLE_ENTITY,
            "The username typed does not match: nothing was deleted. Type the username exactly to confirm.",
        );
        return refused(&state, &signed, &headers, id, refusal).await;
    }
    match state.user_admin().delete(p, id, &meta).await {
        Ok(()) => Ok(page::see_other("/ui/admin/users?notice=user_deleted").into_response()),
        Err(e) => refused(&state, &signed, &headers, id, Refusal::new(e, false)).await,
    }
}
