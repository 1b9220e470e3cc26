//! `Auth`: the caller authenticated by a Bearer access token and checked
//! against the user's current state. Handlers that take it cannot run
//! unauthenticated.

use axum::extract::FromRequestParts;
use gatehouse_core::service::Principal;
use http::HeaderMap;
use http::header::AUTHORIZATION;
use http::request::Parts;

use crate::error::ApiError;
use crate::middleware::RequestContext;
use crate::state::AppState;

/// The authenticated principal.
#[derive(Debug, Clone)]
pub struct Auth(pub Principal);

/// The token of an `Authorization: Bearer …` header (RFC 6750 §2.1; the
/// scheme is case-insensitive per RFC 9110 §11.1).
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer_token(&parts.headers).ok_or_else(|| {
            ApiError::unauthorized("not_authenticated", "Authentication is required")
        })?;
        let principal = state.auth().authenticate(token).await?;
        if let Some(ctx) = parts.extensions.get::<RequestContext>() {
            ctx.set_user_id(principal.id().to_string());
        }
        Ok(Self(principal))
    }
}
