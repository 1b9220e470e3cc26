//! The edge of the service: one layer that every request and response
//! passes, doing in order, outermost first:
//!
//! 1. request context (id, client IP, trace) — [`context`];
//! 2. security headers on the response — [`security_headers`];
//! 3. problem+json for every error response — [`problem`];
//! 4. the `Host` allow-list — [`host`];
//!
//! then CORS (skipped, with the same headers added, for requests that
//! carry no `Origin`) and the inner stack (timeout, panic catching,
//! routing). One hand-written service instead of four `from_fn` layers:
//! each of those boxes the rest of the stack and clones it on every
//! request, which cost more than all the work they do.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::BoxError;
use axum::body::{Bytes, HttpBody};
use axum::extract::Request;
use axum::response::Response;
use http::header::ORIGIN;
use http::{HeaderMap, Method};
use tower::{Layer, Service};
use tower_http::cors::{Cors, CorsLayer};
use tracing::Instrument;

use crate::middleware::{call, context, cors, host, problem, security_headers};
use crate::state::AppState;

/// Wraps the inner stack in CORS and [`Edge`].
#[derive(Debug, Clone)]
pub struct EdgeLayer {
    state: AppState,
    cors: CorsLayer,
    plain_cors: Arc<HeaderMap>,
}

impl EdgeLayer {
    pub fn new(state: AppState, cors: CorsLayer) -> Self {
        let plain_cors = Arc::new(cors::headers_without_origin(&cors));
        Self {
            state,
            cors,
            plain_cors,
        }
    }
}

impl<S> Layer<S> for EdgeLayer {
    type Service = Edge<S>;

    fn layer(&self, inner: S) -> Edge<S> {
        Edge {
            state: self.state.clone(),
            inner: self.cors.layer(inner),
            plain_cors: self.plain_cors.clone(),
        }
    }
}

/// The edge around CORS around `S`.
#[derive(Debug, Clone)]
pub struct Edge<S> {
    state: AppState,
    inner: Cors<S>,
    /// What CORS adds to a response to a request without `Origin` (not a
    /// preflight): computed once by the CORS layer itself, so a request
    /// from a non-browser client skips the layer, which clones its whole
    /// policy for every request, and still gets the very same headers.
    plain_cors: Arc<HeaderMap>,
}

impl<S> Edge<S> {
    /// The state the application was built with (its settings included).
    pub fn state(&self) -> &AppState {
        &self.state
    }
}

/// The service a request goes on to.
enum Next<S> {
    /// Boxed: the policy is large and this is the less common path.
    Cors(Box<Cors<S>>),
    Plain(S, Arc<HeaderMap>),
}

impl<S, B> Service<Request> for Edge<S>
where
    S: Service<Request, Response = http::Response<B>, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: HttpBody<Data = Bytes> + Default + Send + 'static,
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
        let next = if req.method() != Method::OPTIONS && !req.headers().contains_key(ORIGIN) {
            let clone = self.inner.get_ref().clone();
            let inner = std::mem::replace(self.inner.get_mut(), clone);
            Next::Plain(inner, self.plain_cors.clone())
        } else {
            let clone = self.inner.clone();
            Next::Cors(Box::new(std::mem::replace(&mut self.inner, clone)))
        };
        let state = self.state.clone();
        Box::pin(async move { Ok(handle(state, next, req).await) })
    }
}

async fn handle<S, B>(state: AppState, next: Next<S>, mut req: Request) -> Response
where
    S: Service<Request, Response = http::Response<B>, Error = Infallible>,
    B: HttpBody<Data = Bytes> + Default + Send + 'static,
    B::Error: Into<BoxError>,
{
    let started = context::begin(&state, &mut req);
    // For route-level layers built without the state (rate limits).
    req.extensions_mut().insert(state.clone());
    let credentials = security_headers::carries_credentials(req.headers());
    let span = started.span().clone();
    let res = match (host::refusal(&state, &req), next) {
        (Some(refused), _) => refused,
        (None, Next::Cors(inner)) => call(*inner, req).instrument(span).await,
        (None, Next::Plain(inner, plain_cors)) => {
            let mut res = call(inner, req).instrument(span).await;
            cors::add_headers(&plain_cors, &mut res);
            res
        }
    };
    let ctx = started.context();
    let mut res = problem::render(&state, &ctx.request_id, res);
    security_headers::apply(&state, ctx.is_https, credentials, &mut res);
    started.finish(&mut res);
    res
}
