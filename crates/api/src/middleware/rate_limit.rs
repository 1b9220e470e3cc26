//! Rate limits per client IP: a global one on the API and stricter ones on
//! the auth routes. Every limited response carries `RateLimit-Limit`,
//! `RateLimit-Remaining` and `RateLimit-Reset` (IETF draft "RateLimit header
//! fields"); over the limit → 429 `rate_limited` with `Retry-After`.

use std::convert::Infallible;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::{MatchedPath, Request};
use axum::response::{IntoResponse, Response};
use futures_util::future::{BoxFuture, Either};
use gatehouse_core::audit::RequestMeta;
use gatehouse_core::network;
use gatehouse_core::ratelimit::{Decision, Rate};
use http::{HeaderMap, HeaderName, HeaderValue};
use tower::{Layer, Service};

use crate::error::ApiError;
use crate::middleware::RequestContext;
use crate::state::AppState;

static LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
static REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
static RESET: HeaderName = HeaderName::from_static("ratelimit-reset");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Policy {
    Global,
    Login,
    Register,
    Refresh,
    PasswordReset,
    VerifyEmail,
}

impl Policy {
    fn scope(self) -> &'static str {
        match self {
            Policy::Global => "global",
            Policy::Login => "login",
            Policy::Register => "register",
            Policy::Refresh => "refresh",
            Policy::PasswordReset => "password_reset",
            Policy::VerifyEmail => "verify_email",
        }
    }
}

fn secs_up(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// Sets the RateLimit fields unless an inner limit already reported fewer
/// requests remaining (the client cares about the tightest one).
fn set_headers(headers: &mut HeaderMap, d: &Decision) {
    let tighter_inside = headers
        .get(&REMAINING)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u32>().ok())
        .is_some_and(|inner| inner < d.remaining);
    if tighter_inside {
        return;
    }
    headers.insert(LIMIT.clone(), HeaderValue::from(d.limit));
    headers.insert(REMAINING.clone(), HeaderValue::from(d.remaining));
    headers.insert(RESET.clone(), HeaderValue::from(secs_up(d.reset_after)));
}

/// A limit refused the request: the problem to answer with, and the
/// decision whose headers it carries (none when no limiter answered).
#[derive(Debug)]
pub(crate) struct Refused {
    pub error: ApiError,
    pub decision: Option<Decision>,
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        let mut res = self.error.into_response();
        if let Some(d) = &self.decision {
            set_headers(res.headers_mut(), d);
        }
        res
    }
}

/// One limit, as every limited path applies it: the per-IP policies here
/// and the per-key limit of API keys. Over the limit, the refusal is
/// logged, counted and audited once per key and window. When no limiter
/// answers the request is refused (503): a limit never fails open.
pub(crate) async fn enforce(
    state: &AppState,
    scope: &'static str,
    key: &str,
    rate: Rate,
    route: &str,
    meta: impl FnOnce() -> RequestMeta,
) -> Result<Decision, Refused> {
    let decision = match state
        .limiter()
        .check(key, rate, state.clock().now_ms())
        .await
    {
        Ok(d) => d,
        Err(err) => {
            // The shared store falls back to in-process counting by itself;
            // reaching here means no limiter answered at all.
            tracing::error!(error = %err, scope, "rate limiter failed; request refused");
            return Err(Refused {
                error: err.into(),
                decision: None,
            });
        }
    };
    if decision.allowed {
        return Ok(decision);
    }
    crate::metrics::record_rate_limited(route);
    state.note_rate_limited(key, scope, route, &meta()).await;
    let retry = decision.retry_after.map_or(1, secs_up);
    Err(Refused {
        error: ApiError::too_many_requests("rate_limited", "Too many requests; slow down", retry),
        decision: Some(decision),
    })
}

