//! The middleware stack. Order matters and is written once, in
//! [`crate::app::build`], outermost first; the layers that belong to some
//! routes only (limits, route capture) are in [`crate::routes`].

pub mod context;
pub mod cors;
pub mod edge;
pub mod host;
pub mod problem;
pub mod rate_limit;
pub mod security_headers;
pub mod trace_context;

pub use context::RequestContext;

use std::convert::Infallible;

use axum::BoxError;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::Request;
use axum::response::Response;
use tower::{Service, ServiceExt};

/// Runs the rest of the stack (which cannot fail) for one request.
pub(crate) async fn call<S, B>(inner: S, req: Request) -> Response
where
    S: Service<Request, Response = http::Response<B>, Error = Infallible>,
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    match inner.oneshot(req).await {
        Ok(res) => res.map(Body::new),
        Err(never) => match never {},
    }
}
