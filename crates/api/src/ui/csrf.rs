//! The check every state-changing form passes (OWASP CSRF Prevention Cheat
//! Sheet): a random key in an `HttpOnly` cookie of the pages, and in each
//! form a token that is that key's HMAC of what the form is bound to — the
//! login (`sid`) once signed in, nothing before. Another site can neither
//! read the key nor compute a token; a token copied from one login is
//! worthless in another. The browser's own `Sec-Fetch-Site` and `Origin`
//! headers must not name another site either.

use std::time::Duration;

use hmac::{Hmac, Mac};
use http::header::{HOST, ORIGIN};
use http::{HeaderMap, HeaderValue, StatusCode};
use sha2::Sha256;
use uuid::Uuid;

use super::session;
use crate::error::ApiError;

/// The form key's cookie.
pub const COOKIE: &str = "ui_csrf";
const KEY_LEN: usize = 32;
/// The key outlives any one form: a day of open tabs still posts.
const KEY_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);

/// What a form's token is bound to.
#[derive(Debug, Clone, Copy)]
pub enum Binding {
    /// Before sign-in (sign in, second step, sign up).
    SignedOut,
    /// Signed in under this login.
    Login(Uuid),
}

impl Binding {
    pub fn login(session_id: Option<Uuid>) -> Self {
        session_id.map_or(Self::SignedOut, Self::Login)
    }

    fn message(self) -> String {
        match self {
            Binding::SignedOut => "gatehouse/ui/form\0signed-out".to_owned(),
            Binding::Login(sid) => format!("gatehouse/ui/form\0login:{sid}"),
        }
    }
}

/// The browser's form key, and the cookie to set when it is new.
#[derive(Debug)]
pub struct FormKey {
    key: [u8; KEY_LEN],
    new_cookie: Option<HeaderValue>,
}

fn key_from(headers: &HeaderMap) -> Option<[u8; KEY_LEN]> {
    let raw = session::read(headers, COOKIE)?;
    let bytes = hex::decode(raw).ok()?;
    bytes.try_into().ok()
}

impl FormKey {
    /// The browser's key, or a new one (with its cookie) when it has none.
    pub fn of(headers: &HeaderMap, secure: bool) -> Result<Self, ApiError> {
        if let Some(key) = key_from(headers) {
            return Ok(Self {
                key,
                new_cookie: None,
            });
        }
        let mut key = [0u8; KEY_LEN];
        getrandom::fill(&mut key).map_err(|e| ApiError::internal(e.to_string()))?;
        let new_cookie = session::cookie(COOKIE, &hex::encode(key), KEY_LIFETIME, secure);
        Ok(Self { key, new_cookie })
    }

    /// The token of a form bound to `binding`.
    pub fn token(&self, binding: Binding) -> String {
        mac(&self.key, binding)
            .map(|m| hex::encode(m.finalize().into_bytes()))
            .unwrap_or_default()
    }

    /// The `Set-Cookie` of a new key.
    pub fn cookie(&self) -> Option<HeaderValue> {
        self.new_cookie.clone()
    }
}

/// HMAC-SHA256 of the binding (HMAC takes keys of any length: never `None`).
fn mac(key: &[u8; KEY_LEN], binding: Binding) -> Option<Hmac<Sha256>> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).ok()?;
    mac.update(binding.message().as_bytes());
    Some(mac)
}

/// Refuses a form that did not come from our own page: 403 with a sentence
/// that says what to do.
pub fn verify(headers: &HeaderMap, binding: Binding, presented: &str) -> Result<(), ApiError> {
    if !is_same_origin(headers) {
        return Err(refused());
    }
    let Some(key) = key_from(headers) else {
        return Err(refused());
    };
    let Ok(presented) = hex::decode(presented.trim()) else {
        return Err(refused());
    };
    // Constant-time comparison of the MAC.
    mac(&key, binding)
        .ok_or_else(refused)?
        .verify_slice(&presented)
        .map_err(|_| refused())
}

fn refused() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "csrf_failed",
        "This form was not accepted: it was not sent from this site's own page, or the page \
         was too old. Go back, reload the page and try again.",
    )
}

/// What the browser says of the request's origin (Fetch Metadata, RFC 6454
/// `Origin`): nothing, or this very site. A sibling subdomain is another
/// site here.
fn is_same_origin(headers: &HeaderMap) -> bool {
    let fetch_site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    if fetch_site.is_some_and(|s| s != "same-origin" && s != "none") {
        return false;
    }
    let Some(origin) = headers.get(ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let authority = origin.split_once("://").map(|(_, a)| a);
    let host = headers.get(HOST).and_then(|v| v.to_str().ok());
    matches!((authority, host), (Some(a), Some(h)) if a.eq_ignore_ascii_case(h))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_key(key: &FormKey) -> HeaderMap {
        let mut h = HeaderMap::new();
        let cookie = format!("{COOKIE}={}", hex::encode(key.key));
        h.insert(
            http::header::COOKIE,
            HeaderValue::from_str(&cookie).unwrap_or_else(|_| HeaderValue::from_static("")),
        );
        h.insert(HOST, HeaderValue::from_static("id.example.com"));
        h
    }

    #[test]
    fn tokens_hold_only_for_their_key_and_binding() {
        let key = FormKey::of(&HeaderMap::new(), true).unwrap_or_else(|_| FormKey {
            key: [7; KEY_LEN],
            new_cookie: None,
        });
        assert!(key.cookie().is_some(), "a new key comes with its cookie");
        let headers = with_key(&key);
        let sid = Uuid::now_v7();
        let token = key.token(Binding::Login(sid));
        assert!(verify(&headers, Binding::Login(sid), &token).is_ok());
        assert!(verify(&headers, Binding::Login(Uuid::now_v7()), &token).is_err());
        assert!(verify(&headers, Binding::SignedOut, &token).is_err());
        assert!(verify(&headers, Binding::Login(sid), "").is_err());
        assert!(verify(&headers, Binding::Login(sid), "zz").is_err());
        let other = FormKey {
            key: [9; KEY_LEN],
            new_cookie: None,
        };
        assert!(verify(&with_key(&other), Binding::Login(sid), &token).is_err());
        let mut no_cookie = headers.clone();
        no_cookie.remove(http::header::COOKIE);
        assert!(verify(&no_cookie, Binding::Login(sid), &token).is_err());
    }

    #[test]
    fn other_sites_are_refused() {
        let key = FormKey {
            key: [1; KEY_LEN],
            new_cookie: None,
        };
        let token = key.token(Binding::SignedOut);
        let mut h = with_key(&key);
        h.insert(ORIGIN, HeaderValue::from_static("https://id.example.com"));
        h.insert("sec-fetch-site", HeaderValue::from_static("same-origin"));
        assert!(verify(&h, Binding::SignedOut, &token).is_ok());
        h.insert("sec-fetch-site", HeaderValue::from_static("same-site"));
        assert!(verify(&h, Binding::SignedOut, &token).is_err());
        h.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert!(verify(&h, Binding::SignedOut, &token).is_err());
        h.remove("sec-fetch-site");
        h.insert(ORIGIN, HeaderValue::from_static("https://evil.example"));
        assert!(verify(&h, Binding::SignedOut, &token).is_err());
        h.insert(ORIGIN, HeaderValue::from_static("null"));
        assert!(verify(&h, Binding::SignedOut, &token).is_err());
    }
}
