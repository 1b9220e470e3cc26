//! The admin console: the dashboard of statistics with its hourly charts,
//! the users with one user's page (role, activity, logins, API keys,
//! deletion), and the audit trail with its verification. Every page and
//! form calls the use case its API route calls (`Operations`, `UserAdmin`,
//! `UserAccess`), which checks the permission — `admin:read` for the
//! dashboard and the trail, `users:read`/`users:write`/`users:delete` for
//! users, as in the API; a page only chooses what to offer.

mod audit;
mod charts;
mod dashboard;
mod user;
mod users;

use axum::Router;
use axum::routing::{get, post};
use gatehouse_core::rbac::Permission;
use gatehouse_core::service::Principal;
use minijinja::{Value, context};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;

use crate::state::AppState;

/// The console's routes; mounted among the signed-in pages.
pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/ui/admin", get(dashboard::show))
        .route("/ui/admin/users", get(users::list))
        .route("/ui/admin/users/{id}", get(user::show))
        .route("/ui/admin/users/{id}/role", post(user::change_role))
        .route("/ui/admin/users/{id}/active", post(user::set_active))
        .route(
            "/ui/admin/users/{id}/sessions/{session}/revoke",
            post(user::revoke_session),
        )
        .route(
            "/ui/admin/users/{id}/sessions/revoke-all",
            post(user::revoke_sessions),
        )
        .route(
            "/ui/admin/users/{id}/api-keys/{key}/revoke",
            post(user::revoke_api_key),
        )
        .route("/ui/admin/users/{id}/delete", post(user::delete))
        .route("/ui/admin/audit", get(audit::list))
}

/// Where the console starts for `p`, if it may see any of it: the
/// dashboard with `admin:read`, the users with `users:read` alone.
pub(super) fn entry(p: &Principal) -> Option<&'static str> {
    if p.require(Permission::AdminRead).is_ok() {
        Some("/ui/admin")
    } else if p.require(Permission::UsersRead).is_ok() {
        Some("/ui/admin/users")
    } else {
        None
    }
}

/// What the console's navigation offers `p`, and which page is open.
fn nav(p: &Principal, current: &str) -> Value {
    context! {
        current => current,
        stats => p.require(Permission::AdminRead).is_ok(),
        users => p.require(Permission::UsersRead).is_ok(),
    }
}

/// A time as the console shows it (UTC, to the minute) and as `datetime`.
fn shown(at: OffsetDateTime) -> (String, String) {
    let human = at
        .format(format_description!(
            "[year]-[month]-[day] [hour]:[minute] UTC"
        ))
        .unwrap_or_default();
    (human, at.format(&Rfc3339).unwrap_or_default())
}

/// `key=value` pairs as a query string (empty values left out), with the
/// leading `?` when there is any.
fn query_string(pairs: &[(&str, &str)]) -> String {
    let kept: Vec<_> = pairs.iter().filter(|(_, v)| !v.is_empty()).collect();
    if kept.is_empty() {
        return String::new();
    }
    serde_urlencoded::to_string(kept).map_or_else(|_| String::new(), |q| format!("?{q}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_strings_keep_what_is_set_and_encode_it() {
        assert_eq!(query_string(&[("q", ""), ("role", "")]), "");
        assert_eq!(
            query_string(&[("q", "a&b c"), ("role", "user"), ("after", "")]),
            "?q=a%26b+c&role=user"
        );
    }
}
