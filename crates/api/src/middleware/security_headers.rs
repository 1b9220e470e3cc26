//! Security headers on every response, errors included (OWASP Secure Headers).

use axum::response::Response;
use http::header::{
    AUTHORIZATION, CACHE_CONTROL, CONTENT_SECURITY_POLICY, COOKIE, REFERRER_POLICY,
    STRICT_TRANSPORT_SECURITY, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use http::{HeaderMap, HeaderName, HeaderValue};

use crate::state::AppState;

static PERMISSIONS_POLICY: HeaderName = HeaderName::from_static("permissions-policy");
static COOP: HeaderName = HeaderName::from_static("cross-origin-opener-policy");
pub static X_API_KEY: HeaderName = HeaderName::from_static("x-api-key");
/// Name of the refresh-token cookie.
pub const REFRESH_COOKIE: &str = "refresh_token";

/// The API serves JSON only, so nothing may load, frame or run from it. The
/// docs page sets its own, looser policy, which is kept.
const DEFAULT_CSP: &str = "default-src 'none'; frame-ancestors 'none'";

/// True when the request carries credentials: its response must not be
/// stored by any cache (RFC 9111 §5.2.2.5).
pub fn carries_credentials(headers: &HeaderMap) -> bool {
    headers.contains_key(AUTHORIZATION)
        || headers.contains_key(&X_API_KEY)
        || headers.get_all(COOKIE).iter().any(|v| {
            v.to_str().is_ok_and(|s| {
                s.split(';')
                    .any(|pair| pair.trim().split('=').next() == Some(REFRESH_COOKIE))
            })
        })
}

/// Sets the headers on a response to a request that came over HTTPS or not,
/// with credentials or not.
pub fn apply(state: &AppState, is_https: bool, has_credentials: bool, res: &mut Response) {
    let h = res.headers_mut();
    // Room for these and the request id at once, instead of growing the
    // map several times on every response.
    h.reserve(10);
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        REFERRER_POLICY,
        HeaderValue::from_static("strict-origin-when-cross-origin"),
    );
    if !h.contains_key(CONTENT_SECURITY_POLICY) {
        h.insert(
            CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(DEFAULT_CSP),
        );
    }
    h.insert(
        PERMISSIONS_POLICY.clone(),
        HeaderValue::from_static("camera=(), microphone=(), geolocation=(), payment=()"),
    );
    h.insert(COOP.clone(), HeaderValue::from_static("same-origin"));
    // HSTS is meaningful only over HTTPS (RFC 6797 §7.2) unless forced.
    if is_https || state.http().hsts_always {
        h.insert(
            STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        );
    }
    if has_credentials {
        h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    h.remove(http::header::SERVER);
    h.remove("x-powered-by");
}
