//! THE route table: every route of the contract in the group it belongs to,
//! with its rate limits. A route is registered once, with its OpenAPI entry:
//! `routes!` takes the path, method and documentation from the handler's
//! `#[utoipa::path]`, so a route cannot be mounted undocumented.
//!
//! Permissions are checked first thing by each handler's `Require<perm::…>`
//! extractor; the groups say which callers a route is for.

use axum::extract::DefaultBodyLimit;
use axum::{Extension, Router};
use tower::ServiceBuilder;
use tower_http::limit::RequestBodyLimitLayer;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::handlers::docs::Document;
use crate::handlers::{
    admin, api_keys, auth, docs, export, files, health, jwks, mfa, passkeys, password_reset,
    reauth, users, verification,
};
use crate::middleware::{context, rate_limit};
use crate::state::AppState;
use crate::ui;

/// The route table, less the upload and the docs (added by [`mount`] with
/// their own limit and condition). Tests extend it with routes of their own.
pub fn routes() -> Router<AppState> {
    table().into()
}

/// Every documented route, for the OpenAPI document.
pub(crate) fn documented() -> OpenApiRouter<AppState> {
    table().merge(uploads()).merge(documentation())
}

fn table() -> OpenApiRouter<AppState> {
    operations().merge(
        public()
            .merge(authenticated())
            .merge(administration())
            // All of `/api/v1` is behind the global per-IP limit.
            .layer(rate_limit::GLOBAL),
    )
}

/// Probes and the public verification keys, outside `/api/v1`.
fn operations() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(health::health))
        .routes(routes!(health::ready))
        .routes(routes!(jwks::get))
}

/// No credentials: registering, signing in and out, verifying an address
/// and resetting a password. The routes that check a secret, spend a
/// refresh token or send mail have their own, stricter limits too (mail
/// also per address, in the use case).
fn public() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(auth::register).layer(rate_limit::REGISTER))
        .routes(routes!(auth::login).layer(rate_limit::LOGIN))
        .routes(routes!(mfa::login).layer(rate_limit::LOGIN))
        .routes(routes!(passkeys::login_begin).layer(rate_limit::LOGIN))
        .routes(routes!(passkeys::login_finish).layer(rate_limit::LOGIN))
        .routes(routes!(passkeys::mfa_begin).layer(rate_limit::LOGIN))
        .routes(routes!(passkeys::mfa_finish).layer(rate_limit::LOGIN))
        .routes(routes!(passkeys::register_passwordless).layer(rate_limit::REGISTER))
        .routes(routes!(passkeys::signup_begin).layer(rate_limit::LOGIN))
        .routes(routes!(passkeys::signup_finish).layer(rate_limit::LOGIN))
        .routes(routes!(auth::refresh).layer(rate_limit::REFRESH))
        .routes(routes!(auth::logout))
        // Bearer optional: the caller's own address, or `{email}`.
        .routes(routes!(verification::request).layer(rate_limit::VERIFY_EMAIL))
        .routes(routes!(verification::confirm).layer(rate_limit::LOGIN))
        .routes(routes!(password_reset::request).layer(rate_limit::PASSWORD_RESET))
        .routes(routes!(password_reset::confirm).layer(rate_limit::LOGIN))
}

/// A signed-in caller and their own account, keys and files (`self:*`,
/// `content:*`). The upload is in [`uploads`]. Re-authentication checks a
/// secret, so it is limited like login.
fn authenticated() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(reauth::reauth).layer(rate_limit::LOGIN))
        .routes(routes!(reauth::passkey_begin).layer(rate_limit::LOGIN))
        .routes(routes!(mfa::setup))
        .routes(routes!(mfa::enable))
        .routes(routes!(mfa::disable))
        .routes(routes!(users::me, users::update_me))
        .routes(routes!(users::change_password))
        .routes(routes!(users::sessions))
        .routes(routes!(users::revoke_session))
        .routes(routes!(passkeys::register_begin))
        .routes(routes!(passkeys::register_finish))
        .routes(routes!(passkeys::list))
        .routes(routes!(passkeys::rename, passkeys::remove))
        .routes(routes!(passkeys::add_password, passkeys::remove_password))
        .routes(routes!(api_keys::list, api_keys::create))
        .routes(routes!(api_keys::rotate))
        .routes(routes!(api_keys::revoke))
        .routes(routes!(files::list))
        .routes(routes!(files::download, files::delete))
}

/// User administration and the admin console (`users:*`, `admin:*`).
fn administration() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(users::list, users::create))
        .routes(routes!(export::export))
        .routes(routes!(users::get, users::patch, users::delete))
        .routes(routes!(admin::stats))
        .routes(routes!(admin::config))
        .routes(routes!(admin::audit))
        .routes(routes!(admin::verify))
}

/// `POST /api/v1/files` (signed in, `content:write`): the one route whose
/// body is not JSON, so [`mount`] gives it its own body limit.
fn uploads() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(files::upload))
}

/// The OpenAPI document and the interactive page with its bundled assets;
/// mounted only when `DOCS_ENABLED` (on by default outside production).
fn documentation() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(docs::openapi))
        .routes(routes!(docs::page))
        .routes(routes!(docs::asset))
}

/// `routes` with what the settings decide: the docs (serving `document`),
/// the hosted pages,
/// the JSON body limit, the upload behind its own limit, and the fallback.
pub(crate) fn mount(
    routes: Router<AppState>,
    state: &AppState,
    document: fn() -> &'static str,
) -> Router<AppState> {
    let config = state.http();
    let routes = if config.docs_enabled {
        let docs = Router::from(documentation()).layer(Extension(Document(document())));
        routes.merge(docs)
    } else {
        routes
    };
    // The hosted pages: with `UI_ENABLED=false` no `/ui` route exists.
    let routes = if config.ui.enabled {
        routes.merge(ui::router(state))
    } else {
        routes
    };
    routes
        .layer(
            ServiceBuilder::new()
                // The matched route template, for logs and metrics.
                .layer(context::CaptureRouteLayer)
                // JSON bodies: refused with 413 from Content-Length up
                // front, or once a chunked body passes the limit while
                // being read.
                .layer(RequestBodyLimitLayer::new(config.max_body_bytes)),
        )
        // Uploads: their own limit, so merged after the JSON one.
        .merge(upload(state.config().max_upload_bytes))
        .fallback(not_found)
}

/// Room for the multipart framing around an upload's file: boundaries and
/// part headers. The file itself is capped at exactly `MAX_UPLOAD_BYTES`.
const MULTIPART_OVERHEAD: usize = 64 * 1024;

/// [`uploads`] behind the upload limit instead of the JSON one, which would
/// otherwise refuse every upload past `MAX_BODY_BYTES`.
fn upload(max_upload_bytes: usize) -> Router<AppState> {
    Router::from(uploads())
        // Bodies past the upload limit (plus framing) get 413, from
        // Content-Length up front or while a chunked body is read...
        .layer(
            ServiceBuilder::new()
                // ...so axum's own 2 MB default for `Multipart` steps aside.
                .layer(DefaultBodyLimit::disable())
                .layer(RequestBodyLimitLayer::new(
                    max_upload_bytes.saturating_add(MULTIPART_OVERHEAD),
                )),
        )
        // Limited before any of the body is read.
        .layer(rate_limit::GLOBAL)
        .layer(context::CaptureRouteLayer)
}

async fn not_found() -> ApiError {
    ApiError::not_found()
}
