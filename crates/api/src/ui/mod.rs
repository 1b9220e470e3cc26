//! The hosted pages under `/ui`: server-rendered HTML over the same use
//! cases as the JSON API (sign in with the second step, sign up, sign out,
//! passkeys, a forgotten password, the pages mails link to, the account
//! with its profile, password, two-factor setup, API keys, passkeys and
//! sessions). One module per flow; the browser session
//! (`session`), the form check (`csrf`) and the redirect rule (`return_to`)
//! are shared by all of them.

mod account;
mod admin;
mod api_keys;
mod assets;
pub(crate) mod csrf;
mod mail_links;
mod page;
mod passkeys;
mod profile;
pub(crate) mod return_to;
pub(crate) mod session;
mod sign_in;
mod sign_up;
mod templates;
mod two_factor;

use axum::Router;
use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use http::HeaderValue;

use crate::error::ApiError;
use crate::middleware::rate_limit;
use crate::state::AppState;

/// Every page route, each behind the limits of the API route it mirrors;
/// mounted by `routes::mount` when `UI_ENABLED`.
pub(crate) fn router(state: &AppState) -> Router<AppState> {
    let signed_in = Router::new()
        .route("/ui/account", get(account::show))
        .route(
            "/ui/account/sessions/{id}/revoke",
            post(account::revoke_session),
        )
        .route(
            "/ui/account/sessions/revoke-others",
            post(account::revoke_others),
        )
        .route(
            "/ui/account/verify-email",
            post(account::send_verification).layer(rate_limit::VERIFY_EMAIL),
        )
        .route(
            "/ui/account/profile",
            get(profile::profile_form).post(profile::profile_submit),
        )
        // The current password is checked: limited like a login.
        .route(
            "/ui/account/password",
            get(profile::password_form)
                .merge(post(profile::password_submit).layer(rate_limit::LOGIN)),
        )
        .route("/ui/account/2fa", get(two_factor::show))
        .route("/ui/account/2fa/setup", post(two_factor::setup))
        .route(
            "/ui/account/2fa/enable",
            post(two_factor::enable).layer(rate_limit::LOGIN),
        )
        .route(
            "/ui/account/2fa/disable",
            post(two_factor::disable).layer(rate_limit::LOGIN),
        )
        .route(
            "/ui/account/api-keys",
            get(api_keys::show).post(api_keys::create),
        )
        .route("/ui/account/api-keys/{id}/rotate", post(api_keys::rotate))
        .route("/ui/account/api-keys/{id}/revoke", post(api_keys::revoke))
        .route("/ui/account/passkeys/begin", post(passkeys::add_begin))
        .route("/ui/account/passkeys/finish", post(passkeys::add_finish))
        .route("/ui/account/passkeys/{id}/rename", post(passkeys::rename))
        .route("/ui/account/passkeys/{id}/remove", post(passkeys::remove))
        // Re-authentication checks a secret: limited like a login.
        .route(
            "/ui/account/reauth",
            post(passkeys::reauth).layer(rate_limit::LOGIN),
        )
        .route(
            "/ui/account/reauth/passkey/begin",
            post(passkeys::reauth_passkey_begin).layer(rate_limit::LOGIN),
        )
        .route(
            "/ui/account/reauth/passkey/finish",
            post(passkeys::reauth_passkey_finish).layer(rate_limit::LOGIN),
        )
        .route("/ui/sign-out", post(sign_in::sign_out))
        .merge(admin::routes(state))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            session::require,
        ));
    let pages = Router::new()
        .route("/ui", get(index))
        .route(
            "/ui/sign-in",
            get(sign_in::form).merge(post(sign_in::submit).layer(rate_limit::LOGIN)),
        )
        .route(
            "/ui/sign-in/code",
            post(sign_in::submit_code).layer(rate_limit::LOGIN),
        )
        .route(
            "/ui/passkey/sign-in/begin",
            post(passkeys::sign_in_begin).layer(rate_limit::LOGIN),
        )
        .route(
            "/ui/passkey/sign-in/finish",
            post(passkeys::sign_in_finish).layer(rate_limit::LOGIN),
        )
        .route(
            "/ui/passkey/second-factor/begin",
            post(passkeys::second_factor_begin).layer(rate_limit::LOGIN),
        )
        .route(
            "/ui/passkey/second-factor/finish",
            post(passkeys::second_factor_finish).layer(rate_limit::LOGIN),
        )
        .route(
            "/ui/sign-up",
            get(sign_up::form).merge(post(sign_up::submit).layer(rate_limit::REGISTER)),
        )
        .route(
            "/ui/forgot-password",
            get(mail_links::forgot_form)
                .merge(post(mail_links::forgot_submit).layer(rate_limit::PASSWORD_RESET)),
        )
        .route(
            "/ui/reset-password",
            get(mail_links::reset_form)
                .merge(post(mail_links::reset_submit).layer(rate_limit::LOGIN)),
        )
        .route(
            "/ui/verify-email/send",
            get(mail_links::resend_form)
                .merge(post(mail_links::resend_submit).layer(rate_limit::VERIFY_EMAIL)),
        )
        .route(
            "/ui/verify-email",
            get(mail_links::verify_form)
                .merge(post(mail_links::verify_submit).layer(rate_limit::LOGIN)),
        )
        .merge(signed_in)
        // Any other path under /ui: the error page, in words.
        .route("/ui/{*rest}", any(not_found))
        // Pages are limited like the API; the assets below are not (they
        // are cached for a year).
        .layer(rate_limit::GLOBAL);
    let policy = content_security_policy(&state.http().ui.return_origins);
    pages
        .route("/ui/assets/{name}", get(assets::serve))
        .layer(middleware::from_fn(move |req: Request, next: Next| {
            let policy = policy.clone();
            async move { page::finish(req, next, policy).await }
        }))
}

/// `/ui`: the account, which sends a signed-out browser to sign in.
async fn index() -> Response {
    page::see_other("/ui/account").into_response()
}

/// A path under `/ui` that is no page: 404, shown as the error page.
async fn not_found() -> ApiError {
    ApiError::from(gatehouse_core::CoreError::NotFound)
}

/// The pages' own policy: only our stylesheet and scripts, no inline code
/// (CSP Level 3); the script talks to this origin only; forms post to it, or redirect after sign-in to
/// the `return_to` origins allowed (browsers hold redirects to it too).
fn content_security_policy(return_origins: &[String]) -> HeaderValue {
    let mut form_action = String::from("'self'");
    for origin in return_origins {
        form_action.push(' ');
        form_action.push_str(origin);
    }
    let policy = format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         connect-src 'self'; form-action {form_action}; frame-ancestors 'none'; base-uri 'none'"
    );
    // The origins were validated at startup (scheme://host[:port]).
    HeaderValue::from_str(&policy).unwrap_or_else(|_| {
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_runs_only_our_own_code() {
        let p = content_security_policy(&["https://app.example.com".to_owned()]);
        let p = p.to_str().unwrap_or_default();
        assert!(p.contains("script-src 'self'"), "{p}");
        assert!(!p.contains("unsafe-inline"), "{p}");
        assert!(
            p.contains("form-action 'self' https://app.example.com;"),
            "{p}"
        );
        assert!(p.contains("frame-ancestors 'none'"), "{p}");
    }
}
