//! Per-request context: the request id, the resolved client IP, whether the
//! request arrived over HTTPS, the caller's trace id, and the one access-log
//! line (and metrics sample) per request.

use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, OnceLock};
use std::task::{Context as TaskContext, Poll};
use std::time::Instant;

use axum::extract::{ConnectInfo, MatchedPath, Request};
use axum::response::Response;
use gatehouse_core::network;
use http::{HeaderName, HeaderValue, Method};
use tower::{Layer, Service};
use tracing::Span;
use uuid::Uuid;

use crate::config::HttpConfig;
use crate::metrics;
use crate::middleware::trace_context::{self, TRACEPARENT};
use crate::server::OverTls;
use crate::state::AppState;

pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");

/// What later layers and handlers know about the request.
#[derive(Debug, Clone)]
pub struct RequestContext {
    pub request_id: Arc<str>,
    /// `None` only when no socket peer is known (in-process tests).
    pub client_ip: Option<IpAddr>,
    pub is_https: bool,
    /// From a valid W3C `traceparent` header, to join the caller's trace.
    pub trace_id: Option<Arc<str>>,
    filled: Arc<Filled>,
}

/// Facts learned after routing, read back for the access log.
#[derive(Debug, Default)]
struct Filled {
    route: OnceLock<MatchedPath>,
    user_id: OnceLock<Uuid>,
}

impl RequestContext {
    /// Records the authenticated user for the access log.
    pub fn set_user_id(&self, user_id: Uuid) {
        let _ = self.filled.user_id.set(user_id);
    }
}

/// Accepts a client's request id only if it is short and plain, so it is
/// safe to echo in headers and logs.
fn is_valid_request_id(value: &[u8]) -> bool {
    !value.is_empty()
        && value.len() <= 64
        && value
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// The client IP, and whether the socket peer is a trusted proxy.
fn client(config: &HttpConfig, req: &Request) -> (Option<IpAddr>, bool) {
    // An IPv4 peer on a dual-stack socket arrives mapped into IPv6.
    let Some(peer) = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip().to_canonical())
    else {
        return (None, false);
    };
    if !config.trusted_proxies.iter().any(|n| n.contains(&peer)) {
        return (Some(peer), false);
    }
    // Every line, in order: together they are one list (RFC 9110 §5.3). A
    // line that is not text reads as a malformed hop, which ends the walk.
    let forwarded_for: Vec<Cow<'_, str>> = req
        .headers()
        .get_all(&X_FORWARDED_FOR)
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()))
        .collect();
    let lines = forwarded_for.iter().map(AsRef::as_ref);
    let client_ip = network::client_ip(peer, lines, &config.trusted_proxies);
    (Some(client_ip), true)
}

/// What [`begin`] learned about a request, for [`Started::finish`].
#[derive(Debug)]
pub struct Started {
    at: Instant,
    /// The same context the request carries.
    ctx: RequestContext,
    request_id_header: Option<HeaderValue>,
    method: Method,
    span: Span,
}

