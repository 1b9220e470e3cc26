//! The browser session of the pages: the login's access and refresh tokens
//! in two cookies (`HttpOnly`, `Secure` unless `SECURE_COOKIES=false`,
//! `SameSite=Lax`, `Path=/ui`). Every signed-in page request checks them
//! through the API's own use cases: `SignIn::authenticate` on the access
//! token, and when it has expired, `SignIn::refresh` (rotation with reuse
//! detection). Revoking the login — sign-out, a session revoked, a password
//! changed, the account deactivated — so signs the page out on its next
//! request.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use cookie::{Cookie, SameSite};
use gatehouse_core::CoreError;
use gatehouse_core::audit::RequestMeta;
use gatehouse_core::service::{Principal, TokenPair};
use http::header::COOKIE;
use http::{HeaderMap, HeaderValue, Method};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use secrecy::{ExposeSecret, SecretString};

use super::page;
use crate::error::ApiError;
use crate::extract::Meta;
use crate::state::AppState;

/// The login's access token.
pub const ACCESS_COOKIE: &str = "ui_session";
/// The login's refresh token.
pub const REFRESH_COOKIE: &str = "ui_refresh";
/// Every page cookie is scoped to the pages: the API never sees them.
pub const PATH: &str = "/ui";

/// `Set-Cookie` for a page cookie; an empty `value` with `max_age` zero
/// removes it.
pub fn cookie(
    name: &'static str,
    value: &str,
    max_age: Duration,
    secure: bool,
) -> Option<HeaderValue> {
    let c = Cookie::build((name, value))
        .http_only(true)
        .secure(secure)
        // Lax: a link from another site may open a page signed in; a form
        // posted from another site arrives without the session.
        .same_site(SameSite::Lax)
        .path(PATH)
        .max_age(cookie::time::Duration::seconds(
            i64::try_from(max_age.as_secs()).unwrap_or(i64::MAX),
        ))
        .build();
    HeaderValue::from_str(&c.to_string()).ok()
}

/// The value of cookie `name` in the request, if set and not empty.
pub fn read(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == name && !c.value().is_empty())
        .map(|c| c.value().to_owned())
}

/// The two cookies of a new or renewed login.
pub fn set_login(state: &AppState, pair: &TokenPair) -> [Option<HeaderValue>; 2] {
    let ttl = state.sign_in().refresh_ttl();
    let secure = state.http().secure_cookies;
    [
        cookie(ACCESS_COOKIE, &pair.access_token, ttl, secure),
        cookie(
            REFRESH_COOKIE,
            pair.refresh_token.expose_secret(),
            ttl,
            secure,
        ),
    ]
}

/// The access cookie of a login re-authenticated just now (same login,
/// same refresh token, a new `auth_time`).
pub fn set_access(state: &AppState, access_token: &str) -> Option<HeaderValue> {
    let ttl = state.sign_in().refresh_ttl();
    cookie(
        ACCESS_COOKIE,
        access_token,
        ttl,
        state.http().secure_cookies,
    )
}

/// The cookies that remove the login from the browser.
pub fn clear(state: &AppState) -> [Option<HeaderValue>; 2] {
    let secure = state.http().secure_cookies;
    [
        cookie(ACCESS_COOKIE, "", Duration::ZERO, secure),
        cookie(REFRESH_COOKIE, "", Duration::ZERO, secure),
    ]
}

/// A signed-in page request: who, under which login, and the tokens to end
/// that login with.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub principal: Arc<Principal>,
    pub access: Arc<SecretString>,
    pub refresh: Option<Arc<SecretString>>,
}

