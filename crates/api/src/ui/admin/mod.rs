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
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use gatehouse_core::rbac::Permission;
use gatehouse_core::service::{Attempt, Principal};
use http::{Method, StatusCode};
use minijinja::{Value, context};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;

use super::session::SignedIn;
use crate::extract::Meta;
use crate::state::AppState;

/// The console's routes; mounted among the signed-in pages.
pub(super) fn routes(state: &AppState) -> Router<AppState> {
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
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            record_refusal,
        ))
}

/// The permission a console route takes: that of the API route it
/// mirrors.
fn permission_of(method: &Method, route: &str) -> Permission {
    match (method, route) {
        (&Method::GET, "/ui/admin" | "/ui/admin/audit") => Permission::AdminRead,
        (&Method::GET, _) => Permission::UsersRead,
        (_, r) if r.ends_with("/delete") => Permission::UsersDelete,
        _ => Permission::UsersWrite,
    }
}

/// A console page refused for want of its permission goes to the audit
/// trail as `permission_denied`, as the API's route guard records it (the
/// use case behind the page made the refusal).
async fn record_refusal(
    State(state): State<AppState>,
    Meta(meta): Meta,
    req: Request,
    next: Next,
) -> Response {
    let signed = req.extensions().get::<SignedIn>().cloned();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned())
        .unwrap_or_default();
    let method = req.method().clone();
    let res = next.run(req).await;
    if res.status() == StatusCode::FORBIDDEN
        && let Some(signed) = signed
    {
        let permission = permission_of(&method, &route);
        if signed.principal.require(permission).is_err() {
            let attempt = Attempt {
                method: method.as_str(),
                route: &route,
            };
            state
                .events()
                .permission_denied(&signed.principal, permission, attempt, &meta)
                .await;
        }
    }
    res
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
    fn each_route_takes_the_permission_of_its_api_route() {
        for (method, route, permission) in [
            (Method::GET, "/ui/admin", Permission::AdminRead),
            (Method::GET, "/ui/admin/audit", Permission::AdminRead),
            (Method::GET, "/ui/admin/users", Permission::UsersRead),
            (Method::GET, "/ui/admin/users/{id}", Permission::UsersRead),
            (
                Method::POST,
                "/ui/admin/users/{id}/role",
                Permission::UsersWrite,
            ),
            (
                Method::POST,
                "/ui/admin/users/{id}/delete",
                Permission::UsersDelete,
            ),
        ] {
            assert_eq!(permission_of(&method, route), permission, "{route}");
        }
    }

    #[test]
    fn query_strings_keep_what_is_set_and_encode_it() {
        assert_eq!(query_string(&[("q", ""), ("role", "")]), "");
        assert_eq!(
            query_string(&[("q", "a&b c"), ("role", "user"), ("after", "")]),
            "?q=a%26b+c&role=user"
        );
    }
}