/// First thing on every request: assigns the request id, resolves the
/// client, opens the request span and puts the [`RequestContext`] in the
/// request's extensions.
pub fn begin(state: &AppState, req: &mut Request) -> Started {
    let at = Instant::now();
    let request_id: Arc<str> = match req.headers().get(&X_REQUEST_ID) {
        Some(v) if is_valid_request_id(v.as_bytes()) => {
            Arc::from(String::from_utf8_lossy(v.as_bytes()).as_ref())
        }
        _ => {
            let mut buf = uuid::Uuid::encode_buffer();
            Arc::from(&*Uuid::now_v7().hyphenated().encode_lower(&mut buf))
        }
    };
    let config = state.http();
    let (client_ip, is_trusted_peer) = client(config, req);
    // X-Forwarded-Proto is believed only from a trusted proxy.
    let forwarded_https = is_trusted_peer
        && req
            .headers()
            .get(&X_FORWARDED_PROTO)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https"));
    let method = req.method().clone();
    let span = trace_context::request_span(&method, req.headers(), &request_id);
    let trace_id: Option<Arc<str>> = req
        .headers()
        .get(&TRACEPARENT)
        .and_then(|v| trace_context::trace_id(v.as_bytes()))
        .map(Arc::from)
        .or_else(|| trace_context::exported_trace_id(&span).map(Arc::from));
    // Made once: echoed on the request (for handlers) and the response.
    let request_id_header = HeaderValue::from_str(&request_id).ok();
    if let Some(v) = &request_id_header {
        req.headers_mut().insert(X_REQUEST_ID.clone(), v.clone());
    }
    let ctx = RequestContext {
        request_id,
        client_ip,
        // A request on the TLS listener arrived over HTTPS whatever it says.
        is_https: req.extensions().get::<OverTls>().is_some() || forwarded_https,
        trace_id,
        filled: Arc::default(),
    };
    req.extensions_mut().insert(ctx.clone());
    Started {
        at,
        ctx,
        request_id_header,
        method,
        span,
    }
}

impl Started {
    pub fn context(&self) -> &RequestContext {
        &self.ctx
    }

    /// The request's span (disabled unless traces are exported).
    pub fn span(&self) -> &Span {
        &self.span
    }

    /// Last thing on every response: echoes the request id, records the
    /// metrics sample and writes the one access-log line. Both see every
    /// response (errors and refusals included) with the same route
    /// template.
    pub fn finish(self, res: &mut Response) {
        if let Some(v) = self.request_id_header {
            res.headers_mut().insert(X_REQUEST_ID.clone(), v);
        }
        let elapsed = self.at.elapsed();
        let ctx = &self.ctx;
        let route = ctx
            .filled
            .route
            .get()
            .map_or(metrics::UNMATCHED_ROUTE, MatchedPath::as_str);
        metrics::record_request(&self.method, route, res.status(), elapsed);
        let status = res.status().as_u16();
        trace_context::finish_span(&self.span, &self.method, route, status);
        let duration_ms = (elapsed.as_secs_f64() * 1_000_000.0).round() / 1000.0;
        tracing::info!(
            target: "gatehouse::access",
            request_id = %ctx.request_id,
            method = %self.method,
            route,
            status,
            duration_ms,
            ip = ctx.client_ip.map(|ip| ip.to_string()),
            user_id = ctx.filled.user_id.get().map(tracing::field::display),
            trace_id = ctx.trace_id.as_deref(),
            "request"
        );
    }
}

/// Inner layer (runs after routing): notes the matched route template, so
/// logs and metrics never carry raw paths with ids. A plain service, not a
/// `from_fn` one: it adds no allocation to the request.
#[derive(Debug, Clone, Copy, Default)]
pub struct CaptureRouteLayer;

impl<S> Layer<S> for CaptureRouteLayer {
    type Service = CaptureRoute<S>;

    fn layer(&self, inner: S) -> CaptureRoute<S> {
        CaptureRoute { inner }
    }
}

#[derive(Debug, Clone)]
pub struct CaptureRoute<S> {
    inner: S,
}

impl<S: Service<Request>> Service<Request> for CaptureRoute<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> S::Future {
        if let (Some(path), Some(ctx)) = (
            req.extensions().get::<MatchedPath>(),
            req.extensions().get::<RequestContext>(),
        ) {
            let _ = ctx.filled.route.set(path.clone());
        }
        self.inner.call(req)
    }
}

#[cfg(test)]
mod tests {
    use super::is_valid_request_id;

    #[test]
    fn request_ids_are_checked() {
        assert!(is_valid_request_id(b"abc-123_x.y"));
        assert!(is_valid_request_id(&[b'a'; 64]));
        assert!(!is_valid_request_id(&[b'a'; 65]));
        assert!(!is_valid_request_id(b""));
        assert!(!is_valid_request_id(b"has space"));
        assert!(!is_valid_request_id(b"inject\r\nx"));
    }
}
