//! `Auth`: the caller authenticated by a Bearer access token and checked
//! against the user's current state. Handlers that take it cannot run
//! unauthenticated.

use axum::extract::FromRequestParts;
use gatehouse_core::service::Principal;
use http::HeaderMap;
use http::header::AUTHORIZATION;
use http::request::Parts;

use crate::error::ApiError;
use crate::extract::Meta;
use gatehouse_core::ratelimit::Rate;

use crate::middleware::security_headers::X_API_KEY;
use crate::middleware::{RequestContext, rate_limit};
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
        let principal = match bearer_token(&parts.headers) {
            Some(token) => state.sign_in().authenticate(token).await?,
            None => match parts
                .headers
                .get(&X_API_KEY)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
            {
                Some(key) => api_key_principal(&key, parts, state).await?,
                None => {
                    return Err(ApiError::unauthorized(
                        "not_authenticated",
                        "Authentication is required",
                    ));
                }
            },
        };
        if let Some(ctx) = parts.extensions.get::<RequestContext>() {
            ctx.set_user_id(principal.id());
        }
        Ok(Self(principal))
    }
}

/// The caller when the request carries credentials (which must then be
/// valid: a bad token is a 401, never treated as no token), else `None`.
#[derive(Debug, Clone)]
pub struct MaybeAuth(pub Option<Principal>);

impl FromRequestParts<AppState> for MaybeAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let has_credentials =
            parts.headers.contains_key(AUTHORIZATION) || parts.headers.contains_key(&X_API_KEY);
        if !has_credentials {
            return Ok(Self(None));
        }
        let Auth(principal) = Auth::from_request_parts(parts, state).await?;
        Ok(Self(Some(principal)))
    }
}

/// Authenticates an `X-API-Key` and applies the per-key rate limit.
async fn api_key_principal(
    key: &str,
    parts: &mut Parts,
    state: &AppState,
) -> Result<Principal, ApiError> {
    let Ok(Meta(meta)) = Meta::from_request_parts(parts, state).await;
    let principal = state
        .api_keys()
        .authenticate(key, &meta)
        .await
        .map_err(|_| ApiError::unauthorized("invalid_api_key", "Invalid or expired API key"))?;
    let config = &state.config().rate_limit;
    if config.enabled
        && let Some((key_id, _)) = &principal.api_key
    {
        let rate = Rate {
            count: config.api_key_per_minute,
            period: std::time::Duration::from_secs(60),
        };
        let limit_key = format!("rl:apikey:{key_id}");
        rate_limit::enforce(state, "api_key", &limit_key, rate, "", || meta)
            .await
            .map_err(|refused| refused.error)?;
    }
    Ok(principal)
}
