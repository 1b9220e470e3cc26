//! `GET /ui/admin/users`: the users, searched by username prefix and
//! filtered by role and activity, a page at a time after a cursor, through
//! `UserAdmin::list` as `GET /api/v1/users?limit=&after=` does.

use axum::Extension;
use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use gatehouse_core::rbac::{Permission, Role};
use gatehouse_core::service::{PageRequest, UserPage};
use gatehouse_core::user::User;
use http::{HeaderMap, StatusCode};
use minijinja::context;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{nav, query_string, shown};
use crate::error::{ApiError, FieldError};
use crate::handlers::users::list_filters;
use crate::state::AppState;
use crate::ui::csrf::{Binding, FormKey};
use crate::ui::page::{self, Page, Refusal, Shown};
use crate::ui::session::SignedIn;
use crate::ui::templates;

const DEFAULT_LIMIT: u64 = 20;
const MAX_LIMIT: u64 = 100;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RawList {
    q: String,
    role: String,
    is_active: String,
    after: String,
    limit: String,
    notice: String,
}

#[derive(Debug, Serialize)]
struct Row {
    id: Uuid,
    username: String,
    full_name: Option<String>,
    email: String,
    email_verified: bool,
    role: &'static str,
    is_active: bool,
    mfa_enabled: bool,
    created: String,
    created_at: String,
}

impl From<User> for Row {
    fn from(u: User) -> Self {
        let (created, created_at) = shown(u.created_at);
        Self {
            id: u.id,
            username: u.username,
            full_name: u.full_name,
            email: u.email,
            email_verified: u.email_verified,
            role: u.role.as_str(),
            is_active: u.is_active,
            mfa_enabled: u.mfa_enabled,
            created,
            created_at,
        }
    }
}

fn notice(code: &str) -> Option<&'static str> {
    match code {
        "user_deleted" => Some("The user was deleted, with their sessions, keys and files."),
        _ => None,
    }
}

/// `GET /ui/admin/users`.
pub async fn list(
    State(state): State<AppState>,
    Extension(signed): Extension<SignedIn>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let p = &signed.principal;
    let key = FormKey::of(&headers, state.http().secure_cookies)?;
    let raw: RawList =
        serde_urlencoded::from_str(query.as_deref().unwrap_or_default()).unwrap_or_default();
    let mut errors = Vec::new();
    let filters = list_filters(
        Some(raw.q.clone()).filter(|q| !q.is_empty()),
        Some(raw.role.as_str()),
        Some(raw.is_active.as_str()),
        &mut errors,
    );
    let after = match raw.after.as_str() {
        "" => None,
        a => Uuid::parse_str(a)
            .map_err(|_| errors.push(FieldError::new("after", "is not a page of this list")))
            .ok(),
    };
    let limit = match raw.limit.as_str() {
        "" => DEFAULT_LIMIT,
        l => match l.parse::<u64>() {
            Ok(n) if n >= 1 => n.min(MAX_LIMIT),
            _ => {
                errors.push(FieldError::new(
                    "limit",
                    "must be a whole number of at least 1",
                ));
                DEFAULT_LIMIT
            }
        },
    };
    let filter_pairs = [
        ("q", raw.q.as_str()),
        ("role", raw.role.as_str()),
        ("is_active", raw.is_active.as_str()),
    ];
    let form = context! {
        q => &raw.q,
        role => &raw.role,
        is_active => &raw.is_active,
        limit => if raw.limit.is_empty() { String::new() } else { limit.to_string() },
    };
    let roles: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
    let limit_text = limit.to_string();
    let mut kept = filter_pairs.to_vec();
    if !raw.limit.is_empty() {
        kept.push(("limit", limit_text.as_str()));
    }
    let first = (!raw.after.is_empty()).then(|| format!("/ui/admin/users{}", query_string(&kept)));
    let render = |users: Vec<Row>, next: Option<String>, error: Option<&Shown>| {
        templates::render(
            page::product(&state),
            "admin_users.html",
            context! {
                csrf => key.token(Binding::login(p.session_id)),
                nav => nav(p, "users"),
                notice => notice(&raw.notice),
                error => error,
                form => form.clone(),
                roles => roles.clone(),
                users => users,
                next => next,
                first => first.clone(),
            },
        )
    };
    if !errors.is_empty() {
        // The list is not read, but the page still takes what reading it
        // would (the use case's own check).
        p.require(Permission::UsersRead)?;
        let refusal = Refusal::new(ApiError::validation(errors), true);
        let html = render(Vec::new(), None, Some(&refusal.shown))?;
        return Ok(refusal.page(html));
    }
    let result = state
        .user_admin()
        .list(p, &filters, PageRequest::After { after, limit })
        .await?;
    let (users, next_cursor) = match result.as_ref().clone() {
        UserPage::Keyset { users, next_cursor } => (users, next_cursor),
        UserPage::Paged { users, .. } => (users, None),
    };
    let next = next_cursor.map(|c| {
        let cursor = c.to_string();
        let mut pairs = kept.clone();
        pairs.push(("after", cursor.as_str()));
        format!("/ui/admin/users{}", query_string(&pairs))
    });
    let html = render(users.into_iter().map(Row::from).collect(), next, None)?;
    Ok(Page::new(StatusCode::OK, html)
        .cookie(key.cookie())
        .into_response())
}
