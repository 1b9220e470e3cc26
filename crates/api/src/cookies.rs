//! The refresh-token cookie: `HttpOnly`, `Secure` (unless disabled),
//! `SameSite=Strict`, scoped to `/api/v1/auth`, `Max-Age` = its lifetime.

use std::time::Duration;

use cookie::{Cookie, SameSite};
use http::header::COOKIE;
use http::{HeaderMap, HeaderValue};

use crate::middleware::security_headers::REFRESH_COOKIE;

const PATH: &str = "/api/v1/auth";

fn build(value: &str, max_age_secs: i64, secure: bool) -> Option<HeaderValue> {
    let cookie = Cookie::build((REFRESH_COOKIE, value))
        .http_only(true)
        .secure(secure)
        .same_site(SameSite::Strict)
        .path(PATH)
        .max_age(cookie::time::Duration::seconds(max_age_secs))
        .build();
    HeaderValue::from_str(&cookie.to_string()).ok()
}

/// `Set-Cookie` carrying a new refresh token.
pub fn set_refresh(token: &str, lifetime: Duration, secure: bool) -> Option<HeaderValue> {
    build(
        token,
        i64::try_from(lifetime.as_secs()).unwrap_or(i64::MAX),
        secure,
    )
}

/// `Set-Cookie` that removes the refresh token from the browser.
pub fn clear_refresh(secure: bool) -> Option<HeaderValue> {
    build("", 0, secure)
}

/// The refresh token from the request's cookies, if any.
pub fn refresh_from(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == REFRESH_COOKIE && !c.value().is_empty())
        .map(|c| c.value().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes() {
        let v = set_refresh("abc", Duration::from_secs(604_800), true).unwrap();
        let s = v.to_str().unwrap();
        for part in [
            "refresh_token=abc",
            "HttpOnly",
            "Secure",
            "SameSite=Strict",
            "Path=/api/v1/auth",
            "Max-Age=604800",
        ] {
            assert!(s.contains(part), "{s}");
        }
        let insecure = set_refresh("abc", Duration::from_secs(1), false).unwrap();
        assert!(!insecure.to_str().unwrap().contains("Secure"));
        let cleared = clear_refresh(true).unwrap();
        assert!(cleared.to_str().unwrap().contains("Max-Age=0"));
    }

    #[test]
    fn parsing() {
        let mut h = HeaderMap::new();
        h.insert(
            COOKIE,
            HeaderValue::from_static("a=1; refresh_token=tok; b=2"),
        );
        assert_eq!(refresh_from(&h).as_deref(), Some("tok"));
        h.insert(COOKIE, HeaderValue::from_static("refresh_token="));
        assert_eq!(refresh_from(&h), None);
    }
}
