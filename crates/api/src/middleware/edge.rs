//! The edge of the service: one layer that every request and response
//! passes, doing in order, outermost first:
//!
//! 1. request context (id, client IP, trace) — [`context`];
//! 2. security headers on the response — [`security_headers`];
//! 3. problem+json for every error response — [`problem`];
//! 4. the `Host` allow-list — [`host`];
//!
//! then the inner stack (CORS, timeout, panic catching, routing). One hand
//! written service instead of four `from_fn` layers: each of those boxes the
//! rest of the stack and clones it on every request, which cost more than
//! all the work they do.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::BoxError;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::Request;
use axum::response::Response;
use tower::{Layer, Service, ServiceExt};
use tracing::Instrument;

use crate::middleware::{context, host, problem, security_headers};
use crate::state::AppState;

/// Wraps the inner stack in [`Edge`].
#[derive(Debug, Clone)]
pub struct EdgeLayer {
    state: AppState,
}

impl EdgeLayer {
    pub fn new(state: AppState) -> Self {
        Self { state }
    }
}

impl<S> Layer<S> for EdgeLayer {
    type Service = Edge<S>;

    fn layer(&self, inner: S) -> Edge<S> {
        Edge {
            state: self.state.clone(),
            inner,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Edge<S> {
    state: AppState,
    inner: S,
}

impl<S, B> Service<Request> for Edge<S>
where
    S: Service<Request, Response = http::Response<B>, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        // The clone that was made ready is the one that serves (tower's
        // usual swap), the fresh clone waits for the next request.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let state = self.state.clone();
        Box::pin(async move { Ok(handle(state, inner, req).await) })
    }
}

async fn handle<S, B>(state: AppState, inner: S, mut req: Request) -> Response
where
    S: Service<Request, Response = http::Response<B>, Error = Infallible>,
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let started = context::begin(&state, &mut req);
    // For route-level layers built without the state (rate limits).
    req.extensions_mut().insert(state.clone());
    let credentials = security_headers::carries_credentials(req.headers());
    let res = match host::refusal(&state, &req) {
        Some(refused) => refused,
        None => match inner.oneshot(req).instrument(started.span().clone()).await {
            Ok(res) => res.map(Body::new),
            Err(never) => match never {},
        },
    };
    let mut res = problem::render(&state, started.request_id(), res);
    security_headers::apply(&state, started.is_https(), credentials, &mut res);
    started.finish(&mut res);
    res
}
