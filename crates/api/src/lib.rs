//! Gatehouse's HTTP adapter: the router (a pure function of the state, so tests
//! drive it with `oneshot`), the middleware stack, and `serve` (the accept
//! loop and its per-connection limits).

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
pub mod server;
pub mod state;
mod streams;
mod ui;

pub use app::{App, app, build};
pub use config::{AppConfig, HttpConfig};
pub use error::{ApiError, FieldError};
pub use routes::routes;
pub use server::{Handshake, Plain, Tls, TlsError, serve, serve_service, serve_with};
pub use state::{AppState, Services};
