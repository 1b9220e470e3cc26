//! THE route table and the middleware stack around it.

use std::any::Any;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use http::StatusCode;
use tower::{Layer, ServiceBuilder};
use tower_http::catch_panic::{CatchPanic, CatchPanicLayer};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::normalize_path::{NormalizePath, NormalizePathLayer};
use tower_http::timeout::{Timeout, TimeoutLayer};

use crate::error::ApiError;
use crate::handlers::{admin, api_keys, auth, docs, export, files, health, jwks, mfa, users};
use crate::middleware::edge::{Edge, EdgeLayer};
use crate::middleware::{context, cors, rate_limit};
use crate::state::AppState;

/// The application as served: the middleware stack around the router.
pub type App = Edge<Timeout<CatchPanic<NormalizePath<Router>, PanicHandler>>>;

type PanicHandler = fn(Box<dyn Any + Send + 'static>) -> Response;

/// The application: every route of the contract behind the full stack.
pub fn app(state: AppState) -> App {
    build(state, routes())
}

/// The route table.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/health", get(health::health))
        .route("/ready", get(health::ready))
        .route("/.well-known/jwks.json", get(jwks::get))
        .merge(api_routes().layer(rate_limit::GLOBAL))
}

/// `/api/v1`, all behind the global per-IP limit; the auth routes have their
/// own, stricter ones too.
fn api_routes() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/auth/register",
            post(auth::register).layer(rate_limit::REGISTER),
        )
        .route(
            "/api/v1/auth/login",
            post(auth::login).layer(rate_limit::LOGIN),
        )
        .route(
            "/api/v1/auth/refresh",
            post(auth::refresh).layer(rate_limit::REFRESH),
        )
        .route("/api/v1/auth/logout", post(auth::logout))
        .route(
            "/api/v1/auth/login/mfa",
            post(mfa::login).layer(rate_limit::LOGIN),
        )
        .route("/api/v1/auth/2fa/setup", post(mfa::setup))
        .route("/api/v1/auth/2fa/enable", post(mfa::enable))
        .route("/api/v1/auth/2fa/disable", post(mfa::disable))
        .route(
            "/api/v1/api-keys",
            get(api_keys::list).post(api_keys::create),
        )
        .route("/api/v1/api-keys/{id}/rotate", post(api_keys::rotate))
        .route("/api/v1/api-keys/{id}", delete(api_keys::revoke))
        .route("/api/v1/users", get(users::list).post(users::create))
        .route("/api/v1/users/export", get(export::export))
        .route("/api/v1/users/me", get(users::me).put(users::update_me))
        .route(
            "/api/v1/users/me/change-password",
            post(users::change_password),
        )
        .route("/api/v1/users/me/sessions", get(users::sessions))
        .route(
            "/api/v1/users/me/sessions/{id}",
            delete(users::revoke_session),
        )
        .route(
            "/api/v1/users/{id}",
            get(users::get).patch(users::patch).delete(users::delete),
        )
        .route("/api/v1/files", get(files::list))
        .route(
            "/api/v1/files/{id}",
            get(files::download).delete(files::delete),
        )
        .route("/api/v1/admin/stats", get(admin::stats))
        .route("/api/v1/admin/config", get(admin::config))
        .route("/api/v1/admin/audit", get(admin::audit))
        .route("/api/v1/admin/audit/verify", get(admin::verify))
}

/// Room for the multipart framing around an upload's file: boundaries and
/// part headers. The file itself is capped at exactly `MAX_UPLOAD_BYTES`.
const MULTIPART_OVERHEAD: usize = 64 * 1024;

/// `POST /api/v1/files`: the one route whose body is not JSON. It is merged
/// in by [`build`] *after* the JSON body limit, which would otherwise refuse
/// every upload past `MAX_BODY_BYTES`; it gets its own limit instead.
fn upload_routes(max_upload_bytes: usize) -> Router<AppState> {
    Router::new()
        .route("/api/v1/files", post(files::upload))
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

/// Docs group: the OpenAPI document and the interactive page with its
/// bundled assets. Mounted by [`build`] only when `DOCS_ENABLED` (on by
/// default outside production).
pub fn docs_routes() -> Router<AppState> {
    Router::new()
        .route("/openapi.json", get(docs::openapi))
        .route("/docs", get(docs::page))
        .route("/docs/{asset}", get(docs::asset))
}

/// Wraps `routes` in the middleware stack. Public so tests can mount extra
/// routes behind exactly the production stack.
pub fn build(state: AppState, routes: Router<AppState>) -> App {
    let config = state.http();
    let routes = if config.docs_enabled {
        routes.merge(docs_routes())
    } else {
        routes
    };
    let inner = routes
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
        .merge(upload_routes(state.config().max_upload_bytes))
        .fallback(not_found)
        .with_state(state.clone());
    // Trailing-slash normalisation must happen before routing, so it wraps
    // the router instead of being one of its layers.
    let normalized = NormalizePathLayer::trim_trailing_slash().layer(inner);

    // Outermost first.
    ServiceBuilder::new()
        // 1-4. Request context (id, client IP, trace span, one access-log
        // line), security headers, problem+json for every error, and the
        // Host allow-list; then
        // 5. CORS, which answers preflights and decorates allowed origins:
        // see `edge`.
        .layer(EdgeLayer::new(state.clone(), cors::layer(&config.cors)))
        // 6. Bounded request time (408).
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            config.request_timeout,
        ))
        // 7. A panic becomes an opaque 500, never a dropped connection.
        .layer(CatchPanicLayer::custom(panic_response as PanicHandler))
        .service(normalized)
}

async fn not_found() -> ApiError {
    ApiError::not_found()
}

fn panic_response(payload: Box<dyn Any + Send + 'static>) -> Response {
    let message = payload
        .downcast_ref::<&str>()
        .map(ToString::to_string)
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    tracing::error!(panic = message, "handler panicked");
    StatusCode::INTERNAL_SERVER_ERROR.into_response()
}