/// The login the cookies carry, checked now; with the cookies to set when
/// it had to be renewed. `None`: signed out (no login, or not live).
async fn resume(
    state: &AppState,
    headers: &HeaderMap,
    meta: &RequestMeta,
) -> Result<Option<(SignedIn, Option<TokenPair>)>, ApiError> {
    let refresh = read(headers, REFRESH_COOKIE).map(SecretString::from);
    if let Some(access) = read(headers, ACCESS_COOKIE) {
        match state.sign_in().authenticate(&access).await {
            Ok(principal) => {
                let signed = SignedIn {
                    principal: Arc::new(principal),
                    access: Arc::new(SecretString::from(access)),
                    refresh: refresh.map(Arc::new),
                };
                return Ok(Some((signed, None)));
            }
            // Expired, or no longer live: the refresh token decides.
            Err(CoreError::InvalidToken) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let Some(refresh) = refresh else {
        return Ok(None);
    };
    let pair = match state.sign_in().refresh(refresh.expose_secret(), meta).await {
        Ok(pair) => pair,
        Err(CoreError::InvalidRefreshToken) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let principal = match state.sign_in().authenticate(&pair.access_token).await {
        Ok(p) => p,
        Err(CoreError::InvalidToken) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let signed = SignedIn {
        principal: Arc::new(principal),
        access: Arc::new(SecretString::from(pair.access_token.clone())),
        refresh: Some(Arc::new(SecretString::from(
            pair.refresh_token.expose_secret().to_owned(),
        ))),
    };
    Ok(Some((signed, Some(pair))))
}

/// The layer of the signed-in pages: a live login goes on (with renewed
/// cookies when it was refreshed); anything else is sent to sign in, back
/// to the page it asked for when that was a plain `GET`.
pub async fn require(
    State(state): State<AppState>,
    Meta(meta): Meta,
    mut req: Request,
    next: Next,
) -> Response {
    match resume(&state, req.headers(), &meta).await {
        Ok(Some((signed, renewed))) => {
            req.extensions_mut().insert(signed);
            let mut res = next.run(req).await;
            // Each renewed cookie, unless the page set that one itself (a
            // sign-out clears both; a re-authentication sets the access
            // cookie, and the rotated refresh token must still reach the
            // browser).
            if let Some(pair) = renewed {
                let set_by_page = |name: &str| {
                    res.headers()
                        .get_all(http::header::SET_COOKIE)
                        .iter()
                        .any(|c| c.as_bytes().starts_with(format!("{name}=").as_bytes()))
                };
                let [access, refresh] = set_login(&state, &pair);
                let keep = [
                    access.filter(|_| !set_by_page(ACCESS_COOKIE)),
                    refresh.filter(|_| !set_by_page(REFRESH_COOKIE)),
                ];
                for c in keep.into_iter().flatten() {
                    res.headers_mut().append(http::header::SET_COOKIE, c);
                }
            }
            res
        }
        Ok(None) => {
            let target = if req.method() == Method::GET {
                let asked = req.uri().path_and_query().map_or(PATH, |p| p.as_str());
                format!(
                    "/ui/sign-in?return_to={}",
                    utf8_percent_encode(asked, NON_ALPHANUMERIC)
                )
            } else {
                "/ui/sign-in".to_owned()
            };
            let [a, b] = clear(&state);
            page::see_other(&target).cookie(a).cookie(b).into_response()
        }
        Err(err) => err.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes() {
        let v = cookie(ACCESS_COOKIE, "tok", Duration::from_secs(60), true)
            .unwrap_or_else(|| HeaderValue::from_static(""));
        let s = v.to_str().unwrap_or_default();
        for part in [
            "ui_session=tok",
            "HttpOnly",
            "Secure",
            "SameSite=Lax",
            "Path=/ui",
            "Max-Age=60",
        ] {
            assert!(s.contains(part), "{s}");
        }
        let v = cookie(REFRESH_COOKIE, "", Duration::ZERO, false)
            .unwrap_or_else(|| HeaderValue::from_static(""));
        let s = v.to_str().unwrap_or_default();
        assert!(s.contains("Max-Age=0") && !s.contains("Secure"), "{s}");
    }
}