async fn apply<S>(state: AppState, policy: Policy, req: Request, inner: S) -> Response
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    let config = &state.config().rate_limit;
    let rate = match policy {
        Policy::Global => Rate {
            count: config.global_per_minute,
            period: Duration::from_secs(60),
        },
        Policy::Login => config.login,
        Policy::Register => config.register,
        Policy::Refresh => config.refresh,
        Policy::PasswordReset => config.password_reset,
        Policy::VerifyEmail => config.verify_email,
    };
    let ctx = req.extensions().get::<RequestContext>().cloned();
    let client_ip = ctx.as_ref().and_then(|c| c.client_ip);
    // Counted per client network (an IPv6 /64 by default), recorded with the
    // address itself.
    let subject = client_ip.map_or_else(
        || "unknown".to_owned(),
        |ip| network::limit_subject(ip, config.ipv6_prefix).to_string(),
    );
    let key = format!("rl:{}:ip:{subject}", policy.scope());
    let ip = client_ip.map_or_else(|| "unknown".to_owned(), |ip| ip.to_string());
    // Owned (reference-counted) so no borrow of the request lives across
    // the limiter's await.
    let route = req.extensions().get::<MatchedPath>().cloned();
    let user_agent = req.headers().get(http::header::USER_AGENT).cloned();
    let meta = || {
        RequestMeta::new(
            Some(ip),
            user_agent.as_ref().and_then(|v| v.to_str().ok()),
            ctx.map(|c| c.request_id.to_string()),
        )
    };
    let route = route.as_ref().map_or("<unmatched>", MatchedPath::as_str);
    match enforce(&state, policy.scope(), &key, rate, route, meta).await {
        Ok(decision) => {
            let mut res = super::call(inner, req).await;
            set_headers(res.headers_mut(), &decision);
            res
        }
        Err(refused) => refused.into_response(),
    }
}

/// The global per-IP limit of the API.
pub const GLOBAL: RateLimitLayer = RateLimitLayer(Policy::Global);
/// The login limit (password and second-factor steps, re-authentication).
pub const LOGIN: RateLimitLayer = RateLimitLayer(Policy::Login);
pub const REGISTER: RateLimitLayer = RateLimitLayer(Policy::Register);
pub const REFRESH: RateLimitLayer = RateLimitLayer(Policy::Refresh);
/// Reset mails asked for (`RATE_LIMIT_PASSWORD_RESET`).
pub const PASSWORD_RESET: RateLimitLayer = RateLimitLayer(Policy::PasswordReset);
/// Verification mails asked for (`RATE_LIMIT_VERIFY_EMAIL`).
pub const VERIFY_EMAIL: RateLimitLayer = RateLimitLayer(Policy::VerifyEmail);

/// Applies one policy to the routes it wraps. The state comes from the
/// request's extensions (a request without it is refused: the limit fails
/// closed); with rate limiting off the request goes straight through,
/// without an allocation.
#[derive(Debug, Clone, Copy)]
pub struct RateLimitLayer(Policy);

impl<S> Layer<S> for RateLimitLayer {
    type Service = RateLimit<S>;

    fn layer(&self, inner: S) -> RateLimit<S> {
        RateLimit {
            inner,
            policy: self.0,
        }
    }
}

#[derive(Debug, Clone)]
pub struct RateLimit<S> {
    inner: S,
    policy: Policy,
}

impl<S> Service<Request> for RateLimit<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Either<S::Future, BoxFuture<'static, Result<Response, Infallible>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let state = match req.extensions().get::<AppState>() {
            Some(state) if state.config().rate_limit.enabled => state.clone(),
            Some(_) => return Either::Left(self.inner.call(req)),
            None => {
                let res = ApiError::internal("rate limit without application state; refused")
                    .into_response();
                return Either::Right(Box::pin(async move { Ok(res) }));
            }
        };
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let policy = self.policy;
        Either::Right(Box::pin(async move {
            Ok(apply(state, policy, req, inner).await)
        }))
    }
}
