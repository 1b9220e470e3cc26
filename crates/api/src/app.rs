//! The application as served: the middleware stack around the mounted route
//! table, written outermost first.

use std::any::Any;
use std::sync::OnceLock;

use axum::Router;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use tower::{Layer, ServiceBuilder};
use tower_http::catch_panic::{CatchPanic, CatchPanicLayer};
use tower_http::normalize_path::{NormalizePath, NormalizePathLayer};
use tower_http::timeout::{Timeout, TimeoutLayer};

use crate::middleware::cors;
use crate::middleware::edge::{Edge, EdgeLayer};
use crate::openapi::ApiDoc;
use crate::routes;
use crate::state::AppState;

/// The application as served: the middleware stack around the router.
pub type App = Edge<Timeout<CatchPanic<NormalizePath<Router>, PanicHandler>>>;

type PanicHandler = fn(Box<dyn Any + Send + 'static>) -> Response;

/// The application: every route of the contract behind the full stack.
pub fn app(state: AppState) -> App {
    build(state, routes::routes())
}

/// Wraps `routes` in the middleware stack. Public so tests can mount extra
/// routes behind exactly the production stack.
pub fn build(state: AppState, routes: Router<AppState>) -> App {
    let config = state.http();
    let inner = routes::mount(routes, &state, served_document).with_state(state.clone());
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

/// The OpenAPI document as `/openapi.json` serves it, built once.
fn served_document() -> &'static str {
    static DOCUMENT: OnceLock<String> = OnceLock::new();
    DOCUMENT.get_or_init(ApiDoc::json)
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
