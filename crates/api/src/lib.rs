//! Gatehouse's HTTP adapter: the router (a pure function of the state, so tests
//! drive it with `oneshot`), the middleware stack, and `serve`.

mod app;
pub mod config;
mod cookies;
pub mod error;
pub mod extract;
mod handlers;
pub mod metrics;
pub mod middleware;
pub mod openapi;
mod responses;
mod routes;
pub mod state;

use std::future::Future;
use std::net::SocketAddr;

use axum::ServiceExt as _;
use tokio::net::TcpListener;

pub use app::{App, app, build};
pub use config::{AppConfig, HttpConfig};
pub use error::{ApiError, FieldError};
pub use routes::routes;
pub use state::{AppState, Services};

/// Serves `app` on an already-bound listener until `shutdown` completes, then
/// stops accepting and lets in-flight requests finish.
pub async fn serve(
    listener: TcpListener,
    app: App,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
